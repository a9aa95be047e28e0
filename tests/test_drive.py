"""``tmstate drive`` under Xvfb: synthetic key presses (XTest through python-xlib) drive the
simulator in a real window; a screenshot shows the track and the speed/time text; the line
recorded with ``--record-line`` then loads and is driven by the env. Also the env's own
``render_mode="human"`` window, and ``line-from-replay`` on an episode log."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tmstate.core.reference import LineMetadata, ReferenceLine
from tmstate.env.env import TMNFEnv

pytest.importorskip("pygame", reason="the window needs pygame (extra [human]; scripts/test.sh installs [test])")

ROOT = Path(__file__).resolve().parents[1]
ASPHALT = np.array((95, 95, 100))


def straight_track(path: Path, length_m: float = 120.0) -> Path:
    points = np.stack([np.zeros(50), np.zeros(50), np.linspace(0.0, length_m, 50)], axis=1)
    line = ReferenceLine.from_points(points, spacing_m=0.5, metadata=LineMetadata(map_name="straight", track_width_m=24.0))
    return line.save(path)


class Keyboard:
    """Key presses sent to the X server through the XTEST extension (what a real keyboard does)."""

    def __init__(self, display_name: str) -> None:
        from Xlib import X, XK, display
        from Xlib.ext import xtest

        self.X, self.XK, self.xtest = X, XK, xtest
        self.dpy = display.Display(display_name)
        if not self.dpy.has_extension("XTEST"):
            pytest.skip("this X server has no XTEST extension")

    def _code(self, name: str) -> int:
        return self.dpy.keysym_to_keycode(self.XK.string_to_keysym(name))

    def press(self, name: str) -> None:
        self.xtest.fake_input(self.dpy, self.X.KeyPress, self._code(name))
        self.dpy.sync()

    def release(self, name: str) -> None:
        self.xtest.fake_input(self.dpy, self.X.KeyRelease, self._code(name))
        self.dpy.sync()

    def close(self) -> None:
        self.dpy.close()


def wait_for_window(display_name: str, title: str, process: subprocess.Popen, timeout_s: float = 60.0):
    from tmstate.env.xwindow import WindowCapture
    from tmstate.errors import TmstateError

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tmstate drive exited early: {process.communicate()[1]}")
        try:
            return WindowCapture.find(title=title, display=display_name)
        except TmstateError:
            time.sleep(0.2)
    pytest.fail(f"no window titled {title!r} within {timeout_s} s")


def test_drive_with_the_keyboard_records_a_line_that_then_loads_and_drives(xvfb_display, tmp_path):
    track = straight_track(tmp_path / "straight.npz")
    out = tmp_path / "driven.npz"
    env = {**os.environ, "DISPLAY": xvfb_display, "SDL_VIDEODRIVER": "x11", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tmstate.cli", "drive", "--track", str(track), "--record-line", str(out),
         "--once", "--size", "320x240", "--map", "straight"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    keyboard = Keyboard(xvfb_display)
    try:
        capture = wait_for_window(xvfb_display, "tmstate drive", process)
        capture.focus()
        still = capture.grab()
        keyboard.press("Up")
        time.sleep(1.5)
        keyboard.press("Left")  # a swerve the recorded line must show
        time.sleep(0.4)
        keyboard.release("Left")
        moving = capture.grab()
        keyboard.press("Right")
        time.sleep(0.4)
        keyboard.release("Right")
        stdout, stderr = process.communicate(timeout=120)
    finally:
        keyboard.release("Up")
        keyboard.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "finished" in stderr and str(out) in stdout
    # The screenshot: mostly track, with white text (speed and race time) in the top left.
    assert still.shape == (240, 320, 3)
    road = (np.abs(moving.astype(int) - ASPHALT).sum(axis=2) < 20).mean()
    assert road > 0.3
    text = moving[:30, :200]
    assert (text.min(axis=2) > 240).sum() > 30  # white glyphs
    assert not np.array_equal(still[:30, :200], text)  # the speed and time changed
    # The recorded line: the straight's length, with the swerve to the left (+x is left here).
    line = ReferenceLine.load(out)
    assert 100.0 < line.length_m < 140.0 and line.metadata.map_name == "straight"
    swerve = line.points[:, 0]
    assert abs(swerve).max() > 0.3
    # It loads as an env's map and a line follower finishes it.
    from tmstate.tools.demo import LineFollower

    driven = TMNFEnv(backend="sim", map=str(out))
    driven.reset(seed=0)
    follower = LineFollower(driven.line)
    for _ in range(2000):
        _, _, terminated, truncated, info = driven.step(follower.act(driven.state, driven.location))
        if terminated or truncated:
            break
    driven.close()
    assert info["finished"]


def test_render_mode_human_opens_a_window_of_its_own(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = TMNFEnv(backend="sim", map="sim_easy", render_mode="human", render_width=160, render_height=120)
    assert env.reset(seed=0) is not None
    assert env.render() is None and env._window is not None
    import pygame

    assert pygame.display.get_surface().get_size() == (160, 120)
    env.step([0.0, 1.0])
    shown = pygame.surfarray.array3d(pygame.display.get_surface()).swapaxes(0, 1)
    frame = env.frame()
    assert np.abs(shown[60:].astype(int) - frame[60:]).mean() < 1.0  # the frame, text above it
    assert "km/h" in env.status_lines()[0]
    env.close()
    assert env._window is None


def test_line_from_replay_builds_a_line_from_an_episode_log(tmp_path):
    from tmstate.cli import main
    from tmstate.tools.demo import LineFollower

    env = TMNFEnv(backend="sim", map="sim_esses", log_dir=str(tmp_path / "logs"))
    env.reset(seed=0)
    follower = LineFollower(env.line)
    while True:
        _, _, terminated, truncated, info = env.step(follower.act(env.state, env.location))
        if terminated or truncated:
            break
    env.close()
    out = tmp_path / "esses_driven.npz"
    assert main(["line-from-replay", info["log_path"], "-o", str(out)]) == 0
    line = ReferenceLine.load(out)
    assert abs(line.length_m - env.line.length_m) < 0.05 * env.line.length_m
    # The checkpoints passed; the finish (counted as one by the game's and the sim's
    # checkpoint_count) is the line's end, not listed (line format 2, as record-line and ghosts).
    sim_checkpoints = env.line.metadata.checkpoints_m
    assert len(line.metadata.checkpoints_m) == len(sim_checkpoints)
    assert np.allclose(line.metadata.checkpoints_m, sim_checkpoints, atol=3.0)
    assert line.metadata.checkpoint_source == "recorded"
    assert line.metadata.map_name == "sim_esses"

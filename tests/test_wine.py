"""Real Wine in the loop: the launcher, the window tools and recovery against Windows programs.

The Windows programs are the STAND-IN of plugins/winestandin/ (not TMLoader, not the game),
built with mingw-w64: ``TMLoader.exe`` takes TMLoader's command line and starts
``TmForever.exe`` with CreateProcess; that opens a "TrackMania Modded" window painting the
moving pattern of plugins/winestandin/src/standin.h and relays its plugin port to the real
plugin in the AngelScript harness (a Linux process) on port + ``RELAY_OFFSET``.

One throwaway prefix per run (``prefix-a``; the tests after the first reuse it), and a
second one (``prefix-b``) that runs during the ``--stop`` test to prove it is never touched.
All games share one private Xvfb display. Timings (prefix creation, launch to handshake,
capture frames/s, kill to a working relaunched game) are written to
``out/wine_measurements.json``: reported, never asserted. The last test stops everything
and checks that no process of either prefix and no Xvfb of this module is left.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tmstate import cli
from tmstate.ops import launch
from tmstate.ops.launch import LaunchConfig, Launcher, pids_with_marker, process_image

pytestmark = [pytest.mark.wine, pytest.mark.harness]

REPO = Path(__file__).resolve().parent.parent
STANDIN = REPO / "plugins" / "winestandin"
TMLOADER = STANDIN / "build" / "TMLoader.exe"
RELAY_OFFSET = 1000
TITLE = "TrackMania Modded"
FAST_LOSS = {"timeout_s": 2.0, "connect_retries": 50, "retry_delay_s": 0.05}

# The pattern of plugins/winestandin/src/standin.h.
COUNTER_ROWS, COUNTER_BITS, SHIFT_PER_FRAME = 8, 16, 4
COLOURS = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255), (12, 34, 56)], dtype=np.uint8)


def expected_pattern(width: int, height: int, counter: int) -> np.ndarray:
    """The stand-in's frame ``counter`` at ``width`` x ``height``, as (h, w, 3) RGB."""
    x = np.arange(width)
    shift = (counter * SHIFT_PER_FRAME) % width
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = COLOURS[(((x - shift) % width) * len(COLOURS)) // width][None, :, :]
    bits = (counter >> (COUNTER_BITS - 1 - (x * COUNTER_BITS) // width)) & 1
    image[:COUNTER_ROWS] = (bits * 255).astype(np.uint8)[None, :, None]
    return image


def decode_counter(image: np.ndarray, counter_rows: int = COUNTER_ROWS) -> int:
    """The frame counter painted in the top rows (bit i sampled in the middle of its block)."""
    width = image.shape[1]
    row = image[counter_rows // 2]
    value = 0
    for i in range(COUNTER_BITS):
        value = (value << 1) | int(row[int((i + 0.5) * width / COUNTER_BITS)].mean() > 127)
    return value


def matching_counters(capture, width: int, height: int, frames: int = 20) -> tuple[list[int], int]:
    """Capture ``frames`` times; the counters of the captures that are exactly the pattern."""
    good = []
    for _ in range(frames):
        image = capture.capture()
        if image.shape == (height, width, 3):
            counter = decode_counter(image)
            if np.array_equal(image, expected_pattern(width, height, counter)):
                good.append(counter)
        time.sleep(0.025)
    return good, frames


# --- what is needed, and the world the tests share ---------------------------------------------


def _missing() -> str | None:
    """Why Wine tests cannot run here, or None."""
    for tool, package in (("wine", "wine64"), ("wineserver", "wine64"), ("Xvfb", "xvfb")):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install {package}; scripts/test.sh installs it)"
    try:
        version = subprocess.run(["wine", "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"wine is installed but does not run here ({exc})"
    if version.returncode != 0:
        return f"wine is installed but does not run here: {(version.stdout + version.stderr).strip()[:200]}"
    if shutil.which("x86_64-w64-mingw32-gcc") is not None:  # make rebuilds a stale stand-in
        result = subprocess.run(["make", "-s", "-C", str(STANDIN)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.fail(f"building plugins/winestandin failed: {result.stdout}{result.stderr}")
    elif not TMLOADER.is_file() or not (STANDIN / "build" / "TmForever.exe").is_file():
        return "the Wine stand-in is not built and gcc-mingw-w64-x86-64 is not installed (scripts/test.sh does both)"
    from tmstate.link.harness import angelscript_header

    if angelscript_header() is None:
        return "angelscript-dev is not installed (scripts/test.sh installs it)"
    return None


def prefix_pids(prefix: str) -> list[int]:
    """Live (non-zombie) processes whose environment has WINEPREFIX=<prefix>: Wine's and the games'."""
    return sorted(launch.pids_with_environment("WINEPREFIX", prefix))


def _ports_free(ports: list[int]) -> bool:
    sockets = []
    try:
        for port in ports:
            s = socket.socket()
            sockets.append(s)
            s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        for s in sockets:
            s.close()


class WineWorld:
    """A private Xvfb, plugin harnesses, throwaway prefixes, and every launcher started on them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.measurements: dict[str, object] = {}
        self.launchers: list[Launcher] = []
        self.harnesses: dict[int, object] = {}
        read_fd, write_fd = os.pipe()
        self.xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1024x768x24", "-nolisten", "tcp", "-noreset"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        os.close(write_fd)
        with os.fdopen(read_fd) as reader:
            number = reader.readline().strip()
        if not number:
            self.xvfb.kill()
            pytest.fail("Xvfb did not report a display number")
        self.display = f":{number}"

    def prefix(self, name: str) -> str:
        return str(self.root / f"prefix-{name}")

    def config(self, name: str, count: int) -> LaunchConfig:
        """A launch config for ``count`` stand-in games in prefix ``name``, each relayed to its own harness."""
        from tmstate.link.harness import HarnessProcess

        for _ in range(100):
            base = random.randint(20000, 40000)
            ports = list(range(base, base + count))
            if _ports_free(ports + [p + RELAY_OFFSET for p in ports]):
                break
        else:
            pytest.fail("no free port range for the Wine games")
        for port in ports:
            self.harnesses[port] = HarnessProcess(port=port + RELAY_OFFSET).start()
        return LaunchConfig(
            wine="wine", wine_prefix=self.prefix(name), tmloader=str(TMLOADER), base_port=base,
            run_dir=str(self.root / f"run-{name}-{base}"), handshake_timeout_s=120.0, stop_grace_s=2.0,
            extra_env={"DISPLAY": self.display, "TMSTATE_STANDIN_RELAY_OFFSET": str(RELAY_OFFSET)},
        )

    def start(self, name: str, count: int) -> Launcher:
        launcher = Launcher(self.config(name, count), count)
        self.launchers.append(launcher)
        launcher.start_all(progress=False)
        return launcher

    def record(self, key: str, value: object) -> None:
        self.measurements[key] = value
        out = REPO / "out" / "wine_measurements.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(self.measurements, indent=2))

    def close(self) -> None:
        """Stop every game, prefix, harness and the Xvfb (safe to call twice)."""
        for launcher in self.launchers:
            # The pid file first: it has what the CLI or a vector env (adopting) started last.
            if launcher.config.pid_file.exists():
                launch.stop_from_pid_file(launcher.config.pid_file, launcher.config.stop_grace_s)
            launcher.stop_all()
        self.launchers.clear()
        for harness in self.harnesses.values():
            harness.stop()
        self.harnesses.clear()
        if self.xvfb.poll() is None:
            self.xvfb.terminate()
            self.xvfb.wait(10)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    reason = _missing()
    if reason:
        pytest.skip(reason)
    world = WineWorld(tmp_path_factory.mktemp("wine"))
    yield world
    world.close()


@pytest.fixture(scope="module")
def running(world) -> Launcher:
    """Two stand-in games in prefix-a, their windows side by side (no overlap: capture reads the screen)."""
    from tmstate.env.xwindow import WindowCapture

    launcher = world.start("a", 2)
    world.record("prefix_a_setup_s_existing_or_new", round(launcher.prefix.setup_s, 2) if launcher.prefix else None)
    world.record("launch_to_handshake_s_prefix_up", [round(launcher.instances[i].ready_s, 2) for i in range(2)])
    for i in range(2):
        with WindowCapture.find(title=TITLE, pid=launcher.game_pid(i), display=world.display) as capture:
            capture.move_resize(10 + 500 * i, 10, 320, 240)
    return launcher


# --- the tests -------------------------------------------------------------------------------


def test_launch_two_games_under_wine_and_stop_ends_that_prefix_only(world, capsys):
    """`tmstate launch -n 2` with the stand-in as TMLoader; a second prefix runs meanwhile."""
    other = world.start("b", 1)
    other_pids = prefix_pids(other.config.wine_prefix)
    assert other.prefix is not None and other.prefix.created
    world.record("prefix_creation_s", [round(other.prefix.setup_s, 2)])

    config = world.config("a", 2)
    toml = Path(config.run_dir + ".toml")
    env_table = ", ".join(f'{k} = "{v}"' for k, v in config.extra_env.items())
    toml.write_text(
        f'[launch]\nwine = "wine"\nwine_prefix = "{config.wine_prefix}"\ntmloader = "{config.tmloader}"\n'
        f'base_port = {config.base_port}\nrun_dir = "{config.run_dir}"\nhandshake_timeout_s = 120\n'
        f"stop_grace_s = 2\nextra_env = {{ {env_table} }}\n"
    )
    stopper = Launcher(config, 2)  # only so that world.close() finds the pid file if a check fails
    world.launchers.append(stopper)
    assert cli.main(["launch", "-n", "2", "--config", str(toml)]) == 0
    assert "stop with: tmstate launch --stop" in capsys.readouterr().out

    data = json.loads(config.pid_file.read_text())
    prefix, records = data["prefix"], data["instances"]
    assert prefix["wine_prefix"] == config.wine_prefix and prefix["created"] is True
    world.record("prefix_creation_s", [round(other.prefix.setup_s, 2), round(prefix["setup_s"], 2)])
    world.record("launch_to_handshake_s_new_prefix", [round(r["ready_s"], 2) for r in records])
    shared = pids_with_marker(prefix["marker"])
    assert any(process_image(pid).startswith("wineserver") for pid in shared)
    assert "services.exe" in {process_image(pid) for pid in shared}  # Wine's services carry the prefix's id
    games: set[int] = set()
    for record in records:
        assert launch.default_probe(record["port"], 2.0)  # through the stand-in's relay to the harness
        marked = pids_with_marker(record["marker"] + ".game")
        # The game is TMLoader's child, not the launched `wine TMLoader.exe` (which has exited).
        assert record["game_pid"] in marked and record["game_pid"] != record["pid"]
        assert process_image(record["game_pid"]) == "TmForever.exe"
        assert {process_image(pid) for pid in marked} == {"TmForever.exe"}
        games |= set(marked)
    # Every live process of the prefix is one the pid file names, through an instance's id or the prefix's.
    assert set(prefix_pids(config.wine_prefix)) <= games | set(shared)

    assert cli.main(["launch", "--stop", "--config", str(toml)]) == 0
    assert not config.pid_file.exists()
    assert prefix_pids(config.wine_prefix) == []  # wineserver and services included
    assert set(other_pids) <= set(prefix_pids(other.config.wine_prefix))  # the other prefix is untouched
    assert launch.default_probe(other.config.base_port, 2.0)
    other.stop_all()
    assert prefix_pids(other.config.wine_prefix) == []


def test_each_game_on_its_own_xvfb_display_in_one_prefix(world):
    """``xvfb = true``: the launcher's Xvfb per game; one prefix (its wineserver) serves both.
    Runs before the tests that keep prefix-a up (``running``): this launcher must start it."""
    import dataclasses

    from tmstate.env.xwindow import find_windows, open_display

    base = next(n for n in range(160, 400, 2)
                if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X{n + 1}-lock").exists())
    config = world.config("a", 2)
    config = dataclasses.replace(config, xvfb=True, display_base=base,
                                 extra_env={k: v for k, v in config.extra_env.items() if k != "DISPLAY"})
    launcher = Launcher(config, 2)
    world.launchers.append(launcher)
    launcher.start_all(progress=False)
    xvfb_markers = [instance.marker + ".xvfb" for instance in launcher.instances.values()]
    # Wine's desktop process needs a display that outlives every game's: the prefix has its own.
    assert launcher.prefix is not None and launcher.prefix.display not in (None, f":{base}", f":{base + 1}")
    for i in range(2):
        dpy = open_display(f":{base + i}")
        try:
            found = [w for w in find_windows(dpy, title=TITLE) if w.viewable]
        finally:
            dpy.close()
        assert [w.pid for w in found] == [launcher.game_pid(i)]
        assert launch.default_probe(launcher.instances[i].port, 2.0)
    # The vector env's sub-env of a game captures that game's window on that game's display.
    from tmstate.env.env import make_config
    from tmstate.vector.instances import LaunchedInstance, harness_line

    line = str(harness_line().save(world.root / "xvfb_line.npz"))
    env_config = make_config(None, backend="tminterface", map=line, backend_options=FAST_LOSS,
                             observation={"type": "frames", "frame_source": "x11", "window_title": TITLE,
                                          "width": 80, "height": 60, "grayscale": False, "stack": 1})
    env = LaunchedInstance(launcher, 1, env_config).make_env()
    try:
        obs, _ = env.reset()
        for _ in range(5):
            obs, *_ = env.step(np.array([0.0, 1.0], np.float32))
        counter = decode_counter(obs, counter_rows=2)
        assert np.array_equal(obs, cv2.resize(expected_pattern(320, 240, counter), (80, 60),
                                              interpolation=cv2.INTER_AREA))
    finally:
        env.close()
    launcher.restart(0)  # its Xvfb and game go, the prefix (and its display) stay
    assert launch.default_probe(launcher.instances[0].port, 2.0) and launch.default_probe(launcher.instances[1].port, 2.0)
    launcher.stop_all()
    assert prefix_pids(config.wine_prefix) == []  # the games' and the prefix's Xvfb carry WINEPREFIX too
    assert not any(pids_with_marker(m) for m in xvfb_markers)


def test_xwindow_finds_each_game_window_by_title_and_game_pid_moves_and_captures(running, world):
    from tmstate.env.xwindow import WindowCapture, find_windows, open_display

    launcher = running
    games = {i: launcher.game_pid(i) for i in range(2)}
    dpy = open_display(world.display)
    try:
        by_title = [w for w in find_windows(dpy, title=TITLE) if w.viewable]
        assert sorted(w.pid for w in by_title) == sorted(games.values())
        for i, pid in games.items():
            assert pid != launcher.instances[i].process.pid  # _NET_WM_PID is the child's, not the launched wine's
            assert [(w.title, w.pid) for w in find_windows(dpy, title=TITLE, pid=pid)] == [(TITLE, pid)]
            assert find_windows(dpy, pid=launcher.instances[i].process.pid) == []
    finally:
        dpy.close()

    fps: dict[str, float] = {}
    for i, pid in games.items():
        for use_shm in (True, False):
            with WindowCapture.find(title=TITLE, pid=pid, display=world.display, use_shm=use_shm) as capture:
                capture.move_resize(10 + 500 * i, 10, 320, 240)
                assert capture.geometry() == (10 + 500 * i, 10, 320, 240)
                good, total = matching_counters(capture, 320, 240)
                assert len(good) >= 0.8 * total, f"only {len(good)} of {total} captures show the pattern"
                assert len(set(good)) >= 3  # the pattern moves
                assert capture.shm_active is use_shm
                if i == 0:
                    count, started = 0, time.perf_counter()
                    while time.perf_counter() - started < 1.0:
                        capture.capture()
                        count += 1
                    fps["mit-shm" if use_shm else "getimage"] = round(count / (time.perf_counter() - started), 1)
    world.record("capture_fps_320x240", fps)

    # A resize reaches the Windows program: it repaints the pattern at the new size.
    with WindowCapture.find(title=TITLE, pid=games[0], display=world.display) as capture:
        capture.move_resize(10, 10, 400, 300)
        deadline = time.monotonic() + 10
        good: list[int] = []
        while time.monotonic() < deadline and len(good) < 3:
            good += matching_counters(capture, 400, 300, frames=3)[0]
        assert len(good) >= 3, "the window was not repainted at 400x300"
        capture.move_resize(10, 10, 320, 240)


def _harness_line(tmp_path: Path) -> str:
    from tmstate.vector.instances import harness_line

    return str(harness_line().save(tmp_path / "harness_line.npz"))


def test_env_runs_200_steps_on_frames_captured_from_a_wine_window(running, world, tmp_path, monkeypatch):
    from tmstate.env.env import TMNFEnv

    monkeypatch.setenv("DISPLAY", world.display)
    pid = running.game_pid(0)
    env = TMNFEnv(backend="tminterface", map=_harness_line(tmp_path),
                  backend_options={"port": running.instances[0].port, **FAST_LOSS},
                  observation={"type": "frames", "frame_source": "x11", "window_title": TITLE, "window_pid": pid,
                               "width": 80, "height": 60, "grayscale": False, "stack": 1})
    try:
        obs, info = env.reset()
        counters, exact, race_ms = [], 0, 0
        for k in range(200):
            obs, reward, terminated, truncated, info = env.step(np.array([0.3 * np.sin(0.05 * k), 1.0], np.float32))
            assert obs.shape == (60, 80, 3)
            counter = decode_counter(obs, counter_rows=2)  # 320x240 / 4: the counter is 2 rows high
            full = expected_pattern(320, 240, counter)
            exact += np.array_equal(obs, cv2.resize(full, (80, 60), interpolation=cv2.INTER_AREA))
            counters.append(counter)
            race_ms = max(race_ms, info["race_time_ms"])
            if terminated or truncated:
                env.reset()
        assert exact >= 180, f"only {exact} of 200 observations are the window's pattern"
        assert len(set(counters)) >= 10  # live frames, not one image repeated
        assert race_ms > 0
    finally:
        env.close()


def test_kill_9_of_one_wine_game_is_truncated_relaunched_and_the_other_untouched(running, world, tmp_path,
                                                                                  monkeypatch):
    from tmstate.vector.env import VectorConfig
    from tmstate.vector.make import make_vector_env

    monkeypatch.setenv("DISPLAY", world.display)
    observation = {"type": "frames", "frame_source": "x11", "window_title": TITLE, "width": 80, "height": 60,
                   "grayscale": False, "stack": 1}
    env = make_vector_env(2, backend="tminterface", map=_harness_line(tmp_path), backend_options=FAST_LOSS,
                          launch=running.config, vector=VectorConfig(restart_delay_s=0.1), observation=observation)
    adopted = env.instances[0].launcher  # the games from the pid file, restarted through it
    try:
        assert adopted is not running and adopted.prefix is not None
        shared = set(pids_with_marker(adopted.prefix.marker))
        old_game, other_game = adopted.game_pid(0), adopted.game_pid(1)
        actions = np.array([[0.0, 1.0], [0.0, 1.0]], np.float32)
        env.reset(seed=0)
        for _ in range(20):
            env.step(actions)
        killed_at = time.monotonic()
        os.kill(old_game, signal.SIGKILL)
        lost_after = None
        for k in range(100):
            obs, _, _, truncated, info = env.step(actions)
            if info.get("_game_lost", np.zeros(2, bool))[0]:
                assert truncated[0] and not info.get("_game_lost")[1]
                lost_after = k
                break
        assert lost_after is not None, "the vector env did not notice the killed game"
        obs, *_ = env.step(actions)  # the relaunched game answers, its frames from its new window
        world.record("kill_to_working_relaunch_s", round(time.monotonic() - killed_at, 2))
        new_game = adopted.game_pid(0)
        assert env.restarts == [1, 0] and new_game not in (None, old_game)
        assert process_image(new_game) == "TmForever.exe"
        assert adopted.game_pid(1) == other_game  # the other game was never restarted ...
        assert shared <= set(pids_with_marker(adopted.prefix.marker))  # ... nor the prefix under it
        exact = 0
        for _ in range(30):
            obs, *_, info = env.step(actions)
            assert not np.any(info.get("_game_lost", np.zeros(2, bool)))
            counter = decode_counter(obs[0], counter_rows=2)
            exact += np.array_equal(obs[0], cv2.resize(expected_pattern(320, 240, counter), (80, 60),
                                                       interpolation=cv2.INTER_AREA))
        assert exact >= 25, f"only {exact} of 30 frames after the relaunch are the new window's pattern"
        assert launch.read_pid_file(running.config.pid_file)[0]["game_pid"] == new_game
    finally:
        env.close()
    assert adopted.game_pid(0) == new_game  # adopted games outlive the vector env


def test_nothing_of_wine_or_xvfb_is_left_after_the_wine_tests(world):
    """Runs last: stop everything the module started, then look for leftovers by prefix."""
    prefixes = [world.prefix("a"), world.prefix("b")]
    socket_path = Path(f"/tmp/.X11-unix/X{world.display.lstrip(':')}")
    world.close()
    for prefix in prefixes:
        assert prefix_pids(prefix) == [], f"processes of {prefix} are still running"
    assert world.xvfb.returncode is not None and not socket_path.exists(), "the Xvfb of the Wine tests still runs"

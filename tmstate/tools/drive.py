"""``tmstate drive``: drive the simulator yourself, with the keyboard, in a window.

Any track the env takes: a shipped sim track, a line file, or a ``.Replay.Gbx`` ghost (its
driven path becomes the corridor's centre). Arrow keys or WASD steer, accelerate and brake;
R restarts; Esc quits. The window shows the speed, race time and checkpoints. With
``--record-line out.npz`` the run is recorded the way ``tmstate record-line`` records one in
the game (:class:`tmstate.tools.record.LineRecorder`: restarts start over, positions become
the line, checkpoints passed become its checkpoints) and saved when the car finishes, or
on quitting when something was driven. The simulator is a simplified car, not TMNF physics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tmstate.core.reference import ReferenceLine

DEFAULT_SIZE = (640, 480)


def track_line(track: str, spacing_m: float = 0.5) -> ReferenceLine:
    """The line to drive: a ``.Replay.Gbx`` ghost's path, else what the env's ``map`` takes."""
    if track.lower().endswith(".gbx"):
        from tmstate.formats.gbx import read_ghost
        from tmstate.tools.lines import line_from_ghost

        return line_from_ghost(read_ghost(track), spacing_m=spacing_m)
    from tmstate.backends.sim.track import resolve_line

    return resolve_line(track)


def drive(track: str, *, camera: str = "chase", size: tuple[int, int] = DEFAULT_SIZE,
          record_line: str | None = None, spacing_m: float = 0.5, once: bool = False,
          map_name: str = "", say: Callable[[str], None] = lambda message: None,
          report: Callable[[str], None] = lambda message: None) -> Path | None:
    """Drive ``track`` until Esc (or the first finish with ``once``); returns the saved line's path.
    ``say`` gets a line of text at each finish, ``report`` one for the line saved."""
    from tmstate.env.env import TMNFEnv
    from tmstate.env.window import Window
    from tmstate.tools.demo import _current
    from tmstate.tools.record import LineRecorder

    line = track_line(track, spacing_m)
    # A person may stop, look around or reverse: only the finish and the time limit end a run.
    env = TMNFEnv(backend="sim", line=line, render_width=size[0], render_height=size[1],
                  observation={"camera": camera}, termination={"no_progress_s": 0, "max_distance_m": 0})
    name = map_name or line.metadata.map_name or Path(track).stem
    window = Window(*size, title=f"tmstate drive: {name}", fps=env.metadata["render_fps"])
    recorder = LineRecorder() if record_line else None
    saved: Path | None = None
    try:
        env.reset(seed=0)
        if recorder is not None:
            recorder.add(_current(env))
        finished_at: float | None = None
        while True:
            keys = window.poll()
            if keys.quit:
                break
            if keys.restart:
                env.reset(seed=0)
                finished_at = None
                if recorder is not None:
                    recorder.add(_current(env))  # race time going back: the recorder starts over
            lines = env.status_lines()
            if finished_at is None:
                _, _, terminated, truncated, info = env.step(keys.action)
                lines = env.status_lines()
                if recorder is not None:
                    recorder.add(_current(env))
                if terminated or truncated:
                    finished_at = time.monotonic()
                    how = "finished" if info["finished"] else info["termination_reason"]
                    say(f"{name}: {how} at {info['race_time_ms'] / 1000:.2f} s")
                    if recorder is not None and record_line and info["finished"] and saved is None:
                        saved = _save(recorder, record_line, name, spacing_m, report)
                    if once:
                        window.show(env.frame(), lines)
                        break
            else:
                lines = lines + ["R: drive again   Esc: quit"]
            window.show(env.frame(), lines)
    finally:
        window.close()
        env.close()
    if recorder is not None and record_line and saved is None and len(recorder.positions) >= 2:
        saved = _save(recorder, record_line, name, spacing_m, report)
    return saved


def _save(recorder, path: str, name: str, spacing_m: float, say: Callable[[str], None]) -> Path:
    line = recorder.line(map_name=name, spacing_m=spacing_m)
    out = line.save(Path(path))
    say(f"{out}: {len(line)} points, {line.length_m:.1f} m, {len(line.metadata.checkpoints_m)} checkpoint(s) "
          f"({'finished' if recorder.finished else 'not finished'} at {recorder.times_ms[-1] / 1000:.2f} s)")
    return out

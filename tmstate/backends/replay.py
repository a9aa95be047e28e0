"""The ``replay`` backend: a logged episode (or a ghost) played back as if it were the game.

Each :meth:`~ReplayBackend.step` advances race time by one action period and returns the
logged state at that time; between logged states, continuous fields (position, velocity,
angular velocity, angles, rpm) are interpolated and discrete ones (inputs, checkpoints,
flags) are taken from the earlier state. The step that reaches the last logged state of a
finished run returns that finish state itself (its race time may be earlier than the full
period, as with the game). Past the end the last state is held.

Actions are ignored: the recording plays as it was driven. What it is for: running the
env's reward, termination, observation and logging code on real recorded states without
the game (tests, reward experiments, debugging).
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

from tmstate.backends.base import Backend
from tmstate.core.state import Action
from tmstate.errors import ConfigError, LogFileError, TmstateError
from tmstate.core.reference import ReferenceLine
from tmstate.core.state import GameState, check_action_period_ms


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def load_states(path: str | Path) -> tuple[list[GameState], dict]:
    """States and metadata from an episode log ``.npz`` or a ``.Replay.Gbx`` ghost."""
    path = Path(path)
    if path.name.lower().endswith(".gbx"):
        from tmstate.formats.gbx import ghost_metadata, read_ghost

        ghost = read_ghost(path)
        return ghost.states(), ghost_metadata(ghost)
    from tmstate.formats.log import read_episode

    log = read_episode(path)
    return log.states, log.metadata


def line_of_log(metadata: dict, log_path: str | Path) -> ReferenceLine:
    """The reference line a log (or ghost) was driven on, from its metadata.

    The one rule (the env's ``map=""`` with a replay and ``rewards compare`` both use it):
    ``line`` (as the env writes it) or ``line_path`` as a file, as given or beside the log;
    else ``line``, ``line_path`` or ``map`` as a name :func:`~tmstate.backends.sim.track.resolve_line`
    knows (shipped lines). LogFileError when none is found.
    """
    from tmstate.backends.sim.track import resolve_line

    log_path = Path(log_path)
    names = [str(metadata[k]) for k in ("line", "line_path") if metadata.get(k)]
    for name in names:
        for candidate in (Path(name), log_path.parent / name):
            if candidate.is_file():
                return ReferenceLine.load(candidate)
    for name in names + ([str(metadata["map"])] if metadata.get("map") else []):
        try:
            return resolve_line(name)
        except TmstateError:
            continue
    hint = "pass --line LINE.npz to rewards compare, or map=LINE to the env"
    if not names:
        raise LogFileError(log_path, "the log names no reference line (metadata 'line')", hint)
    raise LogFileError(log_path, f"its reference line {names[0]} was not found", hint)


class ReplayBackend(Backend):
    """Plays back ``log_path`` (episode log or ``.Replay.Gbx``); ``backend="replay"``."""

    def __init__(self, log_path: str | Path, action_period_ms: int | None = None, **ignored: object) -> None:
        self.path = Path(log_path)
        self.states, self.metadata = load_states(self.path)
        self.times = np.array([s.race_time_ms for s in self.states], dtype=np.int64)
        if np.any(np.diff(self.times) < 0):
            raise LogFileError(self.path, "race time goes backwards in the log", "a log with a rewind cannot be replayed")
        if action_period_ms is None:
            action_period_ms = self.metadata.get("action_period_ms")
        if action_period_ms is None:
            steps = np.diff(self.times)
            action_period_ms = int(np.median(steps)) if len(steps) else 50
        self.action_period_ms = check_action_period_ms(action_period_ms)
        self._time_ms = int(self.times[0])

    @property
    def time_ms(self) -> int:
        """The race time the playback is at."""
        return self._time_ms

    def reset(self, seed: int | None = None) -> GameState:
        self._time_ms = int(self.times[0])
        return self.states[0].copy()

    def step(self, action: Action) -> GameState:
        self._time_ms += self.action_period_ms
        return self.state_at(self._time_ms)

    def save(self) -> bytes:
        return struct.pack("<q", self._time_ms)

    def restore(self, snapshot: bytes) -> GameState:
        if len(snapshot) != 8:
            raise ConfigError(f"a replay snapshot is 8 bytes (from save()), got {len(snapshot)}")
        (self._time_ms,) = struct.unpack("<q", snapshot)
        return self.state_at(self._time_ms)

    def state_at(self, time_ms: int) -> GameState:
        """The logged state at ``time_ms`` (interpolated between logged states)."""
        times = self.times
        if time_ms >= times[-1]:
            return self.states[-1].copy()
        if time_ms <= times[0]:
            return self.states[0].copy()
        i = int(np.searchsorted(times, time_ms, side="right")) - 1
        a, b = self.states[i], self.states[i + 1]
        if times[i] == time_ms or times[i + 1] == times[i]:
            return a.copy()
        f = (time_ms - times[i]) / (times[i + 1] - times[i])
        out = a.copy()
        out.race_time_ms = int(time_ms)
        out.position = a.position + f * (b.position - a.position)
        out.velocity = a.velocity + f * (b.velocity - a.velocity)
        out.angular_velocity = a.angular_velocity + f * (b.angular_velocity - a.angular_velocity)
        out.yaw = _wrap(a.yaw + f * _wrap(b.yaw - a.yaw))
        out.pitch = a.pitch + f * _wrap(b.pitch - a.pitch)
        out.roll = _wrap(a.roll + f * _wrap(b.roll - a.roll))
        out.rpm = a.rpm + f * (b.rpm - a.rpm)
        out.display_speed_kmh = int(round(out.speed * 3.6))
        out.finished = False
        return out

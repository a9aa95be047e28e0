"""When an episode ends: finished, stuck, lost, or out of time.

Rules, checked in this order each step (``max_distance_m``, ``no_progress_s`` or
``time_limit_s`` set to 0 switches its rule off):

1. ``finished`` — the car crossed the finish (``state.finished``): terminated.
2. ``off_line`` — the car is farther than ``max_distance_m`` (3D) from the reference line:
   terminated (it left the track or fell off).
3. ``no_progress`` — progress did not grow by ``min_progress_m`` within ``no_progress_s``
   of race time: terminated (stuck, stalled, driving the wrong way).
4. ``time_limit`` — ``time_limit_s`` of race time passed since the episode's start (race
   time 0, or the race time of a saved start state): truncated (the car could have gone on,
   so value bootstrapping stays valid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tmstate.errors import ConfigError
from tmstate.core.progress import Location
from tmstate.core.state import GameState

FINISHED = "finished"
OFF_LINE = "off_line"
NO_PROGRESS = "no_progress"
TIME_LIMIT = "time_limit"


@dataclass
class TerminationConfig:
    """Thresholds of the termination rules; 0 switches a rule off (except ``min_progress_m``)."""

    no_progress_s: float = 5.0  # race time allowed without min_progress_m of progress
    min_progress_m: float = 2.0  # progress that counts as "moving on"
    max_distance_m: float = 30.0  # farther than this from the line ends the episode
    time_limit_s: float = 180.0  # truncate at this race time

    def __post_init__(self) -> None:
        for name in ("no_progress_s", "min_progress_m", "max_distance_m", "time_limit_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                off = "" if name == "min_progress_m" else " (0 = off)"
                raise ConfigError(f"TerminationConfig.{name} must be a number >= 0{off}, got {value!r}")


class Termination:
    """Applies the rules above; keeps the little state the no-progress rule needs."""

    def __init__(self, config: TerminationConfig | None = None) -> None:
        self.config = config if config is not None else TerminationConfig()
        self._mark_progress_m = 0.0
        self._mark_time_ms = 0
        self._start_ms = 0

    def reset(self, state: GameState, progress_m: float) -> None:
        """Start a new episode at ``state`` with ``progress_m`` already credited."""
        self._mark_progress_m = float(progress_m)
        self._mark_time_ms = int(state.race_time_ms)
        self._start_ms = int(state.race_time_ms)  # an episode may start at a saved state mid-race

    def check(self, state: GameState, progress_m: float, location: Location) -> tuple[bool, bool, str]:
        """(terminated, truncated, reason); reason is "" when the episode goes on."""
        c = self.config
        time_ms = int(state.race_time_ms)
        if state.finished:
            return True, False, FINISHED
        if c.max_distance_m and location.distance_m > c.max_distance_m:
            return True, False, OFF_LINE
        if progress_m >= self._mark_progress_m + c.min_progress_m or time_ms < self._mark_time_ms:
            self._mark_progress_m = float(progress_m)
            self._mark_time_ms = time_ms
        elif c.no_progress_s and time_ms - self._mark_time_ms > c.no_progress_s * 1000.0:
            return True, False, NO_PROGRESS
        if c.time_limit_s and time_ms - self._start_ms >= c.time_limit_s * 1000.0:
            return False, True, TIME_LIMIT
        return False, False, ""

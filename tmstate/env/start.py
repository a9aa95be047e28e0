"""Where an episode starts: at the line's start, or spread along the track.

Training that always starts at the start line sees the end of the track only once the policy
gets there; starting some episodes further along lets it learn every part at once
(trackmania-gym offers random respawns along the track for this). :class:`StartConfig`
(``EnvConfig.start``) picks the mode:

- ``"line_start"`` (default): race time 0 at the start, as the game starts a race;
- ``"uniform"``: an arc length drawn uniformly from ``[0, max_fraction × length]``;
- ``"ended"``: with probability ``ended_share`` a start up to ``ended_back_m`` before where
  one of the last ``ended_memory`` episodes ended (the hard parts, where policies crash),
  else uniform as above.

On the simulator the car is placed there with the line's heading turned by up to
``yaw_rad``, up to ``offset_m`` to the side and moving at up to ``speed_mps``, all drawn
from the env's seeded generator (``reset(seed=...)``), so a seed gives the same start. On the
game, the env rewinds to the saved state of a :class:`~tmstate.formats.starts.StartBank`
(``<line>.starts.npz`` next to the line, written by ``tmstate record-line --save-states-every``)
nearest below the drawn arc length; offset, heading and speed are those the state was saved with.
With ``bank_every_m`` the bank also grows while training: each time an episode's credited
progress reaches a multiple of ``bank_every_m`` with no saved state yet within half that
distance, the game's state is saved into it (written at the end of the episode), so a bank
can start empty and fill as the policy gets further. Progress and race time of such an
episode count from where the car starts.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from tmstate.errors import ConfigError

START_MODES = ("line_start", "uniform", "ended")
"""Values of :attr:`StartConfig.mode`."""


@dataclass
class StartConfig:
    """Where episodes start (TOML table ``[env.start]``); the module doc has the modes."""

    mode: str = "line_start"  # line_start | uniform | ended
    max_fraction: float = 0.9  # the latest start, as a fraction of the line's length
    offset_m: float = 1.0  # sim: lateral offset drawn from [-offset_m, offset_m]
    yaw_rad: float = 0.05  # sim: heading drawn within +- this of the line's
    speed_mps: float = 10.0  # sim: initial speed drawn from [0, speed_mps]
    ended_share: float = 0.5  # "ended": share of starts near where episodes ended
    ended_back_m: float = 50.0  # "ended": start up to this far before such an end
    ended_memory: int = 100  # "ended": how many episode ends are remembered
    bank: str = ""  # game: the start-state bank ("" = <line>.starts.npz next to the line)
    bank_every_m: float = 0.0  # game: while episodes run, save a state into the bank every this many metres (0 = off)

    def __post_init__(self) -> None:
        if self.mode not in START_MODES:
            raise ConfigError(f"StartConfig.mode must be one of {', '.join(START_MODES)}, got {self.mode!r}")
        if not 0.0 <= self.max_fraction < 1.0:
            raise ConfigError(f"StartConfig.max_fraction must be in [0, 1), got {self.max_fraction!r}")
        if not 0.0 <= self.ended_share <= 1.0:
            raise ConfigError(f"StartConfig.ended_share must be in [0, 1], got {self.ended_share!r}")
        for name in ("offset_m", "yaw_rad", "speed_mps", "ended_back_m", "bank_every_m"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"StartConfig.{name} must be a number >= 0, got {value!r}")
        if self.ended_memory < 1:
            raise ConfigError(f"StartConfig.ended_memory must be >= 1, got {self.ended_memory!r}")

    @property
    def spread(self) -> bool:
        """True when episodes may start elsewhere than the start line."""
        return self.mode != "line_start"


@dataclass(frozen=True)
class Start:
    """One drawn start: where along the line, and (sim) how the car is placed there."""

    arc_m: float
    lateral_m: float = 0.0
    yaw_offset_rad: float = 0.0
    speed_mps: float = 0.0


class StartSampler:
    """Draws starts for a line of ``length_m`` metres and remembers where episodes ended."""

    def __init__(self, config: StartConfig, length_m: float) -> None:
        self.config = config
        self.length_m = float(length_m)
        self.ends: deque[float] = deque(maxlen=config.ended_memory)

    def record_end(self, arc_m: float) -> None:
        """An episode ended at progress ``arc_m`` (used by mode ``"ended"``)."""
        self.ends.append(min(max(float(arc_m), 0.0), self.length_m))

    def draw(self, rng: np.random.Generator) -> Start:
        """A start drawn from ``rng`` (the env's seeded generator)."""
        c = self.config
        latest = c.max_fraction * self.length_m
        if c.mode == "ended" and self.ends and rng.random() < c.ended_share:
            end = self.ends[int(rng.integers(len(self.ends)))]
            arc = end - rng.uniform(0.0, c.ended_back_m)
        else:
            arc = rng.uniform(0.0, latest)
        arc = min(max(arc, 0.0), latest)
        return Start(
            arc_m=float(arc),
            lateral_m=float(rng.uniform(-c.offset_m, c.offset_m)),
            yaw_offset_rad=float(rng.uniform(-c.yaw_rad, c.yaw_rad)),
            speed_mps=float(rng.uniform(0.0, c.speed_mps)),
        )

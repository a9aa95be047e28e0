"""The reward: named terms, each weighted, summed.

Each step the env calls :meth:`Reward.terms` and puts the dict in ``info["reward_terms"]``;
the reward is :func:`total` of it. Terms (all present every step, so logs have fixed keys):

- ``progress`` — ``progress * Δprogress_m``: metres gained along the reference line this
  step (after the anti-shortcut rule); negative when going backwards.
- ``time`` — ``-time * Δrace_time_ms``: the race time that passed this step. The backend
  returns the finish tick itself when the car finishes mid-step, so the last step is
  charged exactly its partial duration.
- ``finish`` — ``finish`` once, on the step where ``state.finished`` becomes true.
- ``speed`` — ``speed * |v| * Δt_s`` (off by default): rewards speed, even off the line.
- ``lateral`` — ``-lateral * |lateral_m| * Δt_s`` (off by default): keeps the car near the line.

``speed`` and ``lateral`` are weighted per second so the return does not depend on the
action period. Defaults and the reasoning behind them are in docs/reward.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tmstate.errors import ConfigError
from tmstate.core.progress import Location
from tmstate.core.state import GameState

TERMS = ("progress", "time", "finish", "speed", "lateral")
"""Names of the reward terms, in the order they are logged."""


@dataclass
class RewardConfig:
    """Weights of the reward terms (see docs/reward.md for why these defaults)."""

    progress: float = 0.01  # per metre along the line (Linesight: 0.01)
    time: float = 0.0001  # per ms of race time (Linesight: 6/5000 = 0.0012)
    finish: float = 1.0  # once, on the finishing step
    speed: float = 0.0  # per (m/s x s)
    lateral: float = 0.0  # per (m x s) away from the line

    def __post_init__(self) -> None:
        for name in TERMS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"RewardConfig.{name} must be a finite number, got {value!r}")

    @property
    def break_even_speed(self) -> float:
        """Speed along the line (m/s) above which progress outweighs the time penalty."""
        if self.progress <= 0:
            return math.inf
        return self.time * 1000.0 / self.progress


class Reward:
    """Computes the weighted reward terms of one step."""

    def __init__(self, config: RewardConfig | None = None) -> None:
        self.config = config if config is not None else RewardConfig()

    def terms(self, prev: GameState, state: GameState, progress_delta_m: float,
              location: Location) -> dict[str, float]:
        """The weighted named terms of the step ``prev -> state``; the reward is their sum."""
        c = self.config
        elapsed_ms = max(0, int(state.race_time_ms) - int(prev.race_time_ms))
        elapsed_s = elapsed_ms / 1000.0
        finished_now = bool(state.finished) and not bool(prev.finished)
        return {
            "progress": c.progress * float(progress_delta_m),
            "time": -c.time * elapsed_ms,
            "finish": c.finish if finished_now else 0.0,
            "speed": c.speed * state.speed * elapsed_s if c.speed else 0.0,
            "lateral": -c.lateral * abs(location.lateral_m) * elapsed_s if c.lateral else 0.0,
        }


def total(terms: dict[str, float]) -> float:
    """The reward: the sum of the terms."""
    return float(sum(terms.values()))

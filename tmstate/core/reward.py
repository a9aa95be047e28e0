"""The reward: named terms from a registry, each weighted by name, summed.

Each step the scorer calls :meth:`Reward.terms` and the env puts the dict in
``info["reward_terms"]`` (and the episode log stores it, one array per term); the reward is
:func:`total` of it. A term is a :class:`RewardTerm` in :data:`REGISTRY`: a name, a function
of the step (:class:`StepFacts`) giving its *unweighted* value, and what it means. Its
weighted value is ``weight * value``, the weight taken by name from :class:`RewardConfig`.

Built-in terms (always present every step, so logs have fixed keys):

- ``progress`` — ``progress * Δprogress_m``: metres gained along the reference line this
  step (after the anti-shortcut rule); negative when going backwards.
- ``time`` — ``-time * Δrace_time_ms``: the race time that passed this step. The backend
  returns the finish tick itself when the car finishes mid-step, so the last step is
  charged exactly its partial duration.
- ``finish`` — ``finish`` once, on the step where ``state.finished`` becomes true.
- ``speed`` — ``speed * |v| * Δt_s`` (off by default): rewards speed, even off the line.
- ``lateral`` — ``-lateral * |lateral_m| * Δt_s`` (off by default): keeps the car near the line.

``speed`` and ``lateral`` are weighted per second so the return does not depend on the
action period. More terms: :func:`register_term`, then give them a weight in
``RewardConfig.extra`` (present in the dict only when weighted). Defaults, the reasoning
behind them and an example of a new term are in docs/reward.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from tmstate.core.progress import Location
from tmstate.core.state import GameState
from tmstate.errors import ConfigError


class StepFacts(NamedTuple):
    """What a term may look at: the step ``prev -> state`` and where it ended on the line."""

    prev: GameState
    state: GameState
    progress_delta_m: float  # progress credited by this step
    location: Location  # of ``state`` on the line
    elapsed_ms: int  # race time of the step (>= 0)

    @property
    def elapsed_s(self) -> float:
        return self.elapsed_ms / 1000.0


@dataclass(frozen=True)
class RewardTerm:
    """One named term: ``value(step)`` is its unweighted value (the sign it should pay with)."""

    name: str
    value: Callable[[StepFacts], float]
    doc: str = ""


REGISTRY: dict[str, RewardTerm] = {}
"""Every known reward term by name (the built-ins, then those added by :func:`register_term`)."""

BUILTIN_TERMS = ("progress", "time", "finish", "speed", "lateral")
"""The terms with a field of their own in :class:`RewardConfig`, in the order they are logged."""

TERMS = BUILTIN_TERMS
"""Names of the built-in reward terms (kept for code that lists the fixed log keys)."""


def register_term(name: str, doc: str = "") -> Callable[[Callable[[StepFacts], float]], Callable[[StepFacts], float]]:
    """Decorator: add ``fn(step) -> float`` to :data:`REGISTRY` as the term ``name``.

    Re-registering a name replaces it (a notebook re-running its cell); a built-in cannot be
    replaced. Give the term a weight with ``RewardConfig(extra={name: weight})`` (TOML:
    ``[reward.extra]``; env: ``reward={"extra": {name: weight}}``)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"a reward term name must be an identifier, got {name!r}")
    if name in BUILTIN_TERMS or name == "extra":
        raise ConfigError(f"reward term {name!r} is built in; register the new term under another name")

    def add(fn: Callable[[StepFacts], float]) -> Callable[[StepFacts], float]:
        REGISTRY[name] = RewardTerm(name, fn, doc or (fn.__doc__ or "").strip())
        return fn

    return add


def _builtin(name: str, doc: str, fn: Callable[[StepFacts], float]) -> None:
    REGISTRY[name] = RewardTerm(name, fn, doc)


_builtin("progress", "metres of line credited this step", lambda s: float(s.progress_delta_m))
_builtin("time", "minus the race time of the step, ms", lambda s: -float(s.elapsed_ms))
_builtin("finish", "1 on the step the car finishes",
         lambda s: 1.0 if s.state.finished and not s.prev.finished else 0.0)
_builtin("speed", "speed times the step's duration, m", lambda s: s.state.speed * s.elapsed_s)
_builtin("lateral", "minus |lateral offset| times the step's duration, m s",
         lambda s: -abs(s.location.lateral_m) * s.elapsed_s)


@dataclass
class RewardConfig:
    """Weights of the reward terms, by term name (see docs/reward.md for why these defaults)."""

    progress: float = 0.01  # per metre along the line (Linesight: 0.01)
    time: float = 0.0001  # per ms of race time (Linesight: 6/5000 = 0.0012)
    finish: float = 1.0  # once, on the finishing step
    speed: float = 0.0  # per (m/s x s)
    lateral: float = 0.0  # per (m x s) away from the line
    extra: dict[str, float] = field(default_factory=dict)
    """Weights of registered terms beyond the built-ins (:func:`register_term`), by name."""

    def __post_init__(self) -> None:
        for name in BUILTIN_TERMS:
            _check_weight(name, getattr(self, name))
        if not isinstance(self.extra, Mapping):
            raise ConfigError(f"RewardConfig.extra must be a table of term weights, got {self.extra!r}")
        for name, value in self.extra.items():
            if name in BUILTIN_TERMS:
                raise ConfigError(f"RewardConfig.extra.{name}: {name!r} is built in; set RewardConfig.{name} instead")
            if name not in REGISTRY:
                known = ", ".join(n for n in REGISTRY if n not in BUILTIN_TERMS) or "none registered"
                raise ConfigError(f"RewardConfig.extra: unknown reward term {name!r} (registered: {known}); "
                                  "add it with tmstate.core.reward.register_term before configuring it")
            _check_weight(f"extra.{name}", value)
        self.extra = {name: float(value) for name, value in self.extra.items()}

    @property
    def weights(self) -> dict[str, float]:
        """Every weighted term by name: the built-ins, then the extra ones."""
        return {**{name: float(getattr(self, name)) for name in BUILTIN_TERMS}, **self.extra}

    @property
    def break_even_speed(self) -> float:
        """Speed along the line (m/s) above which progress outweighs the time penalty."""
        if self.progress <= 0:
            return math.inf
        return self.time * 1000.0 / self.progress


def _check_weight(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"RewardConfig.{name} must be a finite number, got {value!r}")


def reward_table(weights: Mapping) -> dict:
    """Weights by term name as a RewardConfig table: registered custom names move under
    ``extra``; anything else stays, for the config loader to refuse as an unknown key."""
    table = {k: v for k, v in weights.items() if not (k in REGISTRY and k not in BUILTIN_TERMS)}
    custom = {k: v for k, v in weights.items() if k not in table}
    if custom:
        extra = table.get("extra") or {}
        table["extra"] = {**(dict(extra) if isinstance(extra, Mapping) else {}), **custom}
    return table


def reward_config(value: Reward | RewardConfig | Mapping | None, where: str = "RewardConfig") -> RewardConfig:
    """A :class:`RewardConfig` from a Reward, a RewardConfig, a dict of weights by name
    (built-in names, registered ones, or ``extra``), or None (defaults)."""
    if value is None:
        return RewardConfig()
    if isinstance(value, Reward):
        return value.config
    if isinstance(value, RewardConfig):
        return value
    if isinstance(value, Mapping):
        from tmstate.config import from_dict

        return from_dict(RewardConfig, reward_table(value), where=where)
    raise ConfigError(f"reward must be a Reward, a RewardConfig or a dict of weights, got {type(value).__name__}")


class Reward:
    """Computes the weighted reward terms of one step from the registry."""

    def __init__(self, config: RewardConfig | Mapping | None = None) -> None:
        self.config = reward_config(config)
        # (name, value function, weight) of every term the dict carries: all built-ins (fixed
        # log keys), the extra ones that have a weight. Weight 0 skips the call.
        self._terms = [(name, REGISTRY[name].value, weight) for name, weight in self.config.weights.items()]

    @property
    def names(self) -> list[str]:
        """The names of the terms :meth:`terms` returns, in order."""
        return [name for name, _, _ in self._terms]

    def terms(self, prev: GameState, state: GameState, progress_delta_m: float,
              location: Location) -> dict[str, float]:
        """The weighted named terms of the step ``prev -> state``; the reward is their sum."""
        step = StepFacts(prev, state, progress_delta_m, location,
                         max(0, int(state.race_time_ms) - int(prev.race_time_ms)))
        return {name: weight * value(step) if weight else 0.0 for name, value, weight in self._terms}


def total(terms: dict[str, float]) -> float:
    """The reward: the sum of the terms."""
    return float(sum(terms.values()))

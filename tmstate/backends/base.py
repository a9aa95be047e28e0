"""The one interface between the environment and a game: reset, step, save/restore, frame.

Three backends implement it:

- ``"tminterface"`` — the real TMNF through the plugin and :mod:`tmstate.link.bridge`
  (:class:`tmstate.backends.tminterface.GameBackend`);
- ``"sim"`` — the embedded simulator, a simplified car on a track corridor that is *not*
  TMNF physics (:class:`tmstate.backends.sim.backend.SimBackend`);
- ``"replay"`` — a logged episode played back (:class:`tmstate.backends.replay.ReplayBackend`).

The env never sees more of a game than this, which keeps reward, termination and
observation code identical across the three.
"""

from __future__ import annotations

import abc
import importlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tmstate.errors import ActionError, ConfigError
from tmstate.core.state import ANALOG_MAX, GameState


@dataclass(frozen=True, slots=True)
class Action:
    """Inputs for one action period, in normalised units.

    steer: -1 (full left) .. 1 (full right), sent as analog steer ±65536 (or, in the
    game's binary steering mode, the Left/Right key for |steer| >= 0.5).
    gas: 0..1 accelerator. TMNF's acceleration is on or off: the game link presses
    accelerate from 0.3 up (19661/65536, the cut TMNF applies to an analog gas) and
    nothing below (the simulator backend, not TMNF physics, treats it as proportional).
    brake: pressed or not (TMNF's brake is a binary input).
    """

    steer: float = 0.0
    gas: float = 0.0
    brake: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.steer) and math.isfinite(self.gas)):
            raise ActionError(f"action has a non-finite value: steer={self.steer}, gas={self.gas}")
        if not -1.0 <= self.steer <= 1.0:
            raise ActionError(f"steer must be in [-1, 1], got {self.steer}")
        if not 0.0 <= self.gas <= 1.0:
            raise ActionError(f"gas must be in [0, 1], got {self.gas}")

    @property
    def analog_steer(self) -> int:
        """Steer as TMInterface's analog value, -65536..65536."""
        return int(round(self.steer * ANALOG_MAX))

    @property
    def analog_gas(self) -> int:
        """Gas as TMInterface's analog value, 0..65536."""
        return int(round(self.gas * ANALOG_MAX))


RELEASED = Action()
"""No input at all: what the plugin applies when it loses its client."""


class Backend(abc.ABC):
    """A game the env can drive. One instance drives one car.

    ``step`` advances the game by one action period (``action_period_ms`` of race time)
    with the action held, and returns the state at the end of that period (or at the
    finish tick, which may come earlier).
    """

    action_period_ms: int = 50

    @abc.abstractmethod
    def reset(self, seed: int | None = None) -> GameState:
        """Put the car at the start (race time 0) and return the state there."""

    @abc.abstractmethod
    def step(self, action: Action) -> GameState:
        """Hold ``action`` for one action period; return the state after it."""

    @abc.abstractmethod
    def save(self) -> bytes:
        """An opaque snapshot of the whole game state (for ``restore``)."""

    @abc.abstractmethod
    def restore(self, snapshot: bytes) -> GameState:
        """Go back to a snapshot from ``save``; return the state there."""

    def frame(self, width: int, height: int) -> np.ndarray | None:
        """The current image as (height, width, 3) uint8 RGB, or None if this backend has none."""
        return None

    def map_identity(self) -> tuple[str, str] | None:
        """(uid, name) of the map the game has loaded, or None when this backend drives no
        game map (the simulator and replays drive the line itself). An empty uid means the
        game could not tell; the env then checks the start position instead."""
        return None

    def close(self) -> None:
        """Release sockets, windows and processes. Safe to call twice."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


BACKENDS: dict[str, str] = {
    "tminterface": "tmstate.backends.tminterface:GameBackend",
    "sim": "tmstate.backends.sim.backend:SimBackend",
    "replay": "tmstate.backends.replay:ReplayBackend",
}


def backend_class(name: str) -> type[Backend]:
    """The backend class registered under ``name`` (imported on first use)."""
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ConfigError(
            f"unknown backend {name!r}; choose one of {', '.join(sorted(BACKENDS))}"
        ) from None
    module_name, _, class_name = target.partition(":")
    cls: Any = getattr(importlib.import_module(module_name), class_name)
    return cls

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
from typing import Any

import numpy as np

from tmstate.errors import ConfigError
from tmstate.core.state import Action, GameState


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

"""Action types: how an agent's action becomes the game's inputs.

Picked by a config key (``EnvConfig.action``), like highway-env's action types:

- ``"continuous"`` — ``Box(-1, 1, (2,))`` = (steer, gas − brake). ``steer`` goes to the
  analog steer (±65536, + = right). The second value is split because TMNF's brake is a
  binary input: ``v > 0`` is analog gas ``v``; ``v <= -brake_threshold`` presses the brake
  (no gas); in between (``-brake_threshold < v <= 0``) the car coasts, no input. The dead
  zone (default 0.5) keeps a policy whose output hovers around 0 from braking half the time.
- ``"discrete"`` — ``Discrete(12)``: the usual combinations of {no steer, full left, full
  right} x {nothing, gas, brake, gas + brake} (the 12 inputs Linesight uses; see
  :data:`DISCRETE_ACTIONS` for the order).

A NaN, a wrong shape or a value outside the space raises :class:`~tmstate.errors.ActionError`
(no silent clipping: an agent emitting out-of-range actions has a bug worth seeing).
"""

from __future__ import annotations

import abc
import math
from typing import Any

import numpy as np
from gymnasium import spaces

from tmstate.core.state import Action
from tmstate.errors import ActionError, ConfigError

DISCRETE_ACTIONS: tuple[Action, ...] = tuple(
    Action(steer=steer, gas=gas, brake=brake)
    for gas, brake in ((1.0, False), (0.0, False), (0.0, True), (1.0, True))
    for steer in (0.0, -1.0, 1.0)
)
"""The 12 discrete actions: index = 3 x pedal + steer, pedals (gas, nothing, brake,
gas + brake), steer (straight, left, right). Index 0 is "full gas, straight"."""

DISCRETE_NAMES: tuple[str, ...] = tuple(
    f"{pedal}{steer}" for pedal in ("gas", "coast", "brake", "gas+brake") for steer in ("", "+left", "+right")
)


class ActionType(abc.ABC):
    """Turns the agent's actions into :class:`~tmstate.backends.base.Action` inputs."""

    name: str = ""

    @abc.abstractmethod
    def space(self) -> spaces.Space:
        """The Gymnasium action space."""

    @abc.abstractmethod
    def to_input(self, action: Any) -> Action:
        """The inputs for one agent action (ActionError when it is not in the space)."""


class ContinuousAction(ActionType):
    """``Box(-1, 1, (2,))`` = (steer, gas − brake); see the module doc for the brake mapping."""

    name = "continuous"

    def __init__(self, brake_threshold: float = 0.5) -> None:
        if not 0.0 <= brake_threshold <= 1.0:
            raise ConfigError(f"brake_threshold must be in [0, 1], got {brake_threshold}")
        self.brake_threshold = float(brake_threshold)
        self._space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    def space(self) -> spaces.Box:
        return self._space

    def to_input(self, action: Any) -> Action:
        try:
            if isinstance(action, np.ndarray) and action.shape == (2,):
                steer, pedal = action.tolist()  # the usual case, kept cheap
                steer, pedal = float(steer), float(pedal)
            else:
                steer, pedal = (float(v) for v in np.asarray(action, dtype=np.float64).reshape(-1))
        except (TypeError, ValueError):
            raise ActionError(
                f"expected a continuous action of 2 numbers (steer, gas - brake), got {action!r}"
            ) from None
        if not (math.isfinite(steer) and math.isfinite(pedal)):
            raise ActionError(f"action is NaN or infinite: ({steer}, {pedal}); the policy output is broken")
        # A float32 action at the bound may read 1.0000000x after conversion: allow that much.
        if not (-1.000001 <= steer <= 1.000001 and -1.000001 <= pedal <= 1.000001):
            raise ActionError(f"action ({steer}, {pedal}) is outside [-1, 1]^2; clip it to the action space")
        steer = min(max(steer, -1.0), 1.0)
        if pedal > 0.0:
            return Action(steer, min(pedal, 1.0), False)
        return Action(steer, 0.0, pedal <= -self.brake_threshold and pedal < 0.0)


class DiscreteAction(ActionType):
    """``Discrete(12)``: see :data:`DISCRETE_ACTIONS`."""

    name = "discrete"

    def __init__(self) -> None:
        self._space = spaces.Discrete(len(DISCRETE_ACTIONS))

    def space(self) -> spaces.Discrete:
        return self._space

    def to_input(self, action: Any) -> Action:
        if isinstance(action, np.ndarray) and action.size == 1 and np.issubdtype(action.dtype, np.integer):
            action = action.item()
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
            raise ActionError(f"expected an integer action 0..{len(DISCRETE_ACTIONS) - 1}, got {action!r}")
        if not 0 <= action < len(DISCRETE_ACTIONS):
            raise ActionError(f"discrete action {action} is outside 0..{len(DISCRETE_ACTIONS) - 1}")
        return DISCRETE_ACTIONS[int(action)]


ACTION_TYPES: dict[str, type[ActionType]] = {"continuous": ContinuousAction, "discrete": DiscreteAction}


def action_type(name: str, **options: Any) -> ActionType:
    """The action type registered under ``name``."""
    try:
        cls = ACTION_TYPES[name]
    except KeyError:
        raise ConfigError(f"unknown action type {name!r}; choose one of {', '.join(ACTION_TYPES)}") from None
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"action type {name!r}: {exc}") from None

"""The game state every backend returns: one snapshot of the car at one race time.

``GameState`` is what the reward, termination, observation and log code see — never a
socket — which is what makes logged states replayable offline. Units are SI (metres,
m/s, radians) unless the field name says otherwise (``race_time_ms``, ``display_speed_kmh``).

Coordinates are TMNF world coordinates: metres, y up. ``yaw`` is the rotation about +y;
with pitch and roll at zero the car's forward vector is ``(sin yaw, 0, cos yaw)`` (see
:func:`forward_vector`). Seen from above the world is left-handed: facing +z, +x is the
driver's right, so steering right makes yaw grow and steering left makes it shrink (checked
on the real ghosts in ../shared/realdata: their velocity follows this forward vector and
their yaw rises while they steer right). Full TMInterface save-state blobs (``SaveState().ToArray()``)
decode through :func:`decode_sim_state` for users who need every field the game keeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tmstate.errors import ActionError, ConfigError

WHEELS = ("front_left", "front_right", "rear_right", "rear_left")
"""Order of the per-wheel fields, as TMInterface lists ``SimulationWheels``."""

ANALOG_MAX = 65536
"""Full deflection of an analog input in TMInterface (steer -65536..65536, gas 0..65536)."""

TICK_MS = 10
"""TMNF's simulation tick: race time moves in steps of 10 ms."""

MAX_ACTION_PERIOD_MS = 100_000
"""Longest action period the plugin accepts (docs/protocol.md, SET_ACTION_PERIOD)."""


def check_action_period_ms(value: object, name: str = "action_period_ms") -> int:
    """``value`` as an int if it is a whole number of ticks in 10..100000 ms; ConfigError if not.

    The one rule for every place that takes an action period (env config, game and sim
    backends, replay, the bridge), so they accept and refuse the same values."""
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
            or value % TICK_MS or not TICK_MS <= value <= MAX_ACTION_PERIOD_MS):
        raise ConfigError(f"{name} must be a multiple of {TICK_MS} in {TICK_MS}..{MAX_ACTION_PERIOD_MS} ms, "
                          f"got {value!r}")
    return int(value)


def _zeros3() -> np.ndarray:
    return np.zeros(3, dtype=np.float64)


@dataclass(slots=True)
class GameState:
    """The car and race at one simulation tick.

    Inputs (``steer``, ``gas``, ``brake``) are the ones in force at this tick, normalised:
    steer -1 (full left) .. 1 (full right), gas 0..1, brake 0 or 1.
    """

    race_time_ms: int = 0
    position: np.ndarray = field(default_factory=_zeros3)
    velocity: np.ndarray = field(default_factory=_zeros3)
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    angular_velocity: np.ndarray = field(default_factory=_zeros3)
    display_speed_kmh: int = 0
    checkpoint_count: int = 0
    checkpoint_target: int = 0
    lap_count: int = 0
    finished: bool = False
    gear: int = 0
    rpm: float = 0.0
    wheel_contact: tuple[bool, bool, bool, bool] = (False, False, False, False)
    wheel_material: tuple[int, int, int, int] = (0, 0, 0, 0)
    steer: float = 0.0
    gas: float = 0.0
    brake: float = 0.0
    respawn_count: int = 0
    in_race: bool = True

    @property
    def speed(self) -> float:
        """Speed in m/s: the norm of the velocity."""
        v = self.velocity
        return math.sqrt(float(v[0]) ** 2 + float(v[1]) ** 2 + float(v[2]) ** 2)

    @property
    def race_time_s(self) -> float:
        return self.race_time_ms / 1000.0

    def copy(self) -> GameState:
        """A deep copy (the arrays are copied too)."""
        return GameState(
            race_time_ms=self.race_time_ms,
            position=self.position.copy(),
            velocity=self.velocity.copy(),
            yaw=self.yaw,
            pitch=self.pitch,
            roll=self.roll,
            angular_velocity=self.angular_velocity.copy(),
            display_speed_kmh=self.display_speed_kmh,
            checkpoint_count=self.checkpoint_count,
            checkpoint_target=self.checkpoint_target,
            lap_count=self.lap_count,
            finished=self.finished,
            gear=self.gear,
            rpm=self.rpm,
            wheel_contact=self.wheel_contact,
            wheel_material=self.wheel_material,
            steer=self.steer,
            gas=self.gas,
            brake=self.brake,
            respawn_count=self.respawn_count,
            in_race=self.in_race,
        )


def forward_vector(yaw: float, pitch: float = 0.0) -> np.ndarray:
    """The car's forward unit vector for a yaw (and pitch) in radians, y up."""
    cp = math.cos(pitch)
    return np.array([math.sin(yaw) * cp, -math.sin(pitch), math.cos(yaw) * cp])


def decode_sim_state(blob: bytes):  # -> tminterface.structs.SimStateData
    """Decode a TMInterface save-state blob (``SaveState().ToArray()``) into every field.

    Uses the ``tminterface`` package's ``SimStateData`` (only its structs; its Windows
    shared-memory client does not work on Linux). Imported lazily: it is only needed by
    users who want the full state.
    """
    from tminterface.structs import SimStateData

    from tmstate.errors import ProtocolError

    if len(blob) < SimStateData.min_size:
        raise ProtocolError(
            f"save-state blob of {len(blob)} bytes is shorter than the {SimStateData.min_size} "
            "bytes of a TMInterface SimulationState — was it cut short?"
        )
    return SimStateData(bytearray(blob))


# --- the inputs: what a step holds for one action period ---------------------------------


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

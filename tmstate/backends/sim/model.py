"""The simulator's car models: the car fitted to real TMNF ghosts, and the previous car.

Both are written once as a per-tick function of an ``op`` namespace — :class:`ArrayOps`
(numpy arrays, one entry per car: the vector env, the fitting, the fidelity benchmark) or
:class:`ScalarOps` (Python floats: one car, where numpy's per-call overhead would dominate)
— so every path runs the same arithmetic.

**The calibrated car** (:class:`CarParams`, parameters in ``car_params.json``, fitted by
``tmstate sim-calibrate``; docs/sim.md says which are fitted and which are priors), per
10 ms tick, on flat ground:

- steering: the front-wheel angle moves towards ``steer * steer_max(speed)`` (a table over
  speed) at most ``steer_rate`` rad/s;
- yaw: the yaw rate follows ``v * tan(wheel angle) / (yaw_base + yaw_speed_k * v^2)`` with a
  first-order lag ``yaw_lag_s``;
- grip and slides: the velocity keeps its world direction while the body turns; the
  lateral (sideways) velocity is pulled back to zero by at most ``grip(speed)`` m/s^2 (a table
  rising with speed), so asking for more than the grip gives a slide. Slip beyond
  ``slide_free_mps`` costs ``slide_drag_mps2``; the sideways pull turns the velocity without
  slowing it (TMNF's slides keep their speed);
- engine: gas is on or off (TMNF's acceleration is not analog: gas > 0.5 is on); the thrust
  is a table over speed (the ghosts show steps near 100, 200 and 400 km/h, which are not
  all at gear changes); five gears: an upshift at
  ``upshift_kmh`` cuts the thrust for ``shift_dead_s``; a downshift happens
  ``downshift_margin_kmh`` below the upshift speed; cornering drag per unit of lateral
  acceleration, and a steering drag per radian of wheel angle that fades out by
  ``steer_drag_fade_kmh``; gas and brake together (the drift input of TAS runs) cut the
  thrust and slow the car by ``gas_brake_mps2``; air drag, coasting, braking alone and
  reversing are priors;
- rpm: linear in speed within each gear, from ``rpm_idle`` to ``rpm_max`` at the upshift.

**The previous car** (:class:`PreviousCar`): the simulator's car before calibration, kept
as the preset ``"previous"`` for comparison (a kinematic bicycle whose grip falls with
speed, no gearbox, linear thrust fall-off to 85 m/s).
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tmstate.errors import ConfigError, FileFormatError

TICK_S = 0.01
KMH = 1.0 / 3.6
PARAMS_PATH = Path(__file__).resolve().parent / "car_params.json"
"""The shipped parameters of the calibrated car (written by ``tmstate sim-calibrate``)."""
PRESETS = ("calibrated", "previous")


# --- numeric back ends -----------------------------------------------------------------

try:  # np.interp's compiled core: np.interp checks for complex input first, 2x its cost on 64 cars
    from numpy._core.multiarray import interp as _interp
except ImportError:  # numpy < 2
    from numpy.core.multiarray import interp as _interp  # type: ignore[no-redef]


class ArrayOps:
    """Per-tick functions on numpy arrays (many cars)."""

    sin, cos, tan, abs, sign, sqrt = np.sin, np.cos, np.tan, np.abs, np.sign, np.sqrt
    minimum, maximum, where = np.minimum, np.maximum, np.where

    @staticmethod
    def any(v) -> bool:
        return bool(v.any()) if isinstance(v, np.ndarray) else bool(v)

    @staticmethod
    def clip(v, lo, hi):
        return np.minimum(np.maximum(v, lo), hi)

    @staticmethod
    def interp(v, xs, ys):
        return _interp(v, xs, ys)  # np.interp without its argument checks: the tables are float64 arrays

    @staticmethod
    def take(table, index):
        return table[index]


class ScalarOps:
    """The same functions on Python floats (one car)."""

    sin, cos, tan, sqrt = math.sin, math.cos, math.tan, math.sqrt
    abs, minimum, maximum, any = abs, min, max, bool

    @staticmethod
    def sign(v: float) -> float:
        return (v > 0.0) - (v < 0.0)

    @staticmethod
    def clip(v: float, lo: float, hi: float) -> float:
        return lo if v < lo else (hi if v > hi else v)

    @staticmethod
    def where(cond, a, b):
        return a if cond else b

    @staticmethod
    def interp(v: float, xs: list[float], ys: list[float]) -> float:
        if v <= xs[0]:
            return ys[0]
        if v >= xs[-1]:
            return ys[-1]
        j = bisect.bisect_right(xs, v)
        x0, x1 = xs[j - 1], xs[j]
        return ys[j - 1] + (ys[j] - ys[j - 1]) * (v - x0) / (x1 - x0)

    @staticmethod
    def take(table, index):
        return table[index]


# --- the calibrated car ----------------------------------------------------------------


@dataclass
class CarParams:
    """Parameters of the calibrated car (speeds in km/h where the name says so, else SI)."""

    steer_speeds_kmh: tuple[float, ...] = (0.0, 30.0, 100.0, 200.0, 275.0, 300.0, 400.0, 475.0)
    steer_max_deg: tuple[float, ...] = (16.0, 16.0, 10.6, 10.6, 10.6, 9.2, 9.2, 9.2)
    steer_rate_rad_s: float = 4.5
    yaw_base_m: float = 3.8
    yaw_speed_k: float = 0.00173
    yaw_lag_s: float = 0.17
    grip_speeds_kmh: tuple[float, ...] = (0.0, 125.0, 225.0, 325.0, 425.0, 475.0)
    grip_mps2: tuple[float, ...] = (28.0, 28.0, 61.0, 81.0, 95.0, 101.0)
    slip_keep: float = 0.5
    upshift_kmh: tuple[float, ...] = (102.0, 162.0, 235.0, 342.0)
    downshift_margin_kmh: float = 15.0
    shift_dead_s: float = 0.17
    thrust_speeds_kmh: tuple[float, ...] = (0.0, 50.0, 98.0, 104.0, 150.0, 196.0, 204.0, 250.0, 300.0, 350.0,
                                             396.0, 404.0, 450.0, 530.0)
    thrust_mps2: tuple[float, ...] = (15.8, 15.8, 15.8, 10.9, 10.9, 10.9, 7.0, 7.0, 6.9, 6.7, 6.7, 5.8, 5.7, 4.6)
    corner_drag: float = 0.0
    steer_drag_mps2_per_rad: float = 0.0
    steer_drag_fade_kmh: float = 150.0
    slide_free_mps: float = 8.0
    slide_drag_mps2: float = 4.6
    drag_per_m: float = 0.0
    coast_mps2: float = 1.5
    brake_mps2: float = 16.0
    gas_brake_mps2: float = 4.0
    reverse_mps2: float = 5.0
    reverse_max_mps: float = 10.0
    dirt_thrust_factor: float = 1.0
    dirt_grip_factor: float = 1.0
    dirt_drag_mps2: float = 0.0
    grass_thrust_factor: float = 1.0
    grass_grip_factor: float = 1.0
    grass_drag_mps2: float = 0.0
    rpm_idle: float = 1500.0
    rpm_max: float = 11000.0
    name: str = "calibrated"

    def __post_init__(self) -> None:
        for table, values, n in (("steer", self.steer_max_deg, len(self.steer_speeds_kmh)),
                                 ("grip", self.grip_mps2, len(self.grip_speeds_kmh))):
            if len(values) != n or n < 1:
                raise ConfigError(f"CarParams: the {table} table needs one value per speed, got {len(values)} for {n}")
        for name in ("steer_speeds_kmh", "grip_speeds_kmh", "upshift_kmh"):
            v = list(getattr(self, name))
            if v != sorted(v):
                raise ConfigError(f"CarParams.{name} must be increasing, got {v}")
        if len(self.upshift_kmh) != 4:
            raise ConfigError(f"CarParams: five gears need 4 upshift speeds, got {len(self.upshift_kmh)}")
        if len(self.thrust_mps2) != len(self.thrust_speeds_kmh) or list(self.thrust_speeds_kmh) != sorted(self.thrust_speeds_kmh):
            raise ConfigError("CarParams: the thrust table needs increasing speeds and one value per speed")
        for name in ("steer_rate_rad_s", "yaw_base_m", "yaw_lag_s", "brake_mps2", "rpm_max"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"CarParams.{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.slip_keep <= 1:
            raise ConfigError(f"CarParams.slip_keep must be in (0, 1], got {self.slip_keep}")

    @classmethod
    def from_dict(cls, data: dict, where: str = "car parameters") -> CarParams:
        """A CarParams from a dict of its fields (lists become tuples); ConfigError on unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"{where}: unknown car parameter(s) {sorted(unknown)}; known: {sorted(known)}")
        values: dict[str, Any] = {k: tuple(float(x) for x in v) if isinstance(v, list | tuple) else v
                                  for k, v in data.items()}
        return cls(**values)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


class Tables:
    """The speed tables of a :class:`Prepared` as numpy arrays (same attribute names)."""

    steer_v: np.ndarray
    steer_max: np.ndarray
    grip_v: np.ndarray
    grip: np.ndarray
    gear_low: np.ndarray
    thrust_v: np.ndarray
    thrust: np.ndarray
    up: np.ndarray
    down: np.ndarray
    rpm_span: np.ndarray


class Prepared:
    """A :class:`CarParams` turned into per-tick constants, as lists (scalar path) and arrays."""

    def __init__(self, p: CarParams) -> None:
        self.params = p
        self.steer_v = [v * KMH for v in p.steer_speeds_kmh]
        self.steer_max = [math.radians(d) for d in p.steer_max_deg]
        self.steer_step = p.steer_rate_rad_s * TICK_S
        self.yaw_base = p.yaw_base_m
        self.yaw_k = p.yaw_speed_k
        self.yaw_alpha = min(TICK_S / p.yaw_lag_s, 1.0)
        self.grip_v = [v * KMH for v in p.grip_speeds_kmh]
        self.grip = list(p.grip_mps2)
        self.slip_rate = p.slip_keep / TICK_S
        ups = [v * KMH for v in p.upshift_kmh]
        lows = [0.0] + ups
        highs = ups + [p.thrust_speeds_kmh[-1] * KMH]
        self.gear_low = lows
        self.thrust_v = [v * KMH for v in p.thrust_speeds_kmh]
        self.thrust = list(p.thrust_mps2)
        self.up = ups + [math.inf]
        self.down = [-math.inf] + [u - p.downshift_margin_kmh * KMH for u in ups]
        self.dead = p.shift_dead_s
        self.corner = p.corner_drag
        self.steer_drag = p.steer_drag_mps2_per_rad
        self.steer_fade = 1.0 / max(p.steer_drag_fade_kmh * KMH, 1e-6)
        self.slide_free = p.slide_free_mps
        self.slide_drag = p.slide_drag_mps2
        self.drag = p.drag_per_m
        self.coast = p.coast_mps2
        self.brake = p.brake_mps2
        self.gas_brake = p.gas_brake_mps2
        self.reverse = p.reverse_mps2
        self.reverse_max = p.reverse_max_mps
        self.rpm_idle, self.rpm_max = p.rpm_idle, p.rpm_max
        # per surface class (0 road, 1 dirt, 2 grass): thrust factor, grip factor, extra drag
        self.surface_thrust = np.array([1.0, p.dirt_thrust_factor, p.grass_thrust_factor])
        self.surface_grip = np.array([1.0, p.dirt_grip_factor, p.grass_grip_factor])
        self.surface_drag = np.array([0.0, p.dirt_drag_mps2, p.grass_drag_mps2])
        self.rpm_span = [h - lo for lo, h in zip(lows, highs, strict=True)]
        self.arrays = Tables()
        for name in ("steer_v", "steer_max", "grip_v", "grip", "gear_low", "thrust_v", "thrust", "up", "down",
                     "rpm_span"):
            setattr(self.arrays, name, np.asarray(getattr(self, name), dtype=np.float64))


class HeldInputs(NamedTuple):
    """What a tick of the calibrated car needs of the inputs alone (:func:`held_inputs`): the
    same for every tick the inputs are held, so a step of several ticks computes it once."""

    on: Any  # 1.0 where the engine pulls (gas on, no brake), else 0.0
    coasting: bool  # some car has the engine off
    coast: Any  # the coasting deceleration where the engine is off and no brake (0.0 if none is)
    braking: bool  # some car brakes
    brake_decel: Any  # the brake's deceleration (gas and brake together: the drift input) (0.0 if none)
    reverse: Any  # -reverse_mps2 where braking (0.0 if none)


def held_inputs(op, k: Prepared, gas, brake) -> HeldInputs:
    """:class:`HeldInputs` of gas (0..1; TMNF's acceleration is on or off: > 0.5 is on) and
    brake (0.0 or 1.0)."""
    gas_on = gas > 0.5
    on = gas_on * (1.0 - brake)
    off = on <= 0.0
    coasting = op.any(off)
    braking = op.any(brake)
    return HeldInputs(
        on, coasting, off * (brake <= 0.0) * k.coast if coasting else 0.0, braking,
        brake * (gas_on * k.gas_brake + (1.0 - gas_on) * k.brake) if braking else 0.0,
        brake * -k.reverse if braking else 0.0)


def calibrated_tick(op, k: Prepared, t, yaw, vx, vz, omega, delta, gear, shift, steer, gas, brake, slope=0.0,
                    surface=None, held: HeldInputs | None = None):
    """One tick of the calibrated car: (ax, az, omega, delta, gear, shift, lateral speed).

    ``t`` holds the tables: ``k`` itself (lists) for the scalar path, ``k.arrays`` for arrays; ``gear`` is
    0..4, ``shift`` the seconds of upshift dead time left; ``slope`` an extra longitudinal
    acceleration (gravity along a slope; 0 on the simulator's flat corridor); ``surface``
    (arrays only) a surface class per car, 0 road, 1 dirt, 2 grass (None: road; the
    simulator's corridor is all road); ``held``: :func:`held_inputs` of ``gas`` and ``brake``
    when the caller holds them for several ticks (None: computed here).
    """
    if held is None:
        held = held_inputs(op, k, gas, brake)
    s, c = op.sin(yaw), op.cos(yaw)
    v_long = vx * s + vz * c
    v_lat = vx * c - vz * s
    speed = op.abs(v_long)
    # Steering: a rate-limited wheel angle towards the speed-dependent full lock.
    target = steer * op.interp(speed, t.steer_v, t.steer_max)
    delta = delta + op.clip(target - delta, -k.steer_step, k.steer_step)
    # Yaw: follows the kinematic demand with a first-order lag.
    demand = v_long * op.tan(delta) / (k.yaw_base + k.yaw_k * v_long * v_long)
    omega = omega + (demand - omega) * k.yaw_alpha
    # Grip: sideways velocity pulled back within the grip, else the car slides.
    grip = op.interp(speed, t.grip_v, t.grip)
    if surface is not None:
        grip = grip * k.surface_grip[surface]
    a_lat = op.clip(v_lat * -k.slip_rate, -grip, grip)
    # Engine and resistances.
    thrust = held.on * (shift <= 0.0) * op.interp(speed, t.thrust_v, t.thrust)
    if surface is not None:
        thrust = thrust * k.surface_thrust[surface] - k.surface_drag[surface] * (speed > 0.5)
    slip = op.abs(v_lat)
    # Resistances, in a fixed order; a term that is zero for every car is skipped (adding
    # 0.0 would not change the sum), which saves numpy calls in the common cases.
    resist = k.drag * v_long * v_long + k.corner * op.abs(v_long * omega)
    resist = resist + k.steer_drag * op.abs(delta) * op.maximum(1.0 - speed * k.steer_fade, 0.0)
    sliding = slip > k.slide_free
    if op.any(sliding):
        resist = resist + k.slide_drag * op.clip((slip - k.slide_free) * 0.5, 0.0, 1.0)
    if held.coasting:
        resist = resist + held.coast
    if held.braking:
        resist = resist + (v_long > 0.0) * held.brake_decel
    resist = op.minimum(resist, speed * (1.0 / TICK_S))
    a_long = thrust - op.sign(v_long) * resist
    if isinstance(slope, np.ndarray) or slope:  # a slope of 0.0 adds nothing
        a_long = a_long + slope
    if held.braking:
        a_long = a_long + ((v_long <= 0.05) * (v_long > -k.reverse_max)) * held.reverse
    # Gearbox (on the speed at the start of the tick).
    up = speed > op.take(t.up, gear)
    down = speed < op.take(t.down, gear)
    gear = gear + up - down
    shift = op.where(up, k.dead, op.maximum(shift - TICK_S, 0.0))
    # The grip turns the velocity without slowing it (TMNF's slides keep their speed):
    # the lateral push is scaled so the speed is what the longitudinal terms make it.
    lx, lz = vx + a_lat * c * TICK_S, vz - a_lat * s * TICK_S
    keep = op.sqrt((vx * vx + vz * vz) / op.maximum(lx * lx + lz * lz, 1e-12))
    ax = ((lx * keep - vx) * (1.0 / TICK_S)) + a_long * s
    az = ((lz * keep - vz) * (1.0 / TICK_S)) + a_long * c
    return ax, az, omega, delta, gear, shift, slip


def calibrated_rpm(k: Prepared, speed: float, gear: int) -> float:
    """Engine rpm of the calibrated car: linear in speed within the gear (idle to max)."""
    frac = (speed - k.gear_low[gear]) / k.rpm_span[gear]
    return min(max(k.rpm_idle + (k.rpm_max - k.rpm_idle) * frac, k.rpm_idle), k.rpm_max)


def gear_for_speed(k: Prepared, speed):
    """The gear (0..4) the box holds at a steady ``speed`` (m/s; float or array)."""
    return np.searchsorted(np.asarray(k.up[:-1]), speed, side="left") if isinstance(speed, np.ndarray) else \
        bisect.bisect_left(k.up[:-1], speed)


# --- the previous car ------------------------------------------------------------------


@dataclass
class PreviousCar:
    """Parameters of the simulator's car before calibration (not measured; chosen to feel plausible)."""

    wheelbase_m: float = 2.7
    max_steer_rad: float = 0.5
    steer_falloff_mps: float = 25.0
    grip_mps2: float = 24.0
    grip_loss_per_mps: float = 0.08
    min_grip_mps2: float = 14.0
    slip_time_s: float = 0.03
    engine_mps2: float = 13.0
    top_speed_mps: float = 85.0
    drag_per_m: float = 0.0006
    rolling_mps2: float = 0.5
    brake_mps2: float = 16.0
    reverse_mps2: float = 5.0
    reverse_max_mps: float = 10.0
    scrub_mps2: float = 6.0
    gear_top_speeds_mps: tuple[float, ...] = (16.0, 30.0, 45.0, 62.0, 90.0)
    idle_rpm: float = 1500.0
    max_rpm: float = 10000.0
    name: str = "previous"


def previous_tick(op, c: PreviousCar, yaw, vx, vz, steer, gas, brake):
    """(ax, az, yaw rate, understeer excess 0..1) of the previous car for one tick."""
    sin, cos = op.sin(yaw), op.cos(yaw)
    v_long = vx * sin + vz * cos
    v_lat = vx * cos - vz * sin
    speed_abs = op.abs(v_long)
    delta = steer * c.max_steer_rad / (1.0 + speed_abs * (1.0 / c.steer_falloff_mps))
    omega_kin = v_long * op.tan(delta) * (1.0 / c.wheelbase_m)
    grip = op.maximum(c.grip_mps2 - c.grip_loss_per_mps * op.sqrt(v_long * v_long + v_lat * v_lat), c.min_grip_mps2)
    omega_grip = grip / op.maximum(speed_abs, 1.0)
    omega = op.minimum(op.maximum(omega_kin, -omega_grip), omega_grip)
    excess = op.minimum(op.maximum(op.abs(omega_kin) / omega_grip - 1.0, 0.0), 1.0)
    engine = (1.0 - brake) * gas * c.engine_mps2 * op.maximum(1.0 - v_long * (1.0 / c.top_speed_mps), 0.0)
    engine = op.minimum(engine, c.engine_mps2)
    reverse = brake * ((v_long <= 0.05) * (v_long > -c.reverse_max_mps)) * -c.reverse_mps2
    resist = c.drag_per_m * v_long * v_long + c.scrub_mps2 * excess
    resist = resist + (gas <= 0.0) * c.rolling_mps2 + brake * (v_long > 0.0) * c.brake_mps2
    resist = op.minimum(resist, speed_abs * (1.0 / TICK_S))
    a_long = engine + reverse - op.sign(v_long) * resist
    a_lat = op.minimum(op.maximum(v_lat * (-1.0 / c.slip_time_s), -grip), grip)
    return a_long * sin + a_lat * cos, a_long * cos - a_lat * sin, omega, excess


# --- loading ---------------------------------------------------------------------------


def read_params_file(path: str | Path = PARAMS_PATH) -> dict:
    """The whole parameter file (car, fitted names, priors, fit data and residuals)."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(path, "car parameter file not found", "run tmstate sim-calibrate, or give another file")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FileFormatError(path, f"not a readable JSON car parameter file ({exc})", "write it again with tmstate sim-calibrate") from None
    if not isinstance(data, dict) or not isinstance(data.get("car"), dict):
        raise FileFormatError(path, "no \"car\" object in the parameter file", "write it with tmstate sim-calibrate")
    return data


def load_car(car: Any = None) -> Any:
    """A car from a preset name (``"calibrated"``, ``"previous"``), a parameter file path, a
    dict of :class:`CarParams` fields (``{"preset": "previous", ...}`` for the previous car),
    or a CarParams/PreviousCar (returned as is). ``None`` is the calibrated car."""
    if car is None or car == "calibrated":
        return CarParams.from_dict(read_params_file()["car"], where=str(PARAMS_PATH))
    if isinstance(car, CarParams | PreviousCar):
        return car
    if car == "previous":
        return PreviousCar()
    if isinstance(car, str | Path):
        if Path(car).suffix == ".json":
            return CarParams.from_dict(read_params_file(car)["car"], where=str(car))
        raise ConfigError(f"unknown car {car!r}; use a preset ({', '.join(PRESETS)}) or a .json parameter file")
    if isinstance(car, dict):
        data = dict(car)
        preset = data.pop("preset", "calibrated")
        if preset == "previous":
            base = asdict(PreviousCar())
            unknown = set(data) - set(base)
            if unknown:
                raise ConfigError(f"sim car: unknown previous-car field(s) {sorted(unknown)}; known: {sorted(base)}")
            base.update(data)
            base["gear_top_speeds_mps"] = tuple(base["gear_top_speeds_mps"])
            return PreviousCar(**base)
        if preset != "calibrated":
            raise ConfigError(f"sim car: unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
        base = load_car("calibrated").to_dict()
        base.update(data)
        return CarParams.from_dict(base, where="sim car")
    raise ConfigError(f"sim car must be a preset name, a .json file or a dict, got {type(car).__name__}")


@dataclass
class CarState:
    """Arrays of N cars' state for :func:`rollout` (world frame, like SimCars)."""

    x: np.ndarray
    z: np.ndarray
    yaw: np.ndarray
    vx: np.ndarray
    vz: np.ndarray
    omega: np.ndarray
    delta: np.ndarray
    gear: np.ndarray
    shift: np.ndarray
    slip: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def copy(self) -> CarState:
        return CarState(*(np.array(getattr(self, f.name), copy=True) for f in fields(self)))


def rollout(car: CarParams | PreviousCar, state: CarState, steer: np.ndarray, gas: np.ndarray, brake: np.ndarray,
            slope: np.ndarray | float = 0.0, prepared: Prepared | None = None,
            surface: np.ndarray | None = None) -> CarState:
    """``state`` advanced by the ticks of ``steer``/``gas``/``brake`` ((N, T) each), free of walls.

    Used by the fitting and the fidelity benchmark (the env's cars add the corridor).
    """
    s = state.copy()
    brake = (np.asarray(brake) > 0.5).astype(np.float64)
    gas = np.asarray(gas, dtype=np.float64)
    if isinstance(car, PreviousCar):
        for j in range(steer.shape[1]):
            ax, az, omega, _ = previous_tick(ArrayOps, car, s.yaw, s.vx, s.vz, steer[:, j], gas[:, j], brake[:, j])
            s.vx = s.vx + ax * TICK_S
            s.vz = s.vz + az * TICK_S
            s.omega = omega
            s.yaw = s.yaw + omega * TICK_S
            s.x = s.x + s.vx * TICK_S
            s.z = s.z + s.vz * TICK_S
        return s
    k = prepared or Prepared(car)
    for j in range(steer.shape[1]):
        ax, az, s.omega, s.delta, s.gear, s.shift, s.slip = calibrated_tick(
            ArrayOps, k, k.arrays, s.yaw, s.vx, s.vz, s.omega, s.delta, s.gear, s.shift,
            steer[:, j], gas[:, j], brake[:, j], slope, surface)
        s.vx = s.vx + ax * TICK_S
        s.vz = s.vz + az * TICK_S
        s.yaw = s.yaw + s.omega * TICK_S
        s.x = s.x + s.vx * TICK_S
        s.z = s.z + s.vz * TICK_S
    return s


class Handling:
    """What a driving controller needs to know of a car: steering for a curvature, grip, braking."""

    def __init__(self, car: CarParams | PreviousCar) -> None:
        self.car: Any = car
        self._k = Prepared(car) if isinstance(car, CarParams) else None
        self.brake_mps2 = car.brake_mps2

    def steer_for_curvature(self, curvature: float, speed: float) -> float:
        """The steering input (-1..1) that holds a path of ``curvature`` (1/m, + = right) at ``speed``."""
        k = self._k
        if k is None:
            c = self.car
            limit = c.max_steer_rad / (1.0 + speed / c.steer_falloff_mps)
            return max(-1.0, min(1.0, math.atan(curvature * c.wheelbase_m) / limit))
        limit = ScalarOps.interp(speed, k.steer_v, k.steer_max)
        delta = math.atan(curvature * (k.yaw_base + k.yaw_k * speed * speed))
        return max(-1.0, min(1.0, delta / limit))

    def grip(self, speed: float) -> float:
        """Lateral acceleration the car holds without sliding at ``speed`` (m/s^2)."""
        k = self._k
        if k is None:
            c = self.car
            return max(c.grip_mps2 - c.grip_loss_per_mps * speed, c.min_grip_mps2)
        return ScalarOps.interp(speed, k.grip_v, k.grip)

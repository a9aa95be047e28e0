"""N simplified cars stepped together with numpy — NOT TMNF physics.

Model, per 10 ms tick (100 Hz like TMNF), on flat ground:

- steering: a kinematic bicycle; the steering angle shrinks with speed
  (``max_steer / (1 + |v| / steer_falloff)``), as in most racing games;
- grip: the yaw rate is capped so the lateral acceleration stays within a grip that falls
  with speed; asking for more makes the car understeer ("slide") and scrub speed;
- lateral velocity is damped towards zero within the grip (small transient slip);
- engine: acceleration falling linearly to zero at the top speed, quadratic drag, rolling
  resistance; brake at 16 m/s²; holding brake at a standstill reverses slowly;
- gears and rpm: derived from the speed through fixed ratios (display only);
- walls: the corridor's sides stop the car's motion into them and take a little speed on
  every tick of contact; a wall behind the start line; crossing the line's end finishes.

The state of every car lives in flat arrays (one entry per car) so a vector env can step
hundreds of cars in one call. Everything is float64 and free of hidden randomness: the
same seed and the same actions give identical states. :meth:`SimCars.state` builds the
:class:`~tmstate.core.state.GameState` of one car.
"""

from __future__ import annotations

import bisect
import math
import struct
from dataclasses import dataclass

import numpy as np

from tmstate.errors import ActionError, ConfigError, TmstateError
from tmstate.core.reference import ReferenceLine
from tmstate.backends.sim.track import Corridor
from tmstate.core.state import TICK_MS, GameState

_DT = TICK_MS / 1000.0


@dataclass
class CarConfig:
    """Parameters of the simplified car (not measured from TMNF; chosen to feel plausible)."""

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
    wall_keep_per_tick: float = 0.985
    car_half_width_m: float = 1.0
    gear_top_speeds_mps: tuple[float, ...] = (16.0, 30.0, 45.0, 62.0, 90.0)
    idle_rpm: float = 1500.0
    max_rpm: float = 10000.0
    start_offset_m: float = 0.0
    start_yaw_rad: float = 0.0

    def __post_init__(self) -> None:
        positive = ("wheelbase_m", "max_steer_rad", "steer_falloff_mps", "grip_mps2", "min_grip_mps2",
                    "slip_time_s", "engine_mps2", "top_speed_mps", "brake_mps2")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"CarConfig.{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.wall_keep_per_tick <= 1:
            raise ConfigError(f"CarConfig.wall_keep_per_tick must be in (0, 1], got {self.wall_keep_per_tick}")
        if list(self.gear_top_speeds_mps) != sorted(self.gear_top_speeds_mps) or not self.gear_top_speeds_mps:
            raise ConfigError(f"CarConfig.gear_top_speeds_mps must be increasing, got {self.gear_top_speeds_mps}")


class _ArrayOps:
    """The functions :func:`_dynamics` needs, on numpy arrays (many cars)."""

    sin, cos, tan, hypot, abs, sign = np.sin, np.cos, np.tan, np.hypot, np.abs, np.sign
    minimum, maximum = np.minimum, np.maximum


class _ScalarOps:
    """The same functions on Python floats (one car: no numpy per-call overhead)."""

    sin, cos, tan, hypot = math.sin, math.cos, math.tan, math.hypot
    abs, minimum, maximum = abs, min, max

    @staticmethod
    def sign(v: float) -> float:
        return (v > 0.0) - (v < 0.0)


def _dynamics(op, c: CarConfig, yaw, vx, vz, steer, gas, brake):
    """(ax, az, yaw rate, understeer excess 0..1) of cars for one tick.

    Written once for both paths: ``op`` is :class:`_ArrayOps` (arrays, one entry per car)
    or :class:`_ScalarOps` (Python floats, one car); the arithmetic is identical.
    """
    sin, cos = op.sin(yaw), op.cos(yaw)
    v_long = vx * sin + vz * cos
    v_lat = vx * cos - vz * sin
    speed_abs = op.abs(v_long)
    # Steering and grip: the yaw rate a kinematic bicycle asks for, capped by the grip.
    delta = steer * c.max_steer_rad / (1.0 + speed_abs * (1.0 / c.steer_falloff_mps))
    omega_kin = v_long * op.tan(delta) * (1.0 / c.wheelbase_m)
    grip = op.maximum(c.grip_mps2 - c.grip_loss_per_mps * op.hypot(v_long, v_lat), c.min_grip_mps2)
    omega_grip = grip / op.maximum(speed_abs, 1.0)
    omega = op.minimum(op.maximum(omega_kin, -omega_grip), omega_grip)
    excess = op.minimum(op.maximum(op.abs(omega_kin) / omega_grip - 1.0, 0.0), 1.0)
    # Longitudinal: engine (gas, unless braking) and reverse drive push; the rest resists.
    engine = (1.0 - brake) * gas * c.engine_mps2 * op.maximum(1.0 - v_long * (1.0 / c.top_speed_mps), 0.0)
    engine = op.minimum(engine, c.engine_mps2)
    reverse = brake * ((v_long <= 0.05) & (v_long > -c.reverse_max_mps)) * -c.reverse_mps2
    resist = c.drag_per_m * v_long * v_long + c.scrub_mps2 * excess
    resist = resist + (gas <= 0.0) * c.rolling_mps2 + brake * (v_long > 0.0) * c.brake_mps2
    resist = op.minimum(resist, speed_abs * (1.0 / _DT))  # resistance stops the car, never reverses it
    a_long = engine + reverse - op.sign(v_long) * resist
    a_lat = op.minimum(op.maximum(v_lat * (-1.0 / c.slip_time_s), -grip), grip)
    return a_long * sin + a_lat * cos, a_long * cos - a_lat * sin, omega, excess


_FLOAT_FIELDS = ("x", "z", "yaw", "vx", "vz", "omega", "arc_m", "arc_max_m", "lateral_m", "along_m",
                 "steer", "gas", "brake")
_INT_FIELDS = ("index", "ticks", "checkpoint_count", "finished", "wall_contact", "sliding")
_SNAPSHOT = struct.Struct(f"<4sI{len(_FLOAT_FIELDS)}d{len(_INT_FIELDS)}q")
_MAGIC = b"TMSC"
_VERSION = 1


class SimCars:
    """``n`` cars on one track, stepped together.

    Per-car arrays (read them, don't write them): ``x``, ``z`` (m), ``yaw`` (rad), ``vx``,
    ``vz`` (m/s), ``omega`` (yaw rate, rad/s), ``arc_m`` (arc length along the line),
    ``lateral_m`` (+ = right), ``ticks`` (race time in ticks), ``checkpoint_count``,
    ``finished``, ``wall_contact`` and ``sliding`` (during the last tick).
    """

    # The per-car arrays, made in __init__ from _FLOAT_FIELDS (float64) and _INT_FIELDS (int64).
    x: np.ndarray
    z: np.ndarray
    yaw: np.ndarray
    vx: np.ndarray
    vz: np.ndarray
    omega: np.ndarray
    arc_m: np.ndarray
    arc_max_m: np.ndarray
    lateral_m: np.ndarray
    along_m: np.ndarray
    steer: np.ndarray
    gas: np.ndarray
    brake: np.ndarray
    index: np.ndarray
    ticks: np.ndarray
    checkpoint_count: np.ndarray
    finished: np.ndarray
    wall_contact: np.ndarray
    sliding: np.ndarray

    def __init__(self, line: ReferenceLine, n: int = 1, seed: int | None = None,
                 config: CarConfig | None = None, width_m: float | None = None) -> None:
        if n < 1:
            raise ConfigError(f"SimCars needs at least one car, got n={n}")
        self.config = config if config is not None else CarConfig()
        self.corridor = Corridor(line, width_m)
        self.line = line
        self.n = n
        self.checkpoint_target = len(self.corridor.checkpoints_m) + 1  # the finish counts, as in TMNF
        self._rng = np.random.default_rng(seed)
        for name in _FLOAT_FIELDS:
            setattr(self, name, np.zeros(n))
        for name in _INT_FIELDS:
            setattr(self, name, np.zeros(n, dtype=np.int64))
        self._gear_list = [float(v) for v in self.config.gear_top_speeds_mps]
        self.reset()

    # --- episode control ----------------------------------------------------------------

    def reset(self, indices: np.ndarray | list[int] | None = None, seed: int | None = None) -> None:
        """Put cars (all, or ``indices``) at the start, still, race time 0.

        With ``start_offset_m``/``start_yaw_rad`` in the config each car starts at a random
        lateral offset / heading within ± those bounds, drawn from the seeded generator.
        """
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        idx = np.arange(self.n) if indices is None else np.asarray(indices, dtype=np.int64)
        x0, z0, yaw0 = self.corridor.start_pose()
        c = self.config
        offset = self._rng.uniform(-c.start_offset_m, c.start_offset_m, len(idx)) if c.start_offset_m else 0.0
        dyaw = self._rng.uniform(-c.start_yaw_rad, c.start_yaw_rad, len(idx)) if c.start_yaw_rad else 0.0
        nx, nz = self.corridor.normal[0]
        self.x[idx] = x0 + offset * nx
        self.z[idx] = z0 + offset * nz
        self.yaw[idx] = yaw0 + dyaw
        self.lateral_m[idx] = offset
        for name in ("vx", "vz", "omega", "arc_m", "arc_max_m", "along_m", "steer", "gas", "brake"):
            getattr(self, name)[idx] = 0.0
        for name in _INT_FIELDS:
            getattr(self, name)[idx] = 0

    def place(self, i: int, arc_m: float, *, lateral_m: float = 0.0, speed_mps: float = 0.0,
              yaw_offset_rad: float = 0.0) -> None:
        """Put car ``i`` at ``arc_m`` along the line, ``lateral_m`` to its right (kept inside the
        walls), heading along the line turned by ``yaw_offset_rad``, moving forward at
        ``speed_mps``. Its race time is kept: :meth:`reset` it first for a start along the
        track, or place it mid-race for a teleport. Checkpoints up to ``arc_m`` count as passed.
        """
        cor = self.corridor
        arc = min(max(float(arc_m), 0.0), cor.length_m)
        k = int(np.searchsorted(cor.cumulative_m, arc, side="right")) - 1
        k = min(max(k, 0), cor.segments - 1)
        along = (arc - float(cor.cumulative_m[k])) / float(cor.length3d[k]) * float(cor.length2d[k])
        limit = max(cor.half_width_m - self.config.car_half_width_m, 0.0)
        lateral = min(max(float(lateral_m), -limit), limit)
        (sx, sz), (dx, dz), (nx, nz) = cor.start[k], cor.direction[k], cor.normal[k]
        yaw = math.atan2(dx, dz) + float(yaw_offset_rad)
        self.x[i] = sx + along * dx + lateral * nx
        self.z[i] = sz + along * dz + lateral * nz
        self.yaw[i] = yaw
        self.vx[i] = speed_mps * math.sin(yaw)
        self.vz[i] = speed_mps * math.cos(yaw)
        self.omega[i] = 0.0
        self.index[i], self.along_m[i], self.lateral_m[i] = k, along, lateral
        self.arc_m[i] = cor.arc_length_one(k, along)
        self.arc_max_m[i] = max(float(self.arc_max_m[i]), float(self.arc_m[i]))
        self.checkpoint_count[i] = bisect.bisect_right(cor.checkpoint_list, float(self.arc_max_m[i]))
        self.finished[i] = 0

    def step(self, steer: np.ndarray | float, gas: np.ndarray | float, brake: np.ndarray | float,
             ticks: int = 1) -> np.ndarray:
        """Hold the inputs for ``ticks`` ticks; returns the ``finished`` flags (a copy).

        steer -1..1 (+ = right), gas 0..1, brake 0/1 (anything > 0.5 is pressed), one per
        car or one for all. A car that finishes stops at its finish tick and stays there
        (race time frozen) until it is reset.
        """
        steer_a = np.broadcast_to(np.asarray(steer, dtype=np.float64), (self.n,))
        gas_a = np.broadcast_to(np.asarray(gas, dtype=np.float64), (self.n,))
        brake_a = np.broadcast_to(np.asarray(brake, dtype=np.float64) > 0.5, (self.n,))
        if not (np.isfinite(steer_a).all() and np.isfinite(gas_a).all()):
            raise ActionError("SimCars.step got a NaN or infinite input; pass finite steer and gas")
        np.clip(steer_a, -1.0, 1.0, out=self.steer)
        np.clip(gas_a, 0.0, 1.0, out=self.gas)
        self.brake[:] = brake_a
        if self.n == 1:
            self._step_one(ticks)
        else:
            for _ in range(ticks):
                self._tick()
        return self.finished.astype(bool)

    # --- physics ------------------------------------------------------------------------

    def _tick(self) -> None:
        """One tick of every car (numpy; masks multiplied rather than np.where, for few calls)."""
        live = 1.0 - self.finished  # 1.0 for cars still racing, 0.0 for finished (frozen) ones
        dt = live * _DT
        ax, az, omega, excess = _dynamics(_ArrayOps, self.config, self.yaw, self.vx, self.vz,
                                          self.steer, self.gas, self.brake)
        self.vx += ax * dt
        self.vz += az * dt
        np.multiply(omega, live, out=self.omega)
        self.yaw += omega * dt
        self.x += self.vx * dt
        self.z += self.vz * dt
        np.greater(excess * live, 0.0, out=self.sliding, casting="unsafe")
        self.ticks += self.finished == 0
        self._collide(live)

    def _step_one(self, ticks: int) -> None:
        """``ticks`` ticks of a single car in plain Python floats (same model as :meth:`_tick`)."""
        c = self.config
        cor = self.corridor
        x, z, yaw = float(self.x[0]), float(self.z[0]), float(self.yaw[0])
        vx, vz = float(self.vx[0]), float(self.vz[0])
        steer, gas, brake = float(self.steer[0]), float(self.gas[0]), float(self.brake[0])
        index, count = int(self.index[0]), int(self.ticks[0])
        along, lateral = float(self.along_m[0]), float(self.lateral_m[0])
        arc_max = float(self.arc_max_m[0])
        omega, excess, hit, finished = float(self.omega[0]), 0.0, bool(self.wall_contact[0]), bool(self.finished[0])
        limit = cor.half_width_m - c.car_half_width_m
        keep = c.wall_keep_per_tick
        for _ in range(ticks):
            if finished:  # frozen at its finish tick, as the vector path leaves it
                omega, excess, hit = 0.0, 0.0, False
                break
            ax, az, omega, excess = _dynamics(_ScalarOps, c, yaw, vx, vz, steer, gas, brake)
            vx += ax * _DT
            vz += az * _DT
            yaw += omega * _DT
            x += vx * _DT
            z += vz * _DT
            count += 1
            index, along, lateral = cor.project_one(x, z, index)
            over = abs(lateral) - limit
            hit = over > 0.0
            if hit:
                side = 1.0 if lateral > 0.0 else -1.0
                nx, nz = cor.normal_list[index]
                nx, nz = nx * side, nz * side
                x -= over * nx
                z -= over * nz
                into = max(vx * nx + vz * nz, 0.0)
                vx = (vx - into * nx) * keep
                vz = (vz - into * nz) * keep
                lateral = side * limit
            if along < 0.0 and index == 0:  # the wall behind the start line
                dx, dz = cor.direction_list[0]
                x += -along * dx
                z += -along * dz
                backwards = min(vx * dx + vz * dz, 0.0)
                vx -= backwards * dx
                vz -= backwards * dz
                along = 0.0
                hit = True
            arc_max = max(arc_max, cor.arc_length_one(index, along))
            finished = index == cor.segments - 1 and along >= cor.last_length2d
        self.x[0], self.z[0], self.yaw[0], self.vx[0], self.vz[0] = x, z, yaw, vx, vz
        self.omega[0] = omega
        self.sliding[0] = excess > 0.0
        self.ticks[0] = count
        self.index[0], self.along_m[0], self.lateral_m[0] = index, along, lateral
        self.arc_m[0] = cor.arc_length_one(index, along)
        self.arc_max_m[0] = arc_max
        self.wall_contact[0] = hit
        self.finished[0] = finished
        if finished:
            self.checkpoint_count[0] = self.checkpoint_target
        else:
            self.checkpoint_count[0] = bisect.bisect_right(cor.checkpoint_list, arc_max)

    def _collide(self, live: np.ndarray) -> None:
        """Walls, the back wall at the start, checkpoints and the finish."""
        cor = self.corridor
        c = self.config
        index, along, lateral = cor.project(self.x, self.z, self.index)
        limit = cor.half_width_m - c.car_half_width_m
        over = (np.abs(lateral) - limit) * live
        hit = over > 0.0
        any_hit = hit.any()
        if any_hit:
            side = np.sign(lateral)
            nx = cor.normal[index, 0] * side
            nz = cor.normal[index, 1] * side
            push = np.where(hit, over, 0.0)
            self.x -= push * nx
            self.z -= push * nz
            into = np.maximum(self.vx * nx + self.vz * nz, 0.0) * hit
            keep = np.where(hit, c.wall_keep_per_tick, 1.0)
            self.vx[:] = (self.vx - into * nx) * keep
            self.vz[:] = (self.vz - into * nz) * keep
            lateral = np.where(hit, side * limit, lateral)
        behind = (along < 0.0) & (index == 0) & (live > 0)
        if behind.any():
            dx, dz = cor.direction[0]
            back = np.where(behind, -along, 0.0)
            self.x += back * dx
            self.z += back * dz
            backwards = np.minimum(self.vx * dx + self.vz * dz, 0.0) * behind
            self.vx -= backwards * dx
            self.vz -= backwards * dz
            along = np.where(behind, 0.0, along)
            hit = hit | behind
            any_hit = True
        if any_hit:
            self.wall_contact[:] = hit
        else:
            self.wall_contact.fill(0)
        self.index[:] = index
        self.along_m[:] = along
        self.lateral_m[:] = lateral
        self.arc_m[:] = cor.arc_length(index, along)
        np.maximum(self.arc_max_m, self.arc_m, out=self.arc_max_m)
        done = (index == cor.segments - 1) & (along >= cor.length2d[-1]) & (live > 0)
        if done.any():
            self.finished[done] = 1
        if len(cor.checkpoints_m):
            passed = np.searchsorted(cor.checkpoints_m, self.arc_max_m, side="right")
            self.checkpoint_count[:] = np.where(self.finished > 0, self.checkpoint_target, passed)
        else:
            self.checkpoint_count[:] = self.finished * self.checkpoint_target

    # --- read-out -----------------------------------------------------------------------

    def speed(self) -> np.ndarray:
        """Speed of every car, m/s."""
        return np.hypot(self.vx, self.vz)

    def state(self, i: int = 0) -> GameState:
        """The :class:`GameState` of car ``i``; gear (1..5) and rpm approximated from the
        speed (display only, not TMNF's gearbox)."""
        cor = self.corridor
        index = int(self.index[i])
        frac = min(max(float(self.along_m[i]) / cor.length2d_list[index], 0.0), 1.0)
        heights = cor.height_list
        y = heights[index] * (1.0 - frac) + heights[index + 1] * frac
        vx, vz = float(self.vx[i]), float(self.vz[i])
        speed = math.hypot(vx, vz)
        gear = min(bisect.bisect_left(self._gear_list, speed * 1.02), len(self._gear_list) - 1)
        rpm = min(max(self.config.max_rpm * speed / self._gear_list[gear], self.config.idle_rpm), self.config.max_rpm)
        return GameState(
            race_time_ms=int(self.ticks[i]) * TICK_MS,
            position=np.array((float(self.x[i]), y, float(self.z[i]))),
            velocity=np.array((vx, 0.0, vz)),
            yaw=float(self.yaw[i]),
            angular_velocity=np.array((0.0, float(self.omega[i]), 0.0)),
            display_speed_kmh=int(speed * 3.6),
            checkpoint_count=int(self.checkpoint_count[i]),
            checkpoint_target=self.checkpoint_target,
            finished=bool(self.finished[i]),
            gear=gear + 1,
            rpm=rpm,
            wheel_contact=(True, True, True, True),
            steer=float(self.steer[i]),
            gas=float(self.gas[i]),
            brake=float(self.brake[i]),
        )

    # --- snapshots ----------------------------------------------------------------------

    def save(self, i: int = 0) -> bytes:
        """Car ``i``'s whole state as bytes (for :meth:`restore`)."""
        return _SNAPSHOT.pack(_MAGIC, _VERSION, *(float(getattr(self, f)[i]) for f in _FLOAT_FIELDS),
                              *(int(getattr(self, f)[i]) for f in _INT_FIELDS))

    def restore(self, i: int, snapshot: bytes) -> None:
        """Put car ``i`` back into a state from :meth:`save`."""
        if len(snapshot) != _SNAPSHOT.size or snapshot[:4] != _MAGIC:
            raise TmstateError(
                f"expected a {_SNAPSHOT.size}-byte simulator snapshot starting with {_MAGIC!r}, got "
                f"{len(snapshot)} bytes starting with {bytes(snapshot[:4])!r}; restore only what SimBackend.save returned"
            )
        values = _SNAPSHOT.unpack(snapshot)
        if values[1] != _VERSION:
            raise TmstateError(f"simulator snapshot version {values[1]}, expected {_VERSION}; save it again")
        floats = values[2:2 + len(_FLOAT_FIELDS)]
        ints = values[2 + len(_FLOAT_FIELDS):]
        for name, value in zip(_FLOAT_FIELDS, floats, strict=True):
            getattr(self, name)[i] = value
        for name, value in zip(_INT_FIELDS, ints, strict=True):
            getattr(self, name)[i] = value

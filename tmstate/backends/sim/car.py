"""N simulated cars stepped together with numpy, on a corridor around a reference line.

The car model is :mod:`tmstate.backends.sim.model`: by default the car **fitted to real TMNF
ghosts** (preset ``"calibrated"``: thrust, five-gear box, rate-limited steering, yaw lag,
grip rising with speed, slides; fitted on flat ground, docs/sim.md), or the simulator's
earlier hand-tuned car (preset ``"previous"``). What this module adds, per 10 ms tick
(100 Hz like TMNF): the corridor's walls (they stop the motion into them and take a little
speed on every tick of contact), a wall behind the start line, checkpoints and the finish.
The corridor is the line's horizontal projection: heights, slopes, ramps, boosters, jumps
and surfaces other than road are not simulated.

The state of every car lives in flat arrays (one entry per car) so a vector env can step
hundreds of cars in one call. The calibrated car's ticks run in the compiled kernel
(:mod:`tmstate.backends.sim.kernel`) when a C compiler is at hand: the arithmetic of the
plain-float path, bit for bit, in one call per step; else one car runs on plain Python
floats and many in numpy (same arithmetic).
Everything is float64 and free of hidden randomness: the same seed and the same actions
give identical states. :meth:`SimCars.state` builds the :class:`~tmstate.core.state.GameState` of one car.
"""

from __future__ import annotations

import bisect
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tmstate.backends.sim.model import (ArrayOps, CarParams, HeldInputs, Prepared, ScalarOps, calibrated_rpm,
                                        calibrated_tick, gear_for_speed, held_inputs, load_car, previous_tick)
from tmstate.backends.sim import kernel
from tmstate.backends.sim.track import Corridor
from tmstate.core.reference import ReferenceLine
from tmstate.core.state import TICK_MS, GameState
from tmstate.errors import ActionError, ConfigError, TmstateError

_DT = TICK_MS / 1000.0
_SCALARS = (float, int, bool, np.float64, np.float32)
"""Input types :meth:`SimCars.step` takes on its one-car path without numpy."""


@dataclass
class CarConfig:
    """Which car, and how the corridor treats it.

    ``preset``: ``"calibrated"`` (fitted to real ghosts, the default), ``"previous"`` (the
    earlier hand-tuned car) or a ``.json`` parameter file from ``tmstate sim-calibrate``;
    ``params``: overrides of that car's fields (:class:`~tmstate.backends.sim.model.CarParams`
    or :class:`~tmstate.backends.sim.model.PreviousCar`). The rest is the simulator's own:
    wall contact, car width, and start noise (a random lateral offset / heading within
    ± ``start_offset_m`` / ``start_yaw_rad``, drawn from the seeded generator).
    """

    preset: str = "calibrated"
    params: dict = field(default_factory=dict)
    wall_keep_per_tick: float = 0.985
    car_half_width_m: float = 1.0
    start_offset_m: float = 0.0
    start_yaw_rad: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.wall_keep_per_tick <= 1:
            raise ConfigError(f"CarConfig.wall_keep_per_tick must be in (0, 1], got {self.wall_keep_per_tick}")
        if not isinstance(self.params, dict):
            raise ConfigError(f"CarConfig.params must be a table of car fields, got {type(self.params).__name__}")

    def model(self) -> Any:
        """The car model this config names (parameters loaded, overrides applied)."""
        if self.preset in ("calibrated", "previous"):
            return load_car({"preset": self.preset, **self.params})
        base = load_car(self.preset)
        return load_car({"preset": "calibrated", **base.to_dict(), **self.params}) if self.params else base


_FLOAT_FIELDS = ("x", "z", "yaw", "vx", "vz", "omega", "delta", "shift", "arc_m", "arc_max_m", "lateral_m",
                 "along_m", "steer", "gas", "brake")
_INT_FIELDS = ("index", "ticks", "checkpoint_count", "finished", "wall_contact", "sliding", "gear")
_SNAPSHOT = struct.Struct(f"<4sI{len(_FLOAT_FIELDS)}d{len(_INT_FIELDS)}q")
_MAGIC = b"TMSC"
_VERSION = 2


class SimCars:
    """``n`` cars on one track, stepped together.

    Per-car arrays (read them, don't write them): ``x``, ``z`` (m), ``yaw`` (rad), ``vx``,
    ``vz`` (m/s), ``omega`` (yaw rate, rad/s), ``arc_m`` (arc length along the line),
    ``lateral_m`` (+ = right), ``ticks`` (race time in ticks), ``checkpoint_count``,
    ``finished``, ``wall_contact`` and ``sliding`` (during the last tick); for the calibrated
    car also ``delta`` (front-wheel angle, rad), ``gear`` (0..4) and ``shift`` (upshift dead
    time left, s). ``compiled=False`` keeps the Python paths even where the kernel is built
    (tests compare the two).
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
    delta: np.ndarray
    shift: np.ndarray
    gear: np.ndarray
    model: Any  # CarParams (self._k is its Prepared) or PreviousCar (self._k is None)

    def __init__(self, line: ReferenceLine, n: int = 1, seed: int | None = None,
                 config: CarConfig | None = None, width_m: float | None = None, compiled: bool = True) -> None:
        if n < 1:
            raise ConfigError(f"SimCars needs at least one car, got n={n}")
        self.config = config if config is not None else CarConfig()
        self.model = self.config.model()
        self._k = Prepared(self.model) if isinstance(self.model, CarParams) else None
        self.corridor = Corridor(line, width_m)
        self.line = line
        self.n = n
        self.checkpoint_target = len(self.corridor.checkpoints_m) + 1  # the finish counts, as in TMNF
        self._rng = np.random.default_rng(seed)
        for name in _FLOAT_FIELDS:
            setattr(self, name, np.zeros(n))
        for name in _INT_FIELDS:
            setattr(self, name, np.zeros(n, dtype=np.int64))
        if self._k is None:
            self._gear_list = [float(v) for v in self.model.gear_top_speeds_mps]
        # The calibrated car's ticks compiled from C when a compiler is at hand (the same
        # arithmetic as _step_one, bit for bit); else the Python paths below.
        lib = kernel.library() if compiled and self._k is not None else None
        self._kernel = kernel.Kernel(lib, self) if lib is not None else None
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
        for name in ("vx", "vz", "omega", "delta", "shift", "arc_m", "arc_max_m", "along_m", "steer", "gas", "brake"):
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
        self.delta[i], self.shift[i] = 0.0, 0.0
        if self._k is not None:  # the gear the box holds at this speed
            self.gear[i] = gear_for_speed(self._k, abs(float(speed_mps)))
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
        if self.n == 1 and type(steer) in _SCALARS and type(gas) in _SCALARS and type(brake) in _SCALARS:
            # One car driven with plain numbers (SimBackend): the same checks and clipping
            # in Python floats; numpy's per-call cost would be most of the step.
            s, g = float(steer), float(gas)
            if not (math.isfinite(s) and math.isfinite(g)):
                raise ActionError("SimCars.step got a NaN or infinite input; pass finite steer and gas")
            s, g, b = -1.0 if s < -1.0 else (1.0 if s > 1.0 else s), 0.0 if g < 0.0 else (1.0 if g > 1.0 else g), \
                1.0 if float(brake) > 0.5 else 0.0
            if self._kernel is not None:
                self.steer[0], self.gas[0], self.brake[0] = s, g, b
                self._kernel.ticks(ticks)
                self._mark_one()
            else:
                self._step_one(ticks, s, g, b)
            return self.finished.astype(bool)
        steer_a, gas_a, brake_a = self._per_car(steer), self._per_car(gas), self._per_car(brake)
        if not (np.isfinite(steer_a).all() and np.isfinite(gas_a).all()):
            raise ActionError("SimCars.step got a NaN or infinite input; pass finite steer and gas")
        np.minimum(np.maximum(steer_a, -1.0), 1.0, out=self.steer)
        np.minimum(np.maximum(gas_a, 0.0), 1.0, out=self.gas)
        np.greater(brake_a, 0.5, out=self.brake, casting="unsafe")
        if self._kernel is not None:
            self._kernel.ticks(ticks)
            if self.n == 1:
                self._mark_one()
            else:
                self._mark_progress()
        elif self.n == 1:
            self._step_one(ticks, float(self.steer[0]), float(self.gas[0]), float(self.brake[0]))
        else:
            held = held_inputs(ArrayOps, self._k, self.gas, self.brake) if self._k is not None else None
            for _ in range(ticks):
                self._tick(held)
            self._mark_progress()
        return self.finished.astype(bool)

    def _per_car(self, value: np.ndarray | float) -> np.ndarray:
        """``value`` as one float64 per car (a number is every car's)."""
        if type(value) is np.ndarray and value.shape == (self.n,) and value.dtype == np.float64:
            return value  # the vector env's inputs: nothing to convert
        return np.broadcast_to(np.asarray(value, dtype=np.float64), (self.n,))

    # --- physics ------------------------------------------------------------------------

    def _tick(self, held: HeldInputs | None = None) -> None:
        """One tick of every car (numpy; masks multiplied rather than np.where, for few calls).

        While no car has finished, the masks are the scalar 1.0 (same results, fewer calls).
        ``held``: the calibrated car's :func:`held_inputs` of this step's inputs.
        """
        any_done = bool(self.finished.any())
        live = (1.0 - self.finished) if any_done else 1.0  # 0.0 for finished (frozen) cars
        dt = live * _DT
        k = self._k
        if k is not None:
            ax, az, omega, delta, gear, shift, slip = calibrated_tick(
                ArrayOps, k, k.arrays, self.yaw, self.vx, self.vz, self.omega, self.delta, self.gear, self.shift,
                self.steer, self.gas, self.brake, held=held)
            if any_done:
                frozen = self.finished > 0
                delta = np.where(frozen, self.delta, delta)
                gear = np.where(frozen, self.gear, gear)
                shift = np.where(frozen, self.shift, shift)
                slip = slip * live
            self.delta[:] = delta
            self.gear[:] = gear
            self.shift[:] = shift
            np.greater(slip, 1.0, out=self.sliding, casting="unsafe")
        else:
            ax, az, omega, excess = previous_tick(ArrayOps, self.model, self.yaw, self.vx, self.vz,
                                                  self.steer, self.gas, self.brake)
            np.greater(excess * live, 0.0, out=self.sliding, casting="unsafe")
        self.vx += ax * dt
        self.vz += az * dt
        if any_done:
            np.multiply(omega, live, out=self.omega)
            self.ticks += self.finished == 0
        else:
            self.omega[:] = omega
            self.ticks += 1
        self.yaw += self.omega * dt
        self.x += self.vx * dt
        self.z += self.vz * dt
        self._collide(live)

    def _step_one(self, ticks: int, steer: float, gas: float, brake: float) -> None:
        """``ticks`` ticks of a single car in plain Python floats (same model as :meth:`_tick`),
        with inputs already checked and clipped (brake 0.0 or 1.0); they are stored too."""
        c = self.config
        model = self.model
        k = self._k
        cor = self.corridor
        x, z, yaw = float(self.x[0]), float(self.z[0]), float(self.yaw[0])
        delta, gear, shift = float(self.delta[0]), int(self.gear[0]), float(self.shift[0])
        vx, vz = float(self.vx[0]), float(self.vz[0])
        self.steer[0], self.gas[0], self.brake[0] = steer, gas, brake
        index, count = int(self.index[0]), int(self.ticks[0])
        along, lateral = float(self.along_m[0]), float(self.lateral_m[0])
        omega, sliding, hit, finished = float(self.omega[0]), False, bool(self.wall_contact[0]), bool(self.finished[0])
        limit = cor.half_width_m - c.car_half_width_m
        keep = c.wall_keep_per_tick
        last = cor.segments - 1
        held = held_inputs(ScalarOps, k, gas, brake) if k is not None else None
        for _ in range(ticks):
            if finished:  # frozen at its finish tick, as the vector path leaves it
                omega, sliding, hit = 0.0, False, False
                break
            if k is not None:
                ax, az, omega, delta, gear, shift, slip = calibrated_tick(
                    ScalarOps, k, k, yaw, vx, vz, omega, delta, gear, shift, steer, gas, brake, held=held)
                sliding = slip > 1.0
            else:
                ax, az, omega, excess = previous_tick(ScalarOps, model, yaw, vx, vz, steer, gas, brake)
                sliding = excess > 0.0
            vx += ax * _DT
            vz += az * _DT
            yaw += omega * _DT
            x += vx * _DT
            z += vz * _DT
            count += 1
            index, along, lateral = cor.project_one(x, z, index)
            sx, sz, dx, dz, length = cor.segment_list[index]
            if (along > length and index < last) or (along < 0.0 and index > 0):
                # past a segment's end: the outside of a corner, whose wall is round about its vertex
                t = length if along > length else 0.0
                ex, ez = x - (sx + t * dx), z - (sz + t * dz)
                d = math.sqrt(ex * ex + ez * ez)
                over = d - limit
                hit = over > 0.0
                if hit:
                    ux, uz = ex / d, ez / d
                    x -= over * ux
                    z -= over * uz
                    into = max(vx * ux + vz * uz, 0.0)
                    vx = (vx - into * ux) * keep
                    vz = (vz - into * uz) * keep
                    lateral = (x - sx) * dz - (z - sz) * dx
            else:
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
            finished = index == cor.segments - 1 and along >= cor.last_length2d
        self.x[0], self.z[0], self.yaw[0], self.vx[0], self.vz[0] = x, z, yaw, vx, vz
        self.omega[0] = omega
        self.delta[0], self.gear[0], self.shift[0] = delta, gear, shift
        self.sliding[0] = sliding
        self.ticks[0] = count
        self.index[0], self.along_m[0], self.lateral_m[0] = index, along, lateral
        self.wall_contact[0] = hit
        self.finished[0] = finished
        self._mark_one()

    def _mark_one(self) -> None:
        """:meth:`_mark_progress` of a single car, in plain Python floats."""
        cor = self.corridor
        arc = cor.arc_length_one(int(self.index[0]), float(self.along_m[0]))
        self.arc_m[0] = arc
        arc_max = max(float(self.arc_max_m[0]), arc)
        self.arc_max_m[0] = arc_max
        if self.finished[0]:
            self.checkpoint_count[0] = self.checkpoint_target
        else:
            self.checkpoint_count[0] = bisect.bisect_right(cor.checkpoint_list, arc_max)

    def _collide(self, live: np.ndarray | float) -> None:
        """Walls, the back wall at the start, and the finish (checkpoints: :meth:`_mark_progress`)."""
        cor = self.corridor
        c = self.config
        index, along, lateral = cor.project(self.x, self.z, self.index)
        limit = cor.half_width_m - c.car_half_width_m
        over = np.abs(lateral) - limit
        # Past a segment's end (the outside of a corner) the wall is round about its vertex:
        # the distance to the vertex, not the offset from the segment's line extended, counts.
        length = cor.length2d.take(index)
        corner = ((along > length) & (index < cor.segments - 1)) | ((along < 0.0) & (index > 0))
        any_corner = corner.any()
        if any_corner:
            sx, sz, sdx, sdz = (a.take(index) for a in (cor.start_x, cor.start_z, cor.direction_x, cor.direction_z))
            t = np.where(along > length, length, 0.0)
            ex, ez = self.x - (sx + t * sdx), self.z - (sz + t * sdz)
            d = np.sqrt(ex * ex + ez * ez)
            over = np.where(corner, d - limit, over)
        if not isinstance(live, float):
            over *= live
        hit = over > 0.0
        any_hit = hit.any()
        if any_hit:
            side = np.sign(lateral)
            nx = cor.normal_x.take(index) * side
            nz = cor.normal_z.take(index) * side
            if any_corner:
                safe = np.where(corner, d, 1.0)
                nx = np.where(corner, ex / safe, nx)
                nz = np.where(corner, ez / safe, nz)
            push = np.where(hit, over, 0.0)
            self.x -= push * nx
            self.z -= push * nz
            into = np.maximum(self.vx * nx + self.vz * nz, 0.0) * hit
            keep = np.where(hit, c.wall_keep_per_tick, 1.0)
            self.vx[:] = (self.vx - into * nx) * keep
            self.vz[:] = (self.vz - into * nz) * keep
            lateral = np.where(hit, side * limit, lateral)
            if any_corner:
                lateral = np.where(hit & corner, (self.x - sx) * sdz - (self.z - sz) * sdx, lateral)
        behind = (along < 0.0) & (index == 0)
        if not isinstance(live, float):
            behind &= live > 0
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
        done = (index == cor.segments - 1) & (along >= cor.length2d[-1])
        if not isinstance(live, float):
            done &= live > 0
        if done.any():
            self.finished[done] = 1

    def _mark_progress(self) -> None:
        """Arc length, its running maximum and the checkpoints passed, after a step's ticks
        (a finished car is frozen at its finish tick, so its values are those of that tick)."""
        cor = self.corridor
        self.arc_m[:] = cor.arc_length(self.index, self.along_m)
        np.maximum(self.arc_max_m, self.arc_m, out=self.arc_max_m)
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
        """The :class:`GameState` of car ``i``: the calibrated car's gear (1..5) and rpm
        (linear in speed within a gear); for the previous car, both derived from the speed."""
        cor = self.corridor
        index = int(self.index[i])
        frac = min(max(float(self.along_m[i]) / cor.length2d_list[index], 0.0), 1.0)
        heights = cor.height_list
        y = heights[index] * (1.0 - frac) + heights[index + 1] * frac
        vx, vz = float(self.vx[i]), float(self.vz[i])
        speed = math.hypot(vx, vz)
        if self._k is not None:
            gear = int(self.gear[i])
            rpm = calibrated_rpm(self._k, speed, gear)
        else:
            m = self.model
            gear = min(bisect.bisect_left(self._gear_list, speed * 1.02), len(self._gear_list) - 1)
            rpm = min(max(m.max_rpm * speed / self._gear_list[gear], m.idle_rpm), m.max_rpm)
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

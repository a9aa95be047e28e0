"""``backend="sim"``: one simulated car as a :class:`~tmstate.backends.base.Backend` — NOT TMNF physics.

Wraps :class:`~tmstate.backends.sim.car.SimCars` with one car and a
:class:`~tmstate.backends.sim.render.TrackRenderer` for frames. Steps are whole action periods of
10 ms ticks; the step that finishes returns the finish tick's state, like the game backend.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from tmstate.backends.base import Backend
from tmstate.core.state import Action
from tmstate.config import from_dict
from tmstate.errors import ConfigError
from tmstate.core.reference import ReferenceLine
from tmstate.backends.sim.car import TICK_MS, CarConfig, SimCars
from tmstate.backends.sim.render import TrackRenderer, camera
from tmstate.backends.sim.track import resolve_line
from tmstate.core.state import GameState, check_action_period_ms


class SimBackend(Backend):
    """The embedded simulator driving one car on the corridor of ``line``.

    ``line``: a :class:`ReferenceLine`, a shipped track name (``"sim_easy"``) or a line
    file or a ``.Replay.Gbx``; ``car``: a :class:`CarConfig` or a dict of its fields (``preset``
    ``"calibrated"`` or ``"previous"``, ``params`` overrides); ``camera``: ``chase``,
    ``driver`` or ``top`` for :meth:`frame`; ``seed``: the start-noise generator's seed
    (only used when the car config asks for start noise).
    """

    def __init__(self, line: ReferenceLine | str = "sim_easy", *, action_period_ms: int = 50,
                 seed: int | None = None, car: CarConfig | dict | None = None,
                 width_m: float | None = None, camera_name: str = "chase") -> None:
        if isinstance(line, str):
            line = resolve_line(line)
        check_action_period_ms(action_period_ms)
        if isinstance(car, dict):
            car = from_dict(CarConfig, car, where="sim car")
        if seed is not None and seed < 0:
            raise ConfigError(f"sim seed must be a whole number >= 0 (or None), got {seed}")
        if width_m is not None and not width_m > 0:
            raise ConfigError(f"sim width_m must be > 0 metres (or None: the line's own width), got {width_m}")
        camera(camera_name)  # validates the name
        self.line = line
        self.action_period_ms = int(action_period_ms)
        self.cars = SimCars(line, 1, seed=seed, config=car, width_m=width_m)
        self.camera_name = camera_name
        self._ticks = self.action_period_ms // TICK_MS
        self._renderer: TrackRenderer | None = None

    @property
    def renderer(self) -> TrackRenderer:
        if self._renderer is None:
            self._renderer = TrackRenderer(self.line, self.cars.corridor.width_m)
        return self._renderer

    def reset(self, seed: int | None = None) -> GameState:
        self.cars.reset(seed=seed)
        return self.cars.state(0)

    def place(self, arc_m: float, *, lateral_m: float = 0.0, speed_mps: float = 0.0,
              yaw_offset_rad: float = 0.0) -> GameState:
        """Move the car to ``arc_m`` along the line (see :meth:`SimCars.place`); its state there.

        After :meth:`reset` this is a start along the track at race time 0 (the env's
        ``start`` option); mid-episode it is a teleport (tests of the progress rules).
        """
        self.cars.place(0, arc_m, lateral_m=lateral_m, speed_mps=speed_mps, yaw_offset_rad=yaw_offset_rad)
        return self.cars.state(0)

    def step(self, action: Action) -> GameState:
        self.cars.step(action.steer, action.gas, 1.0 if action.brake else 0.0, self._ticks)
        return self.cars.state(0)

    def save(self) -> bytes:
        return self.cars.save(0)

    def restore(self, snapshot: bytes) -> GameState:
        self.cars.restore(0, snapshot)
        return self.cars.state(0)

    def frame(self, width: int, height: int) -> np.ndarray:
        c = self.cars
        return self.renderer.view(float(c.x[0]), float(c.z[0]), float(c.yaw[0]), width, height, self.camera_name)

    def describe(self) -> dict[str, Any]:
        """What the env logs about this backend."""
        return {"backend": "sim", "line": self.line.metadata.map_name or self.line.name,
                "track_width_m": self.cars.corridor.width_m, "car": asdict(self.cars.config),
                "car_model": asdict(self.cars.model)}

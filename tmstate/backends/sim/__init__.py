"""The embedded simulator: a simplified car on a track corridor — NOT TMNF physics.

It lets the whole environment (reward, termination, observations, logging, training) run
without the game, on a laptop or in CI. The car is a bicycle model with speed-dependent
grip, approximate gears and rpm, and walls that slow it down, on a flat corridor around a
reference line, ticking at 100 Hz like TMNF. Nothing here reproduces TrackMania's real
handling: policies trained here do not transfer to the game as they are.

- :mod:`tmstate.backends.sim.track` — track pieces in 32 m blocks, the shipped tracks, the corridor;
- :mod:`tmstate.backends.sim.car` — :class:`~tmstate.backends.sim.car.SimCars`, N cars stepped together with numpy;
- :mod:`tmstate.backends.sim.render` — OpenCV views (chase, driver and top cameras);
- :mod:`tmstate.backends.sim.backend` — :class:`~tmstate.backends.sim.backend.SimBackend`, one car as a backend.
"""

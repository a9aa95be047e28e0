"""The embedded simulator: a car fitted to real TMNF ghosts on a flat track corridor.

It lets the whole environment (reward, termination, observations, logging, training) run
without the game, on a laptop or in CI. The default car's thrust, gearbox, steering, yaw
response, grip and slides are fitted to the shared real ghosts on flat ground
(docs/sim.md gives the fit, its residuals and which parameters are priors); it ticks at
100 Hz like TMNF, on a flat corridor around a reference line (a shipped track or a ghost's
line). It is **not TMNF physics** beyond that: no heights, slopes, ramps, loops, boosters,
jumps or surfaces, and braking, coasting and low-speed steering are priors. Policies
trained here do not transfer to the game as they are.

- :mod:`tmstate.backends.sim.model` — the car models (fitted and previous), one per-tick function for arrays and floats;
- :mod:`tmstate.backends.sim.ghosts` — real car motion and inputs from ``.Replay.Gbx`` ghosts;
- :mod:`tmstate.backends.sim.calibrate` — ``tmstate sim-calibrate``: the fit;
- :mod:`tmstate.backends.sim.fidelity` — ``tmstate sim-fidelity``: how well a car predicts ghosts;
- :mod:`tmstate.backends.sim.track` — track pieces in 32 m blocks, the shipped tracks, ghost lines, the corridor;
- :mod:`tmstate.backends.sim.car` — :class:`~tmstate.backends.sim.car.SimCars`, N cars stepped together with numpy;
- :mod:`tmstate.backends.sim.render` — OpenCV views (chase, driver and top cameras), batched;
- :mod:`tmstate.backends.sim.backend` — :class:`~tmstate.backends.sim.backend.SimBackend`, one car as a backend.
"""

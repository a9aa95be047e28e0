"""``tmstate bench env``: simulator throughput per observation type, and the env's own overhead.

Figures (one run; "car-steps" count every car of a batch, one step = one 50 ms action
period = 5 simulator ticks):

- ``sim_core_car_steps_per_s`` — :class:`~tmstate.backends.sim.car.SimCars` with ``cars`` cars
  stepped together, physics only;
- ``sim_telemetry_car_steps_per_s`` — the same plus, per car, its ``GameState`` and
  telemetry observation (target >= 20,000);
- ``sim_frames64_car_steps_per_s`` — the same plus, per car, a 64x64 grey chase view
  (target >= 3,000);
- ``env_sim_<type>_steps_per_s`` — one ``TMNFEnv`` on the sim backend with the calibrated
  car, whole steps (action, physics, progress, reward, termination, observation), per
  observation type (target >= 15,000 for telemetry); ``env_sim_telemetry_previous_car_steps_per_s``
  the same with the previous car, for comparison in the same run (telemetry and frames:
  best of three runs interleaved with the vector env's);
- ``vector64_sim_<type>_car_steps_per_s`` — :class:`~tmstate.vector.sim.SimVectorEnv` with
  64 cars, whole vector steps (physics, scoring, observations of every car), counted per
  car; ``vector64_<type>_speedup_vs_one_env`` divides it by one env's steps/s of the same
  observation type in the same run (targets: >= 10 for telemetry, >= 5 for 64x64 frames);
- ``env_overhead_us_per_step`` — on the replay backend (a logged sim episode played back),
  the time of ``env.step`` minus the time of the backend's own ``step``: what the env adds
  (action mapping, progress, reward, termination, telemetry observation, info)
  (target <= 30 µs); ``replay_backend_step_us`` is the part subtracted;
- ``sim_kernel`` — whether the calibrated car's ticks ran compiled (:mod:`tmstate.backends.sim.kernel`)
  or in Python, and why;
- ``load_average_1min`` — the machine's load average when the run ended (figures taken on a
  shared machine under load are lower, and their ratios less reliable).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from tmstate.core.progress import Location

CARS = 256
ACTION = np.array([0.0, 1.0], dtype=np.float32)


def _sim_batch(steps: int, mode: str) -> float:
    """Car-steps per second of a SimCars batch with per-car work ``mode``."""
    from tmstate.env.observation import TelemetryObservation
    from tmstate.backends.sim.car import SimCars
    from tmstate.backends.sim.render import TrackRenderer
    from tmstate.backends.sim.track import load_track

    line = load_track("sim_esses")
    cars = SimCars(line, CARS, seed=0)
    telemetry = TelemetryObservation(line)
    renderer = TrackRenderer(line)
    renderer.raster(gray=True)
    rng = np.random.default_rng(0)
    steer = rng.uniform(-0.3, 0.3, (steps, CARS))
    start = time.perf_counter()
    for k in range(steps):
        cars.step(steer[k], 1.0, 0.0, ticks=5)
        if mode == "telemetry":
            for i in range(CARS):
                state = cars.state(i)
                loc = Location(float(cars.arc_m[i]), float(cars.lateral_m[i]), abs(float(cars.lateral_m[i])),
                               int(cars.index[i]))
                telemetry.observe(state, loc)
        elif mode == "frames":
            for i in range(CARS):
                renderer.view(float(cars.x[i]), float(cars.z[i]), float(cars.yaw[i]), 64, 64, "chase", gray=True)
        if k % 100 == 99:
            cars.reset()
    return steps * CARS / (time.perf_counter() - start)


def _env_rate(steps: int, obs_type: str, preset: str = "calibrated") -> float:
    from tmstate.env.env import TMNFEnv

    env = TMNFEnv(backend="sim", map="sim_esses", observation={"type": obs_type, "width": 64, "height": 64},
                  termination={"no_progress_s": 0, "time_limit_s": 0},
                  backend_options={"car": {"preset": preset}})
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(ACTION)
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


VECTOR_CARS = 64


def _vector_rate(steps: int, obs_type: str) -> float:
    """Car-steps per second of a :class:`~tmstate.vector.sim.SimVectorEnv` of VECTOR_CARS cars."""
    from tmstate.vector.sim import SimVectorEnv

    env = SimVectorEnv(VECTOR_CARS, map="sim_esses", observation={"type": obs_type, "width": 64, "height": 64},
                       termination={"no_progress_s": 0, "time_limit_s": 0})
    env.reset(seed=0)
    actions = np.tile(ACTION, (VECTOR_CARS, 1))
    start = time.perf_counter()
    for _ in range(steps):
        env.step(actions)
    rate = steps * VECTOR_CARS / (time.perf_counter() - start)
    env.close()
    return rate


def _logged_episode(directory: Path) -> Path:
    """A finished sim_esses episode driven by the demo controller, logged in ``directory``."""
    from tmstate.tools.demo import LineFollower, _current, _where
    from tmstate.env.env import TMNFEnv

    env = TMNFEnv(backend="sim", map="sim_esses", log_dir=str(directory))
    env.reset(seed=0)
    controller = LineFollower(env.line)
    while True:
        _, _, terminated, truncated, info = env.step(controller.act(_current(env), _where(env)))
        if terminated or truncated:
            env.close()
            return Path(info["log_path"])


def _replay_overhead(steps: int) -> dict[str, float]:
    from tmstate.core.state import Action
    from tmstate.env.env import TMNFEnv
    from tmstate.backends.replay import ReplayBackend

    with tempfile.TemporaryDirectory() as tmp:
        log = _logged_episode(Path(tmp))
        env = TMNFEnv(backend="replay", map="sim_esses", backend_options={"log_path": str(log)})
        backend = ReplayBackend(log)
    episode = len(backend.states) - 1
    inputs = Action(0.0, 1.0, False)

    def time_backend(n: int) -> float:
        backend.reset()
        start = time.perf_counter()
        done = 0
        while done < n:
            for _ in range(episode):
                backend.step(inputs)
            done += episode
            backend.reset()
        return (time.perf_counter() - start) / done

    def time_env(n: int) -> float:
        env.reset()
        start = time.perf_counter()
        done = 0
        while done < n:
            for _ in range(episode):
                _, _, terminated, truncated, _ = env.step(ACTION)
                done += 1
                if terminated or truncated:
                    break
            env.reset()  # resets are rare in training; they are counted here, slightly against the env
        return (time.perf_counter() - start) / done

    # Interleave a few repetitions and keep the fastest of each: the machine is shared.
    backend_s = min(time_backend(steps) for _ in range(3))
    env_s = min(time_env(steps) for _ in range(3))
    env.close()
    return {
        "env_step_replay_us": env_s * 1e6,
        "replay_backend_step_us": backend_s * 1e6,
        "env_overhead_us_per_step": (env_s - backend_s) * 1e6,
    }


def run(steps: int | None) -> dict:
    """All figures; ``steps`` = env steps per measurement (default 2000; batches use steps / 10)."""
    steps = steps or 2000
    batch_steps = max(steps // 10, 20)
    from tmstate.backends.sim import kernel

    figures: dict[str, float | int | str] = {"cars": CARS, "action_period_ms": 50, "sim_kernel": kernel.status()}
    figures["sim_core_car_steps_per_s"] = _sim_batch(batch_steps, "core")
    figures["sim_telemetry_car_steps_per_s"] = _sim_batch(max(batch_steps // 4, 5), "telemetry")
    figures["sim_frames64_car_steps_per_s"] = _sim_batch(max(batch_steps // 8, 3), "frames")
    # One env and the 64-car vector env, interleaved three times, best of each: the machine
    # is shared, and a ratio of two figures taken minutes apart would measure the load.
    vector_steps = max(steps // 20, 10)
    for obs_type in ("telemetry", "frames"):
        single = vector = 0.0
        for _ in range(3):
            single = max(single, _env_rate(max(steps // 2, 50), obs_type))
            vector = max(vector, _vector_rate(vector_steps, obs_type))
        figures[f"env_sim_{obs_type}_steps_per_s"] = single
        figures[f"vector{VECTOR_CARS}_sim_{obs_type}_car_steps_per_s"] = vector
        figures[f"vector{VECTOR_CARS}_{obs_type}_speedup_vs_one_env"] = vector / single
    figures["env_sim_dict_steps_per_s"] = _env_rate(steps, "dict")
    figures["env_sim_telemetry_previous_car_steps_per_s"] = max(_env_rate(max(steps // 2, 50), "telemetry", "previous")
                                                                for _ in range(3))
    figures.update(_replay_overhead(steps))
    figures["load_average_1min"] = os.getloadavg()[0]
    return figures

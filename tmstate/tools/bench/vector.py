"""``tmstate bench vector``: aggregate steps/s of the vector env, and a leak check.

Throughput: 1, 2 and 4 sub-envs on the embedded simulator (a simplified car, not TMNF
physics; stepped in turn) and on plugin-harness processes (the real plugin and socket
path with the harness's point-mass car; stepped from one thread each). Figures are
env steps per second summed over the sub-envs; ``harness_4_in_turn`` steps the same 4
harnesses one after the other, for comparison. The harnesses compute as fast as the CPU
lets them, so on a small machine these figures measure CPU sharing between the harness
processes and Python; real games spend most of a step waiting for the game's clock,
which the threads overlap. (The harness's ``--realtime`` pacing catches up on time spent
waiting for the client, so it cannot show that overlap; it is not used here.)

Leak check: 4 harness sub-envs step ``leak_steps`` env steps in total (50,000 by default;
5 x ``--steps`` when given), with one harness SIGKILLed every quarter of the run so the
recovery path is measured too. Open file descriptors (/proc/self/fd) and RSS are read
after a warm-up and at the end; tracemalloc reports the Python heap growth over the same
span.
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
from typing import Any

import numpy as np

COUNTS = (1, 2, 4)
DEFAULT_STEPS = 4000
LEAK_STEPS = 50_000


def _actions(num_envs: int, k: int) -> np.ndarray:
    """Full gas with a slow weave: a steady workload with some episode ends."""
    steer = 0.3 * np.sin(0.05 * k + np.arange(num_envs))
    return np.stack([steer, np.ones(num_envs)], axis=1).astype(np.float32)


def _throughput(backend: str, num_envs: int, env_steps: int, harness_options: dict | None = None,
                parallel: bool | None = None) -> float:
    from tmstate.vector.env import VectorConfig
    from tmstate.vector.make import make_vector_env

    env = make_vector_env(num_envs, backend=backend, maps=["sim_easy", "sim_esses"],
                          harness_options=harness_options, vector=VectorConfig(parallel=parallel))
    try:
        env.reset(seed=0)
        for k in range(20):  # warm-up: connections, first restart/rewind
            env.step(_actions(num_envs, k))
        vector_steps = max(1, env_steps // num_envs)
        start = time.perf_counter()
        for k in range(vector_steps):
            env.step(_actions(num_envs, k))
        elapsed = time.perf_counter() - start
    finally:
        env.close()
    return vector_steps * num_envs / elapsed


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def leak_check(env_steps: int, num_envs: int = 4, kills: int = 4) -> dict:
    """Step ``env_steps`` env steps over ``num_envs`` harness sub-envs, killing one game
    ``kills`` times; fd count, RSS and Python heap before (after warm-up) and after."""
    from tqdm import tqdm

    from tmstate.vector.make import make_vector_env

    env = make_vector_env(num_envs, backend="harness")
    try:
        env.reset(seed=0)
        for k in range(200):
            env.step(_actions(num_envs, k))
        gc.collect()
        tracemalloc.start()
        heap_before = tracemalloc.get_traced_memory()[0]
        fds_before, rss_before = open_fds(), rss_mb()
        vector_steps = env_steps // num_envs
        kill_every = max(1, vector_steps // (kills + 1))
        lost = 0
        start = time.perf_counter()
        for k in tqdm(range(vector_steps), desc="leak check", unit="step", unit_scale=num_envs, leave=False,
                      mininterval=2.0):
            if k and k % kill_every == 0 and lost < kills:
                instance: Any = env.instances[lost % num_envs]  # a HarnessInstance (backend "harness")
                instance.harness.kill()
                lost += 1
            env.step(_actions(num_envs, k))
        elapsed = time.perf_counter() - start
        gc.collect()
        heap_after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        fds_after, rss_after = open_fds(), rss_mb()
        restarts = sum(env.restarts)
    finally:
        env.close()
    return {
        "leak_env_steps": vector_steps * num_envs,
        "leak_games_killed": lost,
        "leak_restarts": restarts,
        "leak_steps_per_s": vector_steps * num_envs / elapsed,
        "leak_fds_before": fds_before,
        "leak_fds_after": fds_after,
        "leak_rss_before_mb": rss_before,
        "leak_rss_after_mb": rss_after,
        "leak_python_heap_growth_kb": (heap_after - heap_before) / 1024.0,
    }


def harness_available() -> str:
    """"" when harness processes can run here, else why not."""
    from tmstate.errors import TmstateError
    from tmstate.link.harness import PLUGIN_PATH, build_harness

    try:
        build_harness()
    except TmstateError as exc:
        return str(exc)
    if not PLUGIN_PATH.is_file():
        return f"{PLUGIN_PATH} not found"
    return ""


def run(steps: int | None) -> dict:
    env_steps = steps or DEFAULT_STEPS
    figures: dict = {"env_steps_per_config": env_steps, "cpu_count": os.cpu_count() or 0}
    for n in COUNTS:
        figures[f"sim_{n}_steps_per_s"] = _throughput("sim", n, env_steps)
    why_not = harness_available()
    figures["harness_available"] = not why_not
    if why_not:
        figures["harness_skipped_because"] = why_not
        return figures
    for n in COUNTS:
        figures[f"harness_{n}_steps_per_s"] = _throughput("harness", n, env_steps)
    # The same 4 harnesses stepped one after the other: what the threads buy.
    figures["harness_4_in_turn_steps_per_s"] = _throughput("harness", 4, env_steps, parallel=False)
    figures.update(leak_check(LEAK_STEPS if steps is None else 5 * steps))
    return figures

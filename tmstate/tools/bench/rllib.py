"""``tmstate bench rllib``: env steps/s that RLlib's env runners collect, with 1 and 2 runners.

Both measurements run in one local Ray instance (on 127.0.0.1), on the embedded simulator
(a simplified car, not TMNF physics), with the PPO set-up of ``tmstate train --engine rllib``
(tmstate.vector.rllib: each runner steps a recovering vector env of ``ENVS_PER_RUNNER``
sub-envs and runs its policy module for every step). Each runner samples ``steps`` env steps
per round, all runners at once; the figure is the steps of all runners over the wall time
of the slowest, after a warm-up round. ``ratio`` is the 2-runner figure over the 1-runner one:
how far sampling scales with processes on this machine (one process per runner, so at most
the number of free cores). No learning happens here: that is the learner's share, the same
for both.
"""

from __future__ import annotations

import os
import time

DEFAULT_STEPS = 2000
ENVS_PER_RUNNER = 2
ROUNDS = 3


def _throughput(runners: int, steps: int) -> float:
    from tmstate.vector.rllib import PPOSettings, RunnerEnvConfig, ppo_config

    per_env = max(1, steps // ENVS_PER_RUNNER)
    ppo = PPOSettings(runners=runners, envs_per_runner=ENVS_PER_RUNNER, rollout_steps=per_env,
                      minibatch_size=64, num_epochs=1, hidden=(64, 64))
    algo = ppo_config(RunnerEnvConfig(), ppo).build_algo()
    try:
        group = algo.env_runner_group

        def sample_round() -> tuple[int, float]:
            start = time.perf_counter()
            batches = group.foreach_env_runner(
                lambda runner: sum(len(e) for e in runner.sample(num_timesteps=steps, random_actions=False)),
                local_env_runner=False,
            )
            return int(sum(batches)), time.perf_counter() - start

        sample_round()  # warm-up: first resets, torch's first forward passes
        collected, elapsed = 0, 0.0
        for _ in range(ROUNDS):
            n, s = sample_round()
            collected, elapsed = collected + n, elapsed + s
    finally:
        algo.stop()
    return collected / elapsed


def run(steps: int | None = None) -> dict:
    """Steps/s with 1 and 2 env runners, and their ratio (``steps``: per runner and round)."""
    from tmstate.tools.train_rllib import require_ray

    require_ray()
    import ray

    steps = steps or DEFAULT_STEPS
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        one = _throughput(1, steps)
        two = _throughput(2, steps)
    finally:
        if started:
            ray.shutdown()
    return {
        "runners_1_steps_per_s": one,
        "runners_2_steps_per_s": two,
        "ratio": two / one,
        "envs_per_runner": ENVS_PER_RUNNER,
        "steps_per_runner_per_round": steps,
        "rounds": ROUNDS,
        "cores": os.cpu_count() or 0,
    }

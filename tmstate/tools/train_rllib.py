"""``tmstate train --engine rllib``: PPO through Ray RLlib, with env runners on many machines.

The same run settings as the stable-baselines3 path (:class:`~tmstate.tools.train.TrainConfig`,
from ``--config``'s ``[train]`` and ``[env]`` tables and the options: track, timesteps, seed,
time penalty, env table, PPO's n_steps / batch_size / learning rate / gamma) plus where the
games are (:class:`RLlibOptions`). The learner runs in this process;
``--runners N`` env runners sample in parallel, each over ``--envs`` sub-envs of its own
node (tmstate.vector.rllib). Without ``--address`` a local Ray instance is started (and
stopped at the end); with ``--address auto`` (or ``HOST:PORT``) the run joins a cluster
started with ``ray start`` (docs/scale.md). One run folder (``--out``)::

    runs/train/
      config.json       the settings of the run
      progress.json     one row per iteration (timesteps, wall time, episode return,
                        finish rate, race time, games lost, healthy runners)
      runners.json      which env runner drives which games, on which node
      checkpoints/      RLlib checkpoints every --checkpoint-every-iterations iterations
      checkpoint/       the final checkpoint (Algorithm.from_checkpoint loads it)
      tb/               TensorBoard event files (the same figures)
      summary.json

Needs the ``ray`` extra: ``pip install -e ".[ray]"``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tmstate.errors import ConfigError, TmstateError
from tmstate.files import atomic_write_text
from tmstate.tools.train import TrainConfig

BACKENDS = ("sim", "harness", "tminterface")


@dataclass
class RLlibOptions:
    """Where the env runners run and where their games are (the RLlib-only settings)."""

    runners: int = 2
    backend: str = "sim"  # sim | harness | tminterface
    ports: dict[str, list[int]] = field(default_factory=dict)
    """Node key (IP, Ray resource name, or "*") -> game ports there; empty = tmstate launch's pid file."""
    launch_config: str = ""
    address: str = ""
    """Ray cluster to join ("auto", "HOST:PORT"); "" = start a local Ray instance for this run."""
    game_resource: str = "tmnf"
    checkpoint_every: int = 10
    """Iterations between checkpoints."""
    num_epochs: int = 10  # SB3 PPO's n_epochs

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.runners < 1 or self.checkpoint_every < 1 or self.num_epochs < 1:
            raise ConfigError(
                f"runners, checkpoint_every and num_epochs must be >= 1, got {self.runners}, "
                f"{self.checkpoint_every}, {self.num_epochs}"
            )


def require_ray() -> None:
    """Raise a clear error when the ``ray`` extra is missing."""
    try:
        import ray  # noqa: F401
        import ray.rllib  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise TmstateError(
            f"--engine rllib needs Ray RLlib and torch ({exc.name} is missing) — install the extra: "
            'pip install -e ".[ray]"'
        ) from None


def runner_settings(config: TrainConfig, options: RLlibOptions) -> Any:
    """The env runners' :class:`~tmstate.vector.rllib.RunnerEnvConfig` for this run."""
    from tmstate.vector.rllib import RunnerEnvConfig

    env = dataclasses.asdict(config.env_config())
    env["backend"] = "sim"  # each runner picks its backend from RunnerEnvConfig.backend
    return RunnerEnvConfig(backend=options.backend, env=env, ports=options.ports,
                           launch_config=options.launch_config, seed=config.seed)


def ppo_settings(config: TrainConfig, options: RLlibOptions) -> Any:
    from tmstate.vector.rllib import PPOSettings

    return PPOSettings(
        runners=options.runners, envs_per_runner=config.envs, rollout_steps=config.n_steps,
        minibatch_size=config.batch_size, num_epochs=options.num_epochs,
        learning_rate=config.learning_rate, gamma=config.gamma, seed=config.seed,
        game_resource=options.game_resource,
    )


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def iteration_row(result: dict[str, Any], wall_s: float) -> dict[str, Any]:
    """The figures of one RLlib iteration that a person follows (None where not measured yet)."""
    runners = result.get("env_runners", {})
    group = result.get("fault_tolerance", {})
    return {
        "iteration": int(result["training_iteration"]),
        "timesteps": int(result.get("num_env_steps_sampled_lifetime", 0)),
        "wall_s": wall_s,
        "episode_return_mean": _finite(runners.get("episode_return_mean")),
        "episode_len_mean": _finite(runners.get("episode_len_mean")),
        "finish_rate": _finite(runners.get("tmstate/finish_rate")),
        "race_time_s": _finite(runners.get("tmstate/race_time_s")),
        "progress_m": _finite(runners.get("tmstate/progress_m")),
        "games_lost": int(runners.get("tmstate/games_lost_lifetime", 0) or 0),
        "healthy_runners": group.get("num_healthy_workers"),
        "runner_restarts": group.get("num_remote_worker_restarts"),
    }


def start_ray(options: RLlibOptions, config: TrainConfig) -> bool:
    """Join the cluster at ``options.address``, or start a local one; True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    if options.address:
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False)
        return False
    resources = {}
    if options.backend != "sim":
        resources[options.game_resource] = float(options.runners * config.envs)
    ray.init(num_cpus=max(os.cpu_count() or 1, options.runners + 1), resources=resources,
             include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    return True


def train_rllib(config: TrainConfig, options: RLlibOptions, force: bool = False) -> dict[str, Any]:
    """Train PPO through RLlib until ``config.timesteps`` env steps; returns the summary.

    A run folder that already holds a run is refused unless ``force``."""
    require_ray()
    import ray

    from tmstate.vector.rllib import game_reports, ppo_config

    if config.algo != "ppo":
        raise ConfigError(f"--engine rllib trains PPO only, got --algo {config.algo}")
    if config.obs != "telemetry":
        raise ConfigError(f"--engine rllib trains on telemetry observations (RLlib's MLP), got --obs {config.obs}")
    out = Path(config.out)
    if not force and any((out / name).exists() for name in ("progress.json", "summary.json", "model.zip")):
        raise ConfigError(f"{out} holds a run already — pass --force to overwrite it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    settings, ppo = runner_settings(config, options), ppo_settings(config, options)
    atomic_write_text(out / "config.json", json.dumps(
        {"engine": "rllib", "train": dataclasses.asdict(config), "rllib": dataclasses.asdict(options),
         "runner_env": dataclasses.asdict(settings), "ppo": dataclasses.asdict(ppo)}, indent=2, default=str))
    started_ray = start_ray(options, config)
    writer = _tensorboard(out / "tb") if config.tensorboard else None
    bar = None
    rows: list[dict[str, Any]] = []
    algo = None
    started = time.monotonic()
    try:
        algo = ppo_config(settings, ppo).build_algo()
        reports = game_reports(algo)
        atomic_write_text(out / "runners.json", json.dumps(reports, indent=2))
        if config.progress_bar:
            from tqdm import tqdm

            bar = tqdm(total=config.timesteps, unit="step", desc=f"rllib ppo x{options.runners} {config.track}")
        timesteps = 0
        while timesteps < config.timesteps:
            result = algo.train()
            row = iteration_row(result, time.monotonic() - started)
            rows.append(row)
            timesteps = row["timesteps"]
            atomic_write_text(out / "progress.json", json.dumps(rows, indent=2))
            if writer is not None:
                for key, value in row.items():
                    if key not in ("iteration", "timesteps") and isinstance(value, (int, float)):
                        writer.add_scalar(f"rllib/{key}", value, timesteps)
                writer.flush()
            if bar is not None:
                bar.n = min(timesteps, config.timesteps)
                bar.set_postfix(_postfix(row), refresh=True)
            if row["iteration"] % options.checkpoint_every == 0:
                algo.save_to_path(str((out / "checkpoints" / f"iter_{row['iteration']:05d}").resolve()))
        algo.save_to_path(str((out / "checkpoint").resolve()))
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
        if algo is not None:
            algo.stop()
        if started_ray:
            ray.shutdown()
    summary = {
        "engine": "rllib", "algo": "ppo", "track": config.track, "backend": options.backend,
        "runners": options.runners, "envs_per_runner": config.envs,
        "timesteps": rows[-1]["timesteps"] if rows else 0, "wall_s": time.monotonic() - started,
        "iterations": len(rows), "final": rows[-1] if rows else None,
        "first_finish_timesteps": next((r["timesteps"] for r in rows if (r["finish_rate"] or 0) > 0), None),
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    return summary


def _postfix(row: dict[str, Any]) -> dict[str, str]:
    shown = {"ret": row["episode_return_mean"], "finish": row["finish_rate"], "race_s": row["race_time_s"]}
    postfix = {k: "-" if v is None else (f"{v:.0%}" if k == "finish" else f"{v:.2f}") for k, v in shown.items()}
    postfix["lost"] = str(row["games_lost"])
    postfix["runners"] = str(row["healthy_runners"])
    return postfix


def _tensorboard(path: Path) -> Any:
    """A TensorBoard writer (tensorboardX comes with ray[rllib]); None if it is missing."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(path))


def parse_ports(text: str | None) -> dict[str, list[int]]:
    """``--node-ports``: ``KEY=8477,8478;KEY2=8479`` (per node key; no ``KEY=``: every node)."""
    if not text:
        return {}
    table: dict[str, list[int]] = {}
    for part in text.split(";"):
        key, sep, ports = part.rpartition("=")
        key = key.strip() if sep else "*"
        try:
            table[key] = [int(p) for p in ports.split(",") if p.strip()]
        except ValueError:
            raise ConfigError(f"--node-ports: expected KEY=P1,P2;KEY2=P3, got {text!r}") from None
    return table

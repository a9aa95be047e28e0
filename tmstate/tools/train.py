"""Training with stable-baselines3, and the time-penalty experiment.

``tmstate train`` trains PPO (or SAC) on the env — by default on the embedded simulator
(a simplified car, not TMNF physics) with telemetry observations — with a vector of envs,
TensorBoard logs, periodic checkpoints, periodic evaluation episodes and a progress bar.
Everything lands in one run folder::

    runs/train/
      config.json        what was trained, with which settings
      curve.json         the evaluation curve (timesteps, wall time, return, finish rate, race time)
      curve.png          the same as a picture
      checkpoints/       model zips every --checkpoint-every steps
      model.zip          the final model
      tb/                TensorBoard event files

``tmstate experiment time-penalty`` trains one agent per time-penalty weight on one track
and plots finish rate and race time against the weight, plus the learning curves
(``results.json`` next to ``time_penalty.png``).

Needs the ``train`` extra: ``bash scripts/setup.sh train`` (stable-baselines3, torch 2.13.0 CPU first).
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

import numpy as np

from tmstate.env.env import EnvConfig, TMNFEnv, make_config
from tmstate.errors import ConfigError, TmstateError
from tmstate.files import atomic_write_text

DEFAULT_TRACK = "sim_easy"


@dataclass
class TrainConfig:
    """One training run. Hyper-parameters are SB3's defaults unless a comment says why not."""

    algo: str = "ppo"  # ppo | sac
    track: str = DEFAULT_TRACK
    timesteps: int = 200_000
    envs: int = 4  # sub-envs stepped together (batched policy inference)
    seed: int = 0
    out: str = "runs/train"
    time_penalty: float | None = None  # overrides env.reward.time when set
    eval_every: int = 10_000  # timesteps between evaluations
    eval_episodes: int = 3
    checkpoint_every: int = 50_000
    stop_at_finish_rate: float = 0.0  # stop once an evaluation finishes this often (0 = never)
    tensorboard: bool = True
    progress_bar: bool = True
    env: EnvConfig = field(default_factory=EnvConfig)
    # PPO: shorter rollouts than SB3's 2048 so a 30-minute CPU run gets many updates.
    n_steps: int = 512
    batch_size: int = 256
    learning_rate: float = 3e-4
    gamma: float = 0.99

    def __post_init__(self) -> None:
        if self.algo not in ("ppo", "sac"):
            raise ConfigError(f"algo must be 'ppo' or 'sac', got {self.algo!r}")
        for name in ("timesteps", "envs", "eval_every", "eval_episodes", "checkpoint_every", "n_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.env.backend != "sim":
            # Its evaluation episodes need a game of their own; on the real game, train with
            # the recovering vector env instead (docs/wine.md, section 6).
            raise ConfigError(
                f"tmstate train runs on the simulator, got backend {self.env.backend!r} — for the real game "
                "use stable_baselines3 with tmstate.vector.sb3.to_sb3(make_vector_env(...)) (docs/wine.md)"
            )

    def env_config(self) -> EnvConfig:
        """The env settings of this run: telemetry on the sim unless ``env`` says otherwise."""
        overrides: dict[str, Any] = {"map": self.track}
        if self.time_penalty is not None:
            overrides["reward"] = {"time": self.time_penalty}
        return make_config(self.env, **overrides)


@dataclass
class EvalPoint:
    """One evaluation: deterministic episodes of the current policy."""

    timesteps: int
    wall_s: float
    mean_return: float
    finish_rate: float
    mean_race_time_s: float | None  # over finished episodes; None if none finished
    mean_progress_m: float


def _require_sb3():
    try:
        import stable_baselines3  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise TmstateError(
            f"training needs stable-baselines3 and torch ({exc.name} is missing) — "
            'install the extra: bash scripts/setup.sh train (or pip install -e ".[train]")'
        ) from None


def evaluate(model: Any, env_config: EnvConfig, episodes: int, seed: int = 10_000) -> dict[str, Any]:
    """Run ``episodes`` deterministic episodes; return mean return, finish rate, race time, progress."""
    env = TMNFEnv(env_config)
    returns, times, progress, finished = [], [], [], 0
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            total, done, info = 0.0, False, {}
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                obs, reward, terminated, truncated, info = env.step(action)
                total += reward
                done = terminated or truncated
            returns.append(total)
            progress.append(info["progress_m"])
            if info["finished"]:
                finished += 1
                times.append(info["race_time_ms"] / 1000.0)
    finally:
        env.close()
    return {
        "mean_return": float(np.mean(returns)),
        "finish_rate": finished / episodes,
        "mean_race_time_s": float(np.mean(times)) if times else None,
        "mean_progress_m": float(np.mean(progress)),
    }


def _make_vec_env(config: TrainConfig, env_config: EnvConfig):
    from stable_baselines3.common.env_util import make_vec_env

    return make_vec_env(TMNFEnv, n_envs=config.envs, seed=config.seed, env_kwargs={"config": env_config})


def _make_model(config: TrainConfig, vec_env: Any, tb_dir: str | None):
    from stable_baselines3 import PPO, SAC

    if config.algo == "ppo":
        return PPO(
            "MlpPolicy", vec_env, n_steps=config.n_steps, batch_size=config.batch_size,
            learning_rate=config.learning_rate, gamma=config.gamma, seed=config.seed,
            tensorboard_log=tb_dir, verbose=0, device="cpu",
        )
    return SAC("MlpPolicy", vec_env, learning_rate=config.learning_rate, gamma=config.gamma,
               seed=config.seed, tensorboard_log=tb_dir, verbose=0, device="cpu")


def _callbacks(config: TrainConfig, env_config: EnvConfig, out: Path, curve: list[EvalPoint], started: float):
    """Progress bar, periodic evaluation (which writes curve.json) and checkpoints."""
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback

    class EvalAndProgress(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.bar = None
            self.next_eval = config.eval_every

        def _on_training_start(self) -> None:
            if config.progress_bar:
                from tqdm import tqdm

                self.bar = tqdm(total=config.timesteps, unit="step", desc=f"{config.algo} {config.track}")

        def _on_step(self) -> bool:
            if self.bar is not None and self.n_calls % 50 == 0:
                self.bar.n = min(self.num_timesteps, config.timesteps)
                self.bar.refresh()
            if self.num_timesteps >= self.next_eval:
                self.next_eval += config.eval_every
                point = self._evaluate()
                if config.stop_at_finish_rate and point.finish_rate >= config.stop_at_finish_rate:
                    return False
            return True

        def _evaluate(self) -> EvalPoint:
            figures = evaluate(self.model, env_config, config.eval_episodes)
            point = EvalPoint(timesteps=self.num_timesteps, wall_s=time.monotonic() - started, **figures)
            curve.append(point)
            for key, value in figures.items():
                if value is not None:
                    self.logger.record(f"eval/{key}", value)
            write_curve(out, curve)
            if self.bar is not None:
                self.bar.set_postfix(finish=f"{point.finish_rate:.0%}", ret=f"{point.mean_return:.2f}")
            return point

        def _on_training_end(self) -> None:
            if not curve or curve[-1].timesteps != self.num_timesteps:
                self._evaluate()
            if self.bar is not None:
                self.bar.n = self.num_timesteps
                self.bar.close()

    checkpoints = CheckpointCallback(
        save_freq=max(1, config.checkpoint_every // config.envs),
        save_path=str(out / "checkpoints"), name_prefix=config.algo,
    )
    return CallbackList([EvalAndProgress(), checkpoints])


def train(config: TrainConfig) -> dict[str, Any]:
    """Train one agent; returns the summary also written to ``<out>/summary.json``."""
    _require_sb3()
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    env_config = config.env_config()
    atomic_write_text(out / "config.json", json.dumps(dataclasses.asdict(config) | {"env": dataclasses.asdict(env_config)}, indent=2, default=str))
    vec_env = _make_vec_env(config, env_config)
    tb_dir = str(out / "tb") if config.tensorboard and _has_tensorboard() else None
    model = _make_model(config, vec_env, tb_dir)
    curve: list[EvalPoint] = []
    started = time.monotonic()
    try:
        model.learn(total_timesteps=config.timesteps, callback=_callbacks(config, env_config, out, curve, started))
    finally:
        vec_env.close()
    wall_s = time.monotonic() - started
    model.save(str(out / "model.zip"))
    summary = summarise(config, curve, wall_s, model.num_timesteps)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    plot_curve(curve, out / "curve.png", title=f"{config.algo.upper()} on {config.track}")
    return summary


def summarise(config: TrainConfig, curve: list[EvalPoint], wall_s: float, timesteps: int) -> dict[str, Any]:
    """Final figures of a run, and when an evaluation first finished the track."""
    first = next((p for p in curve if p.finish_rate > 0), None)
    last = curve[-1] if curve else None
    return {
        "algo": config.algo,
        "track": config.track,
        "time_penalty": config.env_config().reward.time,
        "timesteps": timesteps,
        "wall_s": wall_s,
        "first_finish_timesteps": first.timesteps if first else None,
        "first_finish_wall_s": first.wall_s if first else None,
        "final": dataclasses.asdict(last) if last else None,
    }


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def write_curve(out: Path, curve: list[EvalPoint]) -> None:
    atomic_write_text(out / "curve.json", json.dumps([dataclasses.asdict(p) for p in curve], indent=2))


def plot_curve(curve: list[EvalPoint], path: Path, title: str) -> Path:
    """Learning curve: evaluation return and finish rate against timesteps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tmstate.tools.plot import save_figure

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    steps = [p.timesteps for p in curve]
    ax.plot(steps, [p.mean_return for p in curve], "o-", label="eval return")
    ax.set_xlabel("timesteps")
    ax.set_ylabel("mean evaluation return")
    twin = ax.twinx()
    twin.plot(steps, [p.finish_rate for p in curve], "s--", color="tab:green", label="finish rate")
    twin.set_ylim(-0.05, 1.05)
    twin.set_ylabel("finish rate")
    ax.set_title(title)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="center right")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


# --- the time-penalty experiment --------------------------------------------------------


def time_penalty_experiment(weights: list[float], track: str, timesteps: int, out: str | Path,
                            base: TrainConfig | None = None) -> dict[str, Any]:
    """Train one agent per time-penalty weight; plot finish rate and race time against it."""
    if not weights:
        raise ConfigError("--weights needs at least one number, e.g. 0,0.0005,0.001")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ConfigError(f"time-penalty weights must be finite and >= 0, got {weights}")
    out = Path(out)
    base = base or TrainConfig()
    runs = []
    for weight in weights:
        run_config = dataclasses.replace(base, track=track, timesteps=timesteps, time_penalty=weight,
                                         out=str(out / f"w{weight:g}"))
        summary = train(run_config)
        curve = json.loads((out / f"w{weight:g}" / "curve.json").read_text())
        runs.append({"weight": weight, "summary": summary, "curve": curve})
    results = {"track": track, "timesteps": timesteps, "algo": base.algo, "runs": runs}
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    plot_experiment(results, out / "time_penalty.png")
    return results


def plot_experiment(results: dict[str, Any], path: Path) -> Path:
    """Three panels: finish rate vs weight, race time vs weight, learning curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tmstate.tools.plot import save_figure

    runs = results["runs"]
    weights = [r["weight"] for r in runs]
    finals = [r["summary"]["final"] or {} for r in runs]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), dpi=110)
    labels = [f"{w:g}" for w in weights]
    axes[0].bar(labels, [f.get("finish_rate", 0.0) for f in finals], color="tab:green")
    axes[0].set_ylim(0, 1.05)
    axes[0].set_xlabel("time penalty per ms")
    axes[0].set_ylabel("finish rate (final evaluation)")
    times = [f.get("mean_race_time_s") for f in finals]
    axes[1].bar(labels, [t if t is not None else 0.0 for t in times], color="tab:blue")
    for i, t in enumerate(times):
        axes[1].text(i, (t or 0.0), "no finish" if t is None else f"{t:.2f} s", ha="center", va="bottom")
    axes[1].set_ylim(0, max([t for t in times if t is not None], default=1.0) * 1.15)
    axes[1].set_xlabel("time penalty per ms")
    axes[1].set_ylabel("race time of finished episodes (s)")
    for run, label in zip(runs, labels):
        curve = run["curve"]
        axes[2].plot([p["timesteps"] for p in curve], [p["mean_progress_m"] for p in curve], label=label)
    axes[2].set_xlabel("timesteps")
    axes[2].set_ylabel("evaluation progress (m)")
    axes[2].legend(title="weight")
    fig.suptitle(f"Time-penalty sweep, {results['algo'].upper()} on {results['track']} "
                 f"({results['timesteps']:,} steps each)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


# --- CLI handlers -----------------------------------------------------------------------

"""Training with stable-baselines3.

``tmstate train`` trains PPO (or SAC) on the env: on the embedded simulator (a simplified
car, not TMNF physics) by default, or on the real game with ``--backend tminterface
--ports 8477,8478`` through the recovering vector env (:func:`tmstate.vector.sb3.to_sb3`:
a crashed or hung game ends its episode, is restarted or waited for, and training goes on).
Settings come from TrainConfig's defaults, then ``--config run.toml`` (``[train]``, its
``[train.hyper]`` algorithm keywords, and ``[env]``), then the command line. Everything lands
in one run folder, which a second run refuses to overwrite without ``--force``
(``--resume`` continues it from its model)::

    runs/train/
      config.json        what was trained, with which settings
      curve.json         the evaluation curve (timesteps, wall time, return, finish rate, race time)
      curve.png          the same as a picture
      checkpoints/       model zips every checkpoint_every steps (SB3's CheckpointCallback)
      model.zip          the final model
      summary.json       final figures (and the games restarted, on the real game)
      tb/                TensorBoard event files

Evaluation is SB3's ``EvalCallback`` (deterministic episodes every ``eval_every`` steps, the
best model kept as ``best_model.zip``) on an env of its own: a simulator env, or on the real
game a game of its own (``--eval-port``), so it never takes a training game's connection.
Without ``--eval-port`` the real-game curve comes from the training episodes themselves.

The experiments built on :func:`train` (time penalty, random starts, the table on real
campaign tracks) are in :mod:`tmstate.tools.experiments`.

Needs the ``train`` extra: ``bash scripts/setup.sh train`` (stable-baselines3, torch 2.13.0 CPU first).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tmstate.config import from_dict, read_toml
from tmstate.env.env import EnvConfig, TMNFEnv, make_config
from tmstate.env.start import START_MODES, StartConfig
from tmstate.errors import ConfigError, TmstateError
from tmstate.files import atomic_write_text, ensure_folder

DEFAULT_TRACK = "sim_easy"
BACKENDS = ("sim", "tminterface")
POLICIES = {"telemetry": "MlpPolicy", "frames": "CnnPolicy", "dict": "MultiInputPolicy"}
"""The SB3 policy for each observation type."""
RUN_FILES = ("config.json", "model.zip", "curve.json", "summary.json")
"""Files that make a folder a run folder (refused without --force or --resume)."""


@dataclass
class TrainConfig:
    """One training run. Hyper-parameters are SB3's defaults unless a comment says why not."""

    algo: str = "ppo"  # ppo | sac
    track: str = DEFAULT_TRACK  # the env's map: a sim track, or a line file for the real game
    backend: str = "sim"  # sim | tminterface
    obs: str = "telemetry"  # telemetry | frames | dict (MlpPolicy | CnnPolicy | MultiInputPolicy)
    ports: list[int] = field(default_factory=list)  # tminterface: one game per sub-env (default: 8477 + i)
    launch_config: str = ""  # tminterface: launch TOML whose pid file's games are restarted on loss
    eval_port: int = 0  # tminterface: a game of its own for evaluation (0 = the training episodes)
    timesteps: int = 200_000
    envs: int = 4  # sub-envs stepped together (batched policy inference)
    seed: int = 0
    out: str = "runs/train"
    time_penalty: float | None = None  # overrides env.reward.time when set
    # Where training episodes start (evaluation always starts at the start line): "auto" is
    # "uniform" (spread along the track) on the simulator unless [env.start] names a mode,
    # and the env's [env.start] on the game (spread starts there need a bank of saved states);
    # any StartConfig mode overrides [env.start].mode. docs/training.md has the experiment.
    start: str = "auto"
    eval_every: int = 10_000  # timesteps between evaluations
    eval_episodes: int = 3
    checkpoint_every: int = 50_000
    stop_at_finish_rate: float = 0.0  # stop once an evaluation finishes this often (0 = never)
    tensorboard: bool = True
    progress_bar: bool = True
    env: EnvConfig = field(default_factory=EnvConfig)
    # PPO: SB3's n_steps=2048, batch_size=64 first learn to stand still on these tracks (no
    # finish in 50k steps); shorter rollouts with larger minibatches learn (docs/training.md).
    n_steps: int = 512
    batch_size: int = 256
    learning_rate: float = 3e-4
    gamma: float = 0.99
    hyper: dict[str, Any] = field(default_factory=dict)  # any other keyword of the SB3 algorithm

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ConfigError(f"seed must be a whole number >= 0, got {self.seed}")
        if self.algo not in ("ppo", "sac"):
            raise ConfigError(f"algo must be 'ppo' or 'sac', got {self.algo!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.obs not in POLICIES:
            raise ConfigError(f"obs must be one of {', '.join(POLICIES)}, got {self.obs!r}")
        if self.start not in ("auto", *START_MODES):
            raise ConfigError(f"start must be one of auto, {', '.join(START_MODES)}, got {self.start!r}")
        for name in ("timesteps", "envs", "eval_every", "eval_episodes", "checkpoint_every", "n_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.env.backend == "tminterface" and self.backend == "sim":
            self.backend = "tminterface"  # an [env] table for the real game means the real game
        if self.backend == "tminterface":
            if self.ports and len(self.ports) != self.envs:
                raise ConfigError(f"{len(self.ports)} port(s) for {self.envs} env(s): give one port per env "
                                  "(--ports 8477,8478 with --envs 2)")
            if self.eval_port and self.eval_port in self.ports:
                raise ConfigError(f"eval_port {self.eval_port} is also a training port: evaluation needs a game of its own")
        elif self.ports or self.eval_port or self.launch_config:
            raise ConfigError("ports, eval_port and launch_config are for backend 'tminterface'")

    @property
    def policy(self) -> str:
        return POLICIES[self.obs]

    def train_ports(self) -> list[int]:
        """The training games' ports: ``ports``, else the launch config's ``base_port + i``."""
        if self.ports:
            return list(self.ports)
        from tmstate.ops.launch import load_config

        base = load_config(self.launch_config or None).base_port
        return [base + i for i in range(self.envs)]

    def env_config(self) -> EnvConfig:
        """The env settings of this run: the ``env`` table with the track, backend,
        observation type and time penalty of this run applied."""
        overrides: dict[str, Any] = {"map": self.track, "backend": self.backend, "observation": {"type": self.obs}}
        if self.time_penalty is not None:
            overrides["reward"] = {"time": self.time_penalty}
        start = self.start_mode()
        if start != self.env.start.mode:
            overrides["start"] = {"mode": start}
        return make_config(self.env, **overrides)

    def start_mode(self) -> str:
        """The start mode training episodes use (``start``, with "auto" resolved)."""
        if self.start != "auto":
            return self.start
        if self.backend == "sim" and self.env.start.mode == StartConfig.mode:
            return "uniform"
        return self.env.start.mode

    def algo_kwargs(self) -> dict[str, Any]:
        """The keywords the SB3 algorithm is built with (``hyper`` last, so it wins)."""
        kwargs: dict[str, Any] = {"learning_rate": self.learning_rate, "gamma": self.gamma}
        if self.algo == "ppo":
            kwargs.update(n_steps=self.n_steps, batch_size=self.batch_size)
        return {**kwargs, **self.hyper}


def load_train_config(path: str | Path) -> TrainConfig:
    """A :class:`TrainConfig` from a run TOML: ``[train]`` (with ``[train.hyper]``) and ``[env]``."""
    data = read_toml(path, "run config")
    unknown = set(data) - {"train", "env"}
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}; a run config has [train] and [env]")
    values = dict(data.get("train", {}))
    if "env" in data:
        values["env"] = data["env"]
    return from_dict(TrainConfig, values, where=str(path))


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


def evaluation_config(env_config: EnvConfig) -> EnvConfig:
    """The env settings evaluation runs with: the training env's, starting at the start line.

    Whatever ``env_config.start`` trains with, evaluation episodes start where a race starts,
    so runs with and without starts along the track are measured on the same whole-track task
    (a spread start's finish is a partial lap).
    """
    return make_config(env_config, start={"mode": "line_start"})


def episode_figures(returns: list[float], progress: list[float], times: list[float], episodes: int) -> dict[str, Any]:
    """Mean return, finish rate, mean race time of the finished ones, mean progress."""
    return {
        "mean_return": float(np.mean(returns)) if returns else float("nan"),
        "finish_rate": len(times) / episodes if episodes else 0.0,
        "mean_race_time_s": float(np.mean(times)) if times else None,
        "mean_progress_m": float(np.mean(progress)) if progress else 0.0,
    }


# --- the envs -------------------------------------------------------------------------


def make_train_env(config: TrainConfig, env_config: EnvConfig) -> tuple[Any, Any]:
    """The SB3 VecEnv the agent trains on, and the tmstate vector env behind it (None on the sim)."""
    if config.backend == "sim":
        # The batched simulator: all cars stepped, scored and observed in one numpy call
        # (tmstate.vector.sim), behind SB3's VecEnv, with SB3's episode statistics.
        from stable_baselines3.common.vec_env import VecMonitor

        from tmstate.vector.sim import SimVectorEnv
        from tmstate.vector.sim import to_sb3 as sim_to_sb3

        options = {**env_config.backend_options}
        options.setdefault("seed", config.seed)
        batched = SimVectorEnv(config.envs, make_config(env_config, backend_options=options, log_dir=""))
        venv = sim_to_sb3(batched)
        venv.seed(config.seed)
        return VecMonitor(venv), None
    from tmstate.vector.env import VectorConfig
    from tmstate.vector.make import make_vector_env
    from tmstate.vector.sb3 import to_sb3

    vector = make_vector_env(config.envs, env_config, backend="tminterface", ports=config.train_ports(),
                             launch=config.launch_config or None, vector=VectorConfig(autoreset_mode="same_step"))
    venv = to_sb3(vector)
    venv.seed(config.seed)
    return venv, vector


def make_eval_env(config: TrainConfig, env_config: EnvConfig) -> Any | None:
    """The env evaluation runs on, never a training game: a sim env, or the game on ``eval_port``."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    env_config = evaluation_config(env_config)
    if config.backend == "sim":
        # VecMonitor like the batched training env (SB3's EvalCallback wants the same wrapper type)
        return VecMonitor(DummyVecEnv([lambda: TMNFEnv(env_config)]))
    if not config.eval_port:
        return None
    from tmstate.vector.env import VectorConfig
    from tmstate.vector.make import make_vector_env
    from tmstate.vector.sb3 import to_sb3

    return to_sb3(make_vector_env(1, env_config, backend="tminterface", ports=[config.eval_port],
                                  launch=config.launch_config or None, vector=VectorConfig(autoreset_mode="same_step")))


def _make_model(config: TrainConfig, vec_env: Any, tb_dir: str | None, resume_from: Path | None):
    from stable_baselines3 import PPO, SAC

    cls = PPO if config.algo == "ppo" else SAC
    if resume_from is not None:
        return cls.load(str(resume_from), env=vec_env, device="cpu", tensorboard_log=tb_dir)
    try:
        return cls(config.policy, vec_env, seed=config.seed, tensorboard_log=tb_dir, verbose=0, device="cpu",
                   **config.algo_kwargs())
    except TypeError as exc:
        raise ConfigError(f"bad {config.algo.upper()} hyper-parameter ({exc})") from None


# --- callbacks ------------------------------------------------------------------------


def _callbacks(config: TrainConfig, eval_env: Any, out: Path, curve: list[EvalPoint], started: float):
    """SB3's EvalCallback (which feeds the curve) and CheckpointCallback, plus a progress bar
    that stops at 100 % (SB3's own counts whole rollouts past the total) and, without an
    evaluation env, a curve from the training episodes."""
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback, EvalCallback

    def add_point(timesteps: int, figures: dict[str, Any], logger: Any) -> EvalPoint:
        point = EvalPoint(timesteps=timesteps, wall_s=time.monotonic() - started, **figures)
        curve.append(point)
        for key, value in figures.items():
            if value is not None:
                logger.record(f"eval/{key}", value)
        write_curve(out, curve)
        return point

    class Progress(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.bar = None

        def _on_training_start(self) -> None:
            if config.progress_bar:
                from tqdm import tqdm

                self.bar = tqdm(total=config.timesteps, unit="step", desc=f"{config.algo} {config.track}",
                                initial=min(self.num_timesteps, config.timesteps))

        def _on_step(self) -> bool:
            if self.bar is not None and self.n_calls % 50 == 0:
                self.bar.n = min(self.num_timesteps, config.timesteps)
                self.bar.refresh()
            return True

        def _on_training_end(self) -> None:
            if self.bar is not None:
                self.bar.n = min(self.num_timesteps, config.timesteps)
                if curve:
                    self.bar.set_postfix(finish=f"{curve[-1].finish_rate:.0%}", ret=f"{curve[-1].mean_return:.2f}")
                self.bar.close()

    class EpisodeStats:
        """Figures of the episodes an evaluation ran (EvalCallback's per-step callback sees their infos)."""

        def __init__(self) -> None:
            self.returns: list[float] = []
            self.progress: list[float] = []
            self.times: list[float] = []
            self._running: float = 0.0

        def __call__(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
            info = locals_["info"]
            self._running += float(locals_["reward"])
            if locals_["done"]:
                self.returns.append(self._running)
                self._running = 0.0
                self.progress.append(float(info.get("progress_m", 0.0)))
                if info.get("finished"):
                    self.times.append(info["race_time_ms"] / 1000.0)

    class Evaluation(EvalCallback):
        """SB3's EvalCallback, also recording finish rate, race time and progress into the curve."""

        stats = EpisodeStats()

        def _log_success_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
            super()._log_success_callback(locals_, globals_)
            self.stats(locals_, globals_)

        def _on_step(self) -> bool:
            if not (self.eval_freq > 0 and self.n_calls % self.eval_freq == 0):
                return True
            self.stats = EpisodeStats()
            keep_going = super()._on_step()
            s = self.stats
            point = add_point(self.num_timesteps, episode_figures(s.returns, s.progress, s.times, len(s.returns)),
                              self.logger)
            if config.stop_at_finish_rate and point.finish_rate >= config.stop_at_finish_rate:
                return False
            return keep_going

        def _on_training_end(self) -> None:
            if self.n_calls and (not curve or curve[-1].timesteps != self.num_timesteps):
                eval_freq, self.eval_freq = self.eval_freq, self.n_calls  # due now: the final point
                try:
                    self._on_step()
                finally:
                    self.eval_freq = eval_freq

    class TrainingEpisodes(BaseCallback):
        """Without an evaluation env: a curve point per rollout from its finished training episodes."""

        def __init__(self) -> None:
            super().__init__()
            self.stats = EpisodeStats()
            self.running: np.ndarray | None = None

        def _on_step(self) -> bool:
            rewards, dones, infos = self.locals["rewards"], self.locals["dones"], self.locals["infos"]
            if self.running is None:
                self.running = np.zeros(len(rewards))
            self.running += rewards
            for i, done in enumerate(dones):
                if done:
                    info = infos[i]
                    self.stats.returns.append(float(self.running[i]))
                    self.running[i] = 0.0
                    self.stats.progress.append(float(info.get("progress_m", 0.0)))
                    if info.get("finished"):
                        self.stats.times.append(info["race_time_ms"] / 1000.0)
            return True

        def _on_rollout_end(self) -> None:
            s = self.stats
            if s.returns:
                add_point(self.num_timesteps, episode_figures(s.returns, s.progress, s.times, len(s.returns)),
                          self.logger)
                self.stats = EpisodeStats()

    callbacks: list[Any] = [Progress()]
    if eval_env is not None:
        callbacks.append(Evaluation(eval_env, n_eval_episodes=config.eval_episodes,
                                    eval_freq=max(1, config.eval_every // config.envs), deterministic=True,
                                    best_model_save_path=str(out), log_path=None, verbose=0))
    else:
        callbacks.append(TrainingEpisodes())
    callbacks.append(CheckpointCallback(save_freq=max(1, config.checkpoint_every // config.envs),
                                        save_path=str(out / "checkpoints"), name_prefix=config.algo))
    return CallbackList(callbacks)


# --- a run ----------------------------------------------------------------------------


def prepare_run_folder(out: Path, *, force: bool = False, resume: bool = False) -> Path | None:
    """Check ``out`` may be written; returns the model to resume from (with ``resume``).

    A folder holding a run is refused unless ``force`` (it is emptied) or ``resume`` (its
    ``model.zip``, else its newest checkpoint, is continued)."""
    if resume:
        if (out / "model.zip").is_file():
            return out / "model.zip"
        checkpoints = sorted((out / "checkpoints").glob("*_steps.zip"), key=lambda p: int(p.stem.split("_")[-2]))
        if checkpoints:
            return checkpoints[-1]
        raise ConfigError(f"--resume: {out} holds no model.zip and no checkpoint to continue")
    existing = [name for name in RUN_FILES if (out / name).exists()] + (["checkpoints/"] if (out / "checkpoints").is_dir() else [])
    if existing:
        if not force:
            raise ConfigError(f"{out} already holds a run ({', '.join(existing)}); pass --force to overwrite it, "
                              "--resume to continue it, or --out another folder")
        shutil.rmtree(out)
    return None


def train(config: TrainConfig, *, force: bool = False, resume: bool = False) -> dict[str, Any]:
    """Train one agent; returns the summary also written to ``<out>/summary.json``."""
    _require_sb3()
    import torch

    if "OMP_NUM_THREADS" not in os.environ:  # the standard variable wins (runs side by side)
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    out = Path(config.out)
    resume_from = prepare_run_folder(out, force=force, resume=resume)
    out = ensure_folder(out, "--out folder")  # a read-only disk or a file in the way fails before training
    env_config = config.env_config()
    curve: list[EvalPoint] = []
    if resume_from is not None and (out / "curve.json").is_file():
        curve = [EvalPoint(**p) for p in json.loads((out / "curve.json").read_text())]
    atomic_write_text(out / "config.json", json.dumps(run_record(config), indent=2, default=str))
    vec_env, vector = make_train_env(config, env_config)
    eval_env = None
    try:
        eval_env = make_eval_env(config, env_config)
        if eval_env is not None and config.obs != "telemetry":
            from stable_baselines3.common.vec_env import VecTransposeImage

            eval_env = VecTransposeImage(eval_env)  # as SB3 wraps the training env: channels first
        tb_dir = str(out / "tb") if config.tensorboard and _has_tensorboard() else None
        model = _make_model(config, vec_env, tb_dir, resume_from)
        started = time.monotonic() - (curve[-1].wall_s if curve else 0.0)
        remaining = config.timesteps - (model.num_timesteps if resume_from is not None else 0)
        if remaining > 0:
            model.learn(total_timesteps=remaining, callback=_callbacks(config, eval_env, out, curve, started),
                        reset_num_timesteps=resume_from is None)
        wall_s = time.monotonic() - started
        restarts = list(vector.restarts) if vector is not None else None
    finally:
        vec_env.close()
        if eval_env is not None:
            eval_env.close()
    model.save(str(out / "model.zip"))
    summary = summarise(config, curve, wall_s, model.num_timesteps)
    if restarts is not None:
        summary["restarts"] = restarts
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    plot_curve(curve, out / "curve.png", title=f"{config.algo.upper()} on {config.track} ({config.obs})")
    return summary


def run_record(config: TrainConfig) -> dict[str, Any]:
    """What ``config.json`` of a run holds: the run's settings, with the env's as trained."""
    return dataclasses.asdict(config) | {"env": dataclasses.asdict(config.env_config())}


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
    ax.legend(handles, [str(h.get_label()) for h in handles], loc="center right")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


# --- CLI handlers -----------------------------------------------------------------------


CLI_FIELDS = ("algo", "track", "backend", "obs", "ports", "launch_config", "eval_port", "timesteps", "envs", "seed",
              "out", "time_penalty", "start", "eval_every", "eval_episodes", "checkpoint_every", "stop_at_finish_rate",
              "n_steps", "batch_size", "learning_rate", "gamma")
"""TrainConfig fields that ``tmstate train`` has an option for (same name, dashes for underscores)."""


def parse_hyper(items: list[str]) -> dict[str, Any]:
    """``["ent_coef=0.01", "policy_kwargs={net_arch=[64, 64]}"]`` -> keywords, values read as TOML
    (a bare word stays a string)."""
    import tomllib

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--hyper takes KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = text.strip()
    return out


def merged_config(config_path: str | None, overrides: dict[str, Any], hyper: list[str] | None = None) -> TrainConfig:
    """TrainConfig's defaults, then the run TOML's tables, then ``overrides`` (the options
    given) and ``hyper`` (``KEY=VALUE`` algorithm keywords, over the TOML's ``[train.hyper]``)."""
    base = load_train_config(config_path) if config_path else TrainConfig()
    values = {f.name: getattr(base, f.name) for f in dataclasses.fields(TrainConfig)}
    values.update(overrides)
    values["hyper"] = {**base.hyper, **parse_hyper(hyper or [])}
    return from_dict(TrainConfig, values, where="tmstate train")

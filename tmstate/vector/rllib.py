"""Game instances on many machines: the recovering vector env inside Ray RLlib's env runners.

RLlib places its env runners (one process each) on the nodes of a Ray cluster and feeds
what they sample to one learner. Here each env runner builds one
:class:`~tmstate.vector.env.TMNFVectorEnv` over the games *on its own node* (the plugin
listens on 127.0.0.1 only, so a runner can only drive the games beside it):

- ``backend="sim"`` (the default): embedded simulators (a simplified car, not TMNF physics),
  nothing to place.
- ``backend="harness"``: plugin-harness processes (the real plugin over the real socket, a
  point-mass car); started by the runner, or the ones already listening on the node's
  ``ports``.
- ``backend="tminterface"``: TMNF games, from the node's ``ports`` or else from the pid file
  that ``tmstate launch`` wrote on that node (its launch config: ``launch_config``, else
  ``TMSTATE_LAUNCH_CONFIG`` / ``TMSTATE_RUN_DIR`` in the environment ``ray start`` ran in).
  Games found through the pid file are restarted by the runner when they die.

``ports`` maps a node key to the game ports on that node. A node's keys are its IP address
and the names of its Ray resources (custom ones such as ``tmnf_box3``, and Ray's own
``node:<ip>``); ``"*"`` matches every node. Several runners on one node share its games:
each runner claims the ports it drives with a lock file in the node's temp folder (released
when the runner's process ends, so a restarted runner can claim them again).

Placement: with a game backend, each env runner asks for ``envs_per_runner`` units of the
custom resource :data:`GAME_RESOURCE` (``tmnf``); a game machine declares as many units as
games it runs (``ray start --resources '{"tmnf": K}'``), so Ray puts runners only where
their games are.

Failures: inside a runner the vector env recovers a lost game as on one machine (the episode
ends truncated with ``info["game_lost"]``, the game is restarted or waited for, the cut
episode's log records ``game_lost``). If that fails, or the runner's process or node dies,
RLlib's fault tolerance (``restart_failed_env_runners``) starts a new runner where a game
resource is free, and training goes on with the runners that are left meanwhile.

Needs the ``ray`` extra (``pip install -e ".[ray]"``): Ray RLlib, which pins its own
Gymnasium version. Recipe and figures: docs/scale.md.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import ray
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.tune.registry import register_env

from tmstate.config import from_dict
from tmstate.env.env import EnvConfig, make_config
from tmstate.errors import ConfigError
from tmstate.vector.env import TMNFVectorEnv, VectorConfig
from tmstate.vector.instances import (
    GameInstance,
    HarnessInstance,
    LaunchedInstance,
    PortInstance,
    SimInstance,
    harness_line,
)

log = logging.getLogger(__name__)

ENV_NAME = "tmstate-vector"
"""The name the env creator is registered under with Ray (``config.environment(ENV_NAME)``)."""
GAME_RESOURCE = "tmnf"
"""The custom Ray resource of one game instance: a game node declares one unit per game."""
BACKENDS = ("sim", "harness", "tminterface")
LOCK_DIR_NAME = "tmstate-games"
"""Folder in the node's temp folder with one lock file per claimed game port."""


@dataclass
class RunnerEnvConfig:
    """What every env runner builds (RLlib's ``env_config``, as a plain dict on the wire)."""

    backend: str = "sim"
    """sim | harness | tminterface (see the module docs)."""
    env: dict[str, Any] = field(default_factory=dict)
    """EnvConfig fields for every sub-env, as for TMNFEnv (``log_dir``: per runner and sub-env
    folders ``runner<w>/env<i>`` below it, on the runner's node)."""
    maps: list[str] = field(default_factory=list)
    """Maps spread over all sub-envs of all runners round-robin (empty: ``env.map``)."""
    ports: dict[str, list[int]] = field(default_factory=dict)
    """Node key -> game ports on that node (see the module docs). Empty: harness processes
    started by the runner, or the pid file of ``tmstate launch`` for tminterface."""
    launch_config: str = ""
    """Path of the launch TOML on the game nodes ("" = TMSTATE_LAUNCH_CONFIG / TMSTATE_* there)."""
    vector: dict[str, Any] = field(default_factory=dict)
    """VectorConfig fields (restart attempts and delay) for each runner's vector env."""
    harness_options: dict[str, Any] = field(default_factory=dict)
    """HarnessProcess arguments for harnesses the runner starts itself."""
    wait_for_game_s: float = 60.0
    """A lost game on a listed port (nobody here can restart it): how long one recovery
    attempt waits for it to answer again."""
    seed: int = 0
    """Simulator seeds: runner w, sub-env i gets seed + 1000 w + i."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        for key, ports in self.ports.items():
            if not isinstance(ports, (list, tuple)) or not all(isinstance(p, int) and 0 < p < 65536 for p in ports):
                raise ConfigError(f"ports[{key!r}] must be a list of TCP ports, got {ports!r}")
        if self.wait_for_game_s <= 0:
            raise ConfigError(f"wait_for_game_s must be > 0, got {self.wait_for_game_s}")
        VectorConfig(**self.vector)  # refuse bad values here, on the driver, not in a runner
        make_config(self.env)

    @property
    def needs_games(self) -> bool:
        """Whether runners must be placed on nodes with games (every backend but the sim)."""
        return self.backend != "sim"


# --- where this node's games are -------------------------------------------------------


def node_keys() -> set[str]:
    """The names this node answers to in a ``ports`` table: its IP and its Ray resources."""
    keys = {"*"}
    if not ray.is_initialized():
        return keys
    node_id = ray.get_runtime_context().get_node_id()
    for node in ray.nodes():
        if node.get("NodeID") == node_id:
            keys.add(str(node.get("NodeManagerAddress", "")))
            keys.update(node.get("Resources", {}))
            break
    return keys


def ports_for_node(ports: Mapping[str, Sequence[int]], keys: Iterable[str]) -> list[int]:
    """The ports listed for any of ``keys`` (table order, each once)."""
    keys = set(keys)
    found: list[int] = []
    for key, listed in ports.items():
        if key in keys:
            found += [p for p in listed if p not in found]
    return found


class PortClaim:
    """Exclusive claims on game ports of this node, held as long as this object (or its process) lives.

    One lock file per port in ``<tmp>/tmstate-games/``; ``flock`` locks vanish with the
    process that held them, so a crashed runner's games are free again at once.
    """

    def __init__(self, lock_dir: Path | None = None) -> None:
        self.lock_dir = lock_dir or Path(tempfile.gettempdir()) / LOCK_DIR_NAME
        self.ports: list[int] = []
        self._files: list[IO[str]] = []

    def claim(self, candidates: Sequence[int], count: int, where: str) -> list[int]:
        """Claim the first ``count`` free ports of ``candidates``; refuse if fewer are free."""
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        for port in candidates:
            if len(self.ports) == count:
                break
            handle = open(self.lock_dir / f"port-{port}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            self._files.append(handle)
            self.ports.append(port)
        if len(self.ports) < count:
            claimed = len(self.ports)
            self.release()
            raise ConfigError(
                f"{where}: this env runner needs {count} game(s), {len(candidates)} listed "
                f"({list(candidates)}), {claimed} free (the others are driven by other runners) — start "
                f"more games there, or declare as many '{GAME_RESOURCE}' resources as games on that node"
            )
        return list(self.ports)

    def release(self) -> None:
        for handle in self._files:
            handle.close()  # closing the file drops its flock
        self._files.clear()
        self.ports.clear()


# --- the env creator -------------------------------------------------------------------


_runner_index = 0
"""The index of the env runner whose env is being built in this process (set by
:class:`TMNFEnvRunner`: RLlib's vector entry point does not pass it to the creator)."""


def sub_env_configs(settings: RunnerEnvConfig, num_envs: int, runner: int) -> list[EnvConfig]:
    """The EnvConfig of each sub-env of runner ``runner``: its map, log folder and sim seed."""
    base = make_config(settings.env)
    if settings.backend != "sim" and num_envs > 1 and "spin_us" not in base.backend_options:
        # Threads that poll their sockets would fight over the GIL: let each receive sleep.
        base = make_config(base, backend_options={**base.backend_options, "spin_us": 0.0})
    maps = settings.maps or [base.map]
    configs = []
    for i in range(num_envs):
        changes: dict[str, Any] = {"map": maps[(runner * num_envs + i) % len(maps)]}
        if base.log_dir:
            changes["log_dir"] = str(Path(base.log_dir) / f"runner{runner}" / f"env{i}")
        if settings.backend == "sim":
            changes["backend"] = "sim"
            if "seed" not in base.backend_options:
                changes["backend_options"] = {**base.backend_options, "seed": settings.seed + 1000 * runner + i}
        configs.append(make_config(base, **changes))
    return configs


def build_runner_env(
    settings: RunnerEnvConfig, num_envs: int, runner: int = 0, keys: Iterable[str] | None = None,
    lock_dir: Path | None = None,
) -> TMNFVectorEnv:
    """The vector env of env runner ``runner``: ``num_envs`` sub-envs over this node's games."""
    configs = sub_env_configs(settings, num_envs, runner)
    keys = node_keys() if keys is None else set(keys)
    listed = ports_for_node(settings.ports, keys)
    where = f"env runner {runner} on node {sorted(k for k in keys if k != '*')}"
    on_close = []
    instances: list[GameInstance]
    if settings.backend == "sim":
        instances = [SimInstance(c) for c in configs]
    elif settings.backend == "harness" and not settings.ports:
        instances = [HarnessInstance(c, settings.harness_options) for c in configs]
    elif settings.ports:
        claim = PortClaim(lock_dir)
        ports = claim.claim(listed, num_envs, where)
        on_close.append(claim.release)
        line = harness_line() if settings.backend == "harness" else None
        instances = [PortInstance(p, c, settings.wait_for_game_s, line=line) for c, p in zip(configs, ports)]
    else:
        instances, release = _launched_instances(settings, configs, where, lock_dir)
        on_close.append(release)
    env = TMNFVectorEnv(instances, VectorConfig(**settings.vector), on_close=on_close)  # closes them if it fails
    log.info("%s: %s", where, env)
    return env


def _launched_instances(settings: RunnerEnvConfig, configs: list[EnvConfig], where: str,
                        lock_dir: Path | None) -> tuple[list[GameInstance], Any]:
    """Instances over the games ``tmstate launch`` started on this node (its pid file)."""
    from tmstate.ops.launch import Launcher, load_config

    launch = load_config(settings.launch_config or None)
    if not launch.pid_file.exists():
        raise ConfigError(
            f"{where}: no ports listed for this node and no pid file at {launch.pid_file.resolve()} — run "
            f"`tmstate launch -n K` on that node (same launch config), or list its ports"
        )
    launcher = Launcher.adopt(launch)
    by_port = {launcher.plans[i].port: i for i in sorted(launcher.instances)}
    claim = PortClaim(lock_dir)
    ports = claim.claim(list(by_port), len(configs), where)
    return [LaunchedInstance(launcher, by_port[p], c) for c, p in zip(configs, ports)], claim.release


def env_creator(context: Mapping[str, Any]) -> TMNFVectorEnv:
    """RLlib's env creator (vector entry point): ``context`` is the env_config plus ``num_envs``."""
    values = dict(context)
    num_envs = int(values.pop("num_envs", 1))
    runner = getattr(context, "worker_index", None)
    settings = from_dict(RunnerEnvConfig, values, where="env_config")
    return build_runner_env(settings, num_envs, _runner_index if runner is None else runner)


def register() -> None:
    """Register :func:`env_creator` with Ray as :data:`ENV_NAME` (idempotent)."""
    register_env(ENV_NAME, env_creator)


class TMNFEnvRunner(SingleAgentEnvRunner):
    """RLlib's single-agent env runner that tells the env creator its index, and reports
    which games it drives (:meth:`game_report`)."""

    def make_env(self) -> None:
        global _runner_index
        _runner_index = self.worker_index
        register()  # the registry entry may not have reached this process yet
        super().make_env()

    def game_report(self) -> dict[str, Any]:
        """This runner's node and games: node id, IP, each instance and its restarts."""
        vector = self.env.unwrapped if self.env is not None else None
        instances = list(getattr(vector, "instances", []))
        return {
            "runner": self.worker_index,
            "node_id": ray.get_runtime_context().get_node_id(),
            "ip": ray.util.get_node_ip_address(),
            "pid": os.getpid(),
            "instances": [i.describe() for i in instances],
            "ports": [getattr(i, "port", None) for i in instances],
            "restarts": list(getattr(vector, "restarts", [])),
        }


# --- metrics ----------------------------------------------------------------------------


METRIC_PREFIX = "tmstate/"


class GameMetrics(RLlibCallback):
    """Per finished episode: finish rate, race time, progress; and the games lost.

    They show up under ``result["env_runners"]["tmstate/..."]`` (means over the last 100
    episodes; ``games_lost`` counts the episodes cut by a lost game in the iteration).
    """

    def on_episode_end(self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
        if metrics_logger is None:
            return
        info = episode.get_infos(-1) or {}
        lost = bool(info.get("game_lost", False))
        metrics_logger.log_value(METRIC_PREFIX + "games_lost", int(lost), reduce="sum")
        metrics_logger.log_value(METRIC_PREFIX + "games_lost_lifetime", int(lost), reduce="lifetime_sum")
        if lost:
            return
        finished = bool(info.get("finished", False))
        metrics_logger.log_value(METRIC_PREFIX + "finish_rate", float(finished), window=100)
        metrics_logger.log_value(METRIC_PREFIX + "progress_m", float(info.get("progress_m", 0.0)), window=100)
        if finished:
            metrics_logger.log_value(METRIC_PREFIX + "race_time_s", info["race_time_ms"] / 1000.0, window=100)


# --- the algorithm --------------------------------------------------------------------


@dataclass
class PPOSettings:
    """PPO through RLlib. Defaults follow ``tmstate train``'s SB3 settings where they match."""

    runners: int = 2
    envs_per_runner: int = 1
    rollout_steps: int = 512
    """Steps per sub-env per iteration (SB3's n_steps): a batch is this x all sub-envs."""
    minibatch_size: int = 256
    num_epochs: int = 10
    learning_rate: float = 3e-4
    gamma: float = 0.99
    hidden: tuple[int, ...] = (64, 64)
    seed: int = 0
    game_resource: str = GAME_RESOURCE
    cpus_per_runner: float = 1.0
    runner_restarts: int = 1000
    """How often RLlib may restart a failed env runner over the run."""
    sample_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        for name in ("runners", "envs_per_runner", "rollout_steps", "minibatch_size", "num_epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def train_batch_size(self) -> int:
        return self.rollout_steps * self.runners * self.envs_per_runner


def ppo_config(env: RunnerEnvConfig, ppo: PPOSettings) -> Any:
    """RLlib's PPOConfig (new API stack) over :class:`TMNFEnvRunner` runners of ``env``.

    The learner runs in the driver process (the head node); with a game backend each runner
    asks for ``envs_per_runner`` units of ``game_resource``.
    """
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    register()
    resources = {ppo.game_resource: ppo.envs_per_runner} if env.needs_games and ppo.game_resource else {}
    return (
        PPOConfig()
        .environment(ENV_NAME, env_config=dataclasses.asdict(env))
        .env_runners(
            env_runner_cls=TMNFEnvRunner,
            num_env_runners=ppo.runners,
            num_envs_per_env_runner=ppo.envs_per_runner,
            gym_env_vectorize_mode="vector_entry_point",
            num_cpus_per_env_runner=ppo.cpus_per_runner,
            custom_resources_per_env_runner=resources,
            rollout_fragment_length=ppo.rollout_steps,
            sample_timeout_s=ppo.sample_timeout_s,
        )
        .fault_tolerance(
            restart_failed_env_runners=True,
            max_num_env_runner_restarts=ppo.runner_restarts,
            delay_between_env_runner_restarts_s=1.0,
        )
        .learners(num_learners=0)
        .training(
            lr=ppo.learning_rate,
            gamma=ppo.gamma,
            train_batch_size_per_learner=ppo.train_batch_size,
            minibatch_size=min(ppo.minibatch_size, ppo.train_batch_size),
            num_epochs=ppo.num_epochs,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=list(ppo.hidden)))
        .callbacks(GameMetrics)
        .debugging(seed=ppo.seed, log_level="WARN")
        .reporting(metrics_num_episodes_for_smoothing=100)
    )


def game_reports(algo: Any) -> list[dict[str, Any]]:
    """:meth:`TMNFEnvRunner.game_report` of every healthy remote env runner of ``algo``."""
    return list(algo.env_runner_group.foreach_env_runner(lambda runner: runner.game_report(), local_env_runner=False))

"""Many game instances as one Gymnasium ``VectorEnv``, surviving crashed and hung games.

Each sub-env is a normal single env (``TMNFEnv``) driving one game instance. The games run
in their own processes (TMNF under Wine, the plugin harness), so the sub-envs are stepped
from one thread each: a thread waiting on its socket releases the GIL, and N games step
in parallel. The embedded simulator is pure Python, so its sub-envs are stepped in turn
(threads would only add overhead there).

Crash and hang recovery: when a sub-env's step or reset fails because its game is gone
(connection dropped, no answer within the bridge timeout, garbage on the wire), that
sub-env's episode ends *truncated* with ``info["game_lost"] = True`` (and the error text in
``info["game_error"]``); its :class:`GameInstance` restarts the game (the launcher for the
real game, a new harness process or simulator in tests), a fresh sub-env is built and
reset, and stepping goes on. A dropped connection to a game whose process still runs is
reconnected before anything is restarted. The other sub-envs keep their episodes: they
wait, paused in their step, while the vector step waits for the restart (their plugins
wait that long: ``GameConfig.plugin_timeout_ms`` is 500 s by default). After
``restart_attempts`` failed attempts in a row the vector env raises one
:class:`~tmstate.errors.GameLostError` naming the instance and the last error. Episode logs
of finished episodes are untouched; the cut episode is written with the steps it had
(closing the lost sub-env ends its log).

Autoreset follows Gymnasium's modes (``metadata["autoreset_mode"]``): ``NEXT_STEP``
(Gymnasium's default: the step after an episode's end resets that sub-env and ignores its
action) or ``SAME_STEP`` (the reset happens in the same step; the last observation is in
``info["final_obs"]``). :func:`to_sb3` wraps the vector env as a stable-baselines3
``VecEnv`` (same-step autoreset, ``terminal_observation`` and ``TimeLimit.truncated`` in
the per-env infos, as SB3's own ``DummyVecEnv`` gives them).
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array, iterate

from tmstate.errors import (
    BridgeTimeoutError,
    ConfigError,
    DisconnectedError,
    GameLostError,
    NotListeningError,
    ProtocolError,
    TmstateError,
    VersionMismatchError,
)

log = logging.getLogger(__name__)

GAME_LOST_ERRORS: tuple[type[BaseException], ...] = (
    DisconnectedError,
    BridgeTimeoutError,
    NotListeningError,
    ProtocolError,
    ConnectionError,
    TimeoutError,
)
"""Errors that mean "this game is gone or hung" (as opposed to a bug or a bad setting)."""

NOT_GAME_LOST: tuple[type[BaseException], ...] = (VersionMismatchError,)
"""Subclasses of the above that a restart cannot fix: raised at once."""


def is_game_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the sub-env's game crashed or stopped answering."""
    return isinstance(exc, GAME_LOST_ERRORS) and not isinstance(exc, NOT_GAME_LOST)


def lost_info(exc: BaseException) -> dict[str, Any]:
    """The info keys of a step or reset whose game was lost to ``exc``."""
    return {"game_lost": True, "game_error": f"{type(exc).__name__}: {exc}"}


# --- what sits behind one sub-env ------------------------------------------------------


class GameInstance(abc.ABC):
    """One game behind one sub-env: builds the sub-env and brings the game back after a loss."""

    io_bound: bool = True
    """True when the game runs in another process (stepping it from a thread pays off)."""

    @abc.abstractmethod
    def make_env(self) -> gym.Env:
        """A new sub-env connected to the (running) game."""

    def recover(self) -> None:
        """Restart the game after it crashed or hung (nothing to do for in-process games)."""

    def game_alive(self) -> bool | None:
        """Whether the game's process still runs (None: unknown). A dropped connection to a
        live game is reconnected before the game is restarted."""
        return None

    def close(self) -> None:
        """Stop what this instance started. Safe to call twice."""

    def describe(self) -> str:
        return type(self).__name__


class FunctionInstance(GameInstance):
    """A :class:`GameInstance` from plain functions (handy for tests and one-off set-ups)."""

    def __init__(
        self,
        make_env: Callable[[], gym.Env],
        recover: Callable[[], None] | None = None,
        close: Callable[[], None] | None = None,
        io_bound: bool = True,
        name: str = "instance",
        alive: Callable[[], bool] | None = None,
    ) -> None:
        self._alive = alive
        self._make_env = make_env
        self._recover = recover
        self._close = close
        self.io_bound = io_bound
        self.name = name

    def make_env(self) -> gym.Env:
        return self._make_env()

    def recover(self) -> None:
        if self._recover is not None:
            self._recover()

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def game_alive(self) -> bool | None:
        return None if self._alive is None else self._alive()

    def describe(self) -> str:
        return self.name


class SimInstance(GameInstance):
    """The embedded simulator (a simplified car, not TMNF physics): nothing to restart."""

    io_bound = False

    def __init__(self, env_config: Any) -> None:
        self.env_config = env_config

    def make_env(self) -> gym.Env:
        from tmstate.env.env import TMNFEnv

        return TMNFEnv(self.env_config)

    def describe(self) -> str:
        return f"sim {self.env_config.map or 'sim_easy'}"


class HarnessInstance(GameInstance):
    """A plugin-harness process per sub-env: the real plugin over the real socket, but its
    car is the harness's point-mass stand-in (not TMNF). Recovery starts a new process."""

    def __init__(self, env_config: Any, harness_options: dict | None = None, line: Any = None) -> None:
        self.env_config = env_config
        self.harness_options = dict(harness_options or {})
        self.line = line if line is not None else harness_line()
        self.harness: Any = None

    def _start(self) -> None:
        from tmstate.link.harness import HarnessProcess

        self.harness = HarnessProcess(**self.harness_options).start()

    def make_env(self) -> gym.Env:
        from tmstate.env.env import TMNFEnv, make_config

        if self.harness is None or not self.harness.alive:
            self._start()
        options = {**self.env_config.backend_options, "port": self.harness.port}
        config = make_config(self.env_config, backend="tminterface", backend_options=options)
        return TMNFEnv(config, line=self.line)

    def recover(self) -> None:
        if self.harness is not None:
            self.harness.kill()
        self._start()

    def game_alive(self) -> bool | None:
        return self.harness is not None and self.harness.alive

    def close(self) -> None:
        if self.harness is not None:
            self.harness.stop()

    def describe(self) -> str:
        return f"harness port {self.harness.port if self.harness else '-'}"


def harness_line() -> Any:
    """A reference line along the harness's race: straight ahead (+z) from its default start
    (100, 10, 200), 20 m past its finish plane at 150 m (plugins/harness/src/race.hpp)."""
    from tmstate.core.reference import ReferenceLine

    points = np.array([[100.0, 10.0, 200.0], [100.0, 10.0, 370.0]])
    return ReferenceLine.from_points(points, spacing_m=0.5)


class LaunchedInstance(GameInstance):
    """Instance ``index`` of a :class:`tmstate.ops.launch.Launcher`: TMNF under Wine. Recovery
    stops whatever is left of that game and launches it again on the same port."""

    def __init__(self, launcher: Any, index: int, env_config: Any) -> None:
        self.launcher = launcher
        self.index = index
        self.env_config = env_config

    @property
    def port(self) -> int:
        return self.launcher.plans[self.index].port

    def make_env(self) -> gym.Env:
        from tmstate.env.env import TMNFEnv, make_config

        options = {**self.env_config.backend_options, "port": self.port}
        return TMNFEnv(make_config(self.env_config, backend="tminterface", backend_options=options))

    def recover(self) -> None:
        self.launcher.restart(self.index)

    def game_alive(self) -> bool | None:
        instance = self.launcher.instances.get(self.index)
        return instance is not None and instance.alive()

    def describe(self) -> str:
        return f"TMNF instance {self.index} port {self.port}"


# --- the vector env ----------------------------------------------------------------------


@dataclass
class VectorConfig:
    """How the vector env steps, resets and recovers."""

    autoreset_mode: str = "next_step"
    """"next_step" (Gymnasium's default) or "same_step" (what stable-baselines3 expects)."""
    restart_attempts: int = 3
    """Restarts tried in a row for one lost game before GameLostError."""
    restart_delay_s: float = 1.0
    """Wait between two failed restart attempts (doubles each time)."""
    parallel: bool | None = None
    """Step sub-envs from threads; None = when any instance's game runs in another process."""

    def __post_init__(self) -> None:
        if self.autoreset_mode not in ("next_step", "same_step"):
            raise ConfigError(
                f"autoreset_mode must be 'next_step' or 'same_step', got {self.autoreset_mode!r}"
            )
        if self.restart_attempts < 1 or self.restart_delay_s < 0:
            raise ConfigError(
                f"restart_attempts must be >= 1 and restart_delay_s >= 0, got "
                f"{self.restart_attempts} and {self.restart_delay_s}"
            )

    @property
    def mode(self) -> AutoresetMode:
        return AutoresetMode.NEXT_STEP if self.autoreset_mode == "next_step" else AutoresetMode.SAME_STEP


StepResult = tuple[Any, float, bool, bool, dict]


class TMNFVectorEnv(VectorEnv):
    """N sub-envs over N game instances, stepped in parallel, with autoreset and recovery.

    ``instances[i]`` is the game behind sub-env ``i``. ``restarts[i]`` counts the
    restarts of instance ``i`` so far.
    """

    def __init__(
        self,
        instances: Sequence[GameInstance],
        config: VectorConfig | None = None,
        on_close: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.closed = True  # until the instances exist: nothing to close before that
        self._on_close = list(on_close)
        if not instances:
            raise ConfigError("a vector env needs at least one game instance")
        self.config = config or VectorConfig()
        self.instances = list(instances)
        self.num_envs = len(self.instances)
        self.autoreset_mode = self.config.mode
        self.metadata = {"autoreset_mode": self.autoreset_mode}
        parallel = self.config.parallel
        if parallel is None:
            parallel = self.num_envs > 1 and any(i.io_bound for i in self.instances)
        self._pool = (
            ThreadPoolExecutor(max_workers=self.num_envs, thread_name_prefix="tmstate-vector")
            if parallel
            else None
        )
        self.envs: list[gym.Env | None] = [None] * self.num_envs
        self.restarts = [0] * self.num_envs

        def build(i: int) -> None:
            self.envs[i] = self.instances[i].make_env()

        self.closed = False
        try:
            self._map(build, range(self.num_envs))
        except BaseException:
            self.close()
            raise
        first = self._env(0)
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        for i in range(self.num_envs):
            env = self._env(i)
            if env.observation_space != first.observation_space or env.action_space != first.action_space:
                self.close()
                raise ConfigError(
                    f"sub-env {i} ({self.instances[i].describe()}) has other spaces than sub-env 0: "
                    f"{env.observation_space} / {env.action_space} vs {first.observation_space} / "
                    f"{first.action_space} — give every instance the same observation and action settings"
                )
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._observations = create_empty_array(self.single_observation_space, n=self.num_envs, fn=np.zeros)
        self._last_obs: list[Any] = [None] * self.num_envs
        self._pending_reset: list[tuple[Any, dict] | None] = [None] * self.num_envs
        self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)

    # -- running work on every sub-env ------------------------------------------------

    def _map(self, fn: Callable[[int], Any], indices: Sequence[int] | range) -> list[Any]:
        """``fn(i)`` for every index, in parallel threads when enabled; the first error is raised."""
        if self._pool is None:
            return [fn(i) for i in indices]
        futures = [self._pool.submit(fn, i) for i in indices]
        results = []
        error: BaseException | None = None
        for future in futures:  # wait for all, so no thread still touches a sub-env after we raise
            try:
                results.append(future.result())
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                error = error or exc
                results.append(None)
        if error is not None:
            raise error
        return results

    def _env(self, i: int) -> gym.Env:
        env = self.envs[i]
        if env is None:
            raise GameLostError(f"sub-env {i} has no game (a previous restart failed) — make a new vector env")
        return env

    # -- reset --------------------------------------------------------------------------

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None) -> tuple[Any, dict]:
        """Reset every sub-env (``seed + i`` for sub-env i when ``seed`` is an int)."""
        if seed is None or isinstance(seed, int):
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ConfigError(f"expected {self.num_envs} seeds, got {len(seeds)}")
        results = self._map(lambda i: self._reset_one(i, seeds[i], options), range(self.num_envs))
        infos: dict = {}
        for i, (obs, info) in enumerate(results):
            self._last_obs[i] = obs
            infos = self._add_info(infos, info, i)
        self._autoreset[:] = False
        self._observations = concatenate(
            self.single_observation_space, [obs for obs, _ in results], self._observations
        )
        return self._copy_obs(), infos

    def _reset_one(self, i: int, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        """Reset sub-env ``i``; a lost game is restarted (bounded) and the new one reset."""
        pending = self._pending_reset[i]
        if pending is not None and seed is None and options is None:
            self._pending_reset[i] = None
            return pending
        self._pending_reset[i] = None
        try:
            return self._env(i).reset(seed=seed, options=options)
        except BaseException as exc:
            if not is_game_lost(exc):
                raise
            obs, info = self._recover(i, exc, seed=seed, options=options)
            return obs, {**info, **lost_info(exc)}

    # -- step ---------------------------------------------------------------------------

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Step every sub-env with its action; see the module docs for autoreset and recovery."""
        results = self.step_list(actions)
        infos: dict = {}
        observations = []
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminations = np.zeros(self.num_envs, dtype=np.bool_)
        truncations = np.zeros(self.num_envs, dtype=np.bool_)
        for i, (obs, reward, terminated, truncated, info) in enumerate(results):
            observations.append(obs)
            rewards[i], terminations[i], truncations[i] = reward, terminated, truncated
            infos = self._add_info(infos, info, i)
        self._observations = concatenate(self.single_observation_space, observations, self._observations)
        return self._copy_obs(), rewards, terminations, truncations, infos

    def step_list(self, actions: Any) -> list[StepResult]:
        """Like :meth:`step`, but one ``(obs, reward, terminated, truncated, info)`` per sub-env."""
        if self.closed:
            raise TmstateError("step() on a closed vector env — make a new one")
        per_env = list(iterate(self.action_space, actions))
        if len(per_env) != self.num_envs:
            raise ConfigError(f"expected {self.num_envs} actions, got {len(per_env)}")
        results: list[StepResult] = self._map(lambda i: self._step_one(i, per_env[i]), range(self.num_envs))
        for i, (obs, _, terminated, truncated, _) in enumerate(results):
            self._last_obs[i] = obs
            self._autoreset[i] = terminated or truncated
        return results

    def _step_one(self, i: int, action: Any) -> StepResult:
        if self.autoreset_mode == AutoresetMode.NEXT_STEP and self._autoreset[i]:
            obs, info = self._reset_one(i)
            return obs, 0.0, False, False, info
        try:
            obs, reward, terminated, truncated, info = self._env(i).step(action)
        except BaseException as exc:
            if not is_game_lost(exc):
                raise
            return self._lost_during_step(i, exc)
        if self.autoreset_mode == AutoresetMode.SAME_STEP and (terminated or truncated):
            new_obs, new_info = self._reset_one(i)
            info = {**new_info, "final_obs": obs, "final_info": info}
            obs = new_obs
        return obs, float(reward), bool(terminated), bool(truncated), info

    def _lost_during_step(self, i: int, exc: BaseException) -> StepResult:
        """End sub-env ``i``'s episode truncated, restart its game, keep the reset for later."""
        last = self._last_obs[i]
        lost = lost_info(exc)
        log.warning("sub-env %d (%s): game lost (%s); restarting it", i, self.instances[i].describe(), exc)
        new_obs, new_info = self._recover(i, exc)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            info = {**new_info, **lost, "final_obs": last, "final_info": dict(lost)}
            return new_obs, 0.0, False, True, info
        self._pending_reset[i] = (new_obs, new_info)
        return last, 0.0, False, True, lost

    # -- recovery -----------------------------------------------------------------------

    def _recover(self, i: int, exc: BaseException, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        """Close sub-env ``i``, bring its game back, build and reset a new sub-env (bounded tries).

        A dropped connection to a game whose process still runs is first just reconnected
        (a fresh sub-env on the same game); a dead or hung game is restarted.
        """
        instance = self.instances[i]
        self._close_env(i, "game_lost")
        reconnect_first = isinstance(exc, DisconnectedError) and instance.game_alive() is True
        last_error: BaseException = exc
        delay = self.config.restart_delay_s
        for attempt in range(1, self.config.restart_attempts + 1):
            try:
                if not (attempt == 1 and reconnect_first):
                    instance.recover()
                    self.restarts[i] += 1
                self.envs[i] = instance.make_env()
                return self._env(i).reset(seed=seed, options=options)
            except BaseException as error:
                if not (is_game_lost(error) or isinstance(error, GameLostError)):
                    raise
                last_error = error
                log.warning("sub-env %d: recovery %d of %d failed: %s", i, attempt, self.config.restart_attempts, error)
                self._close_env(i)
                if attempt < self.config.restart_attempts:
                    time.sleep(delay)
                    delay *= 2
        raise GameLostError(
            f"game instance {i} ({instance.describe()}) was lost ({type(exc).__name__}: {exc}) and did not come "
            f"back after {self.config.restart_attempts} attempt(s); last error: {type(last_error).__name__}: "
            f"{last_error} — check that game (its log, the plugin) before training on"
        ) from last_error

    def _close_env(self, i: int, cut_reason: str = "") -> None:
        """Close sub-env ``i``; with ``cut_reason`` its open episode log records why it ended."""
        env, self.envs[i] = self.envs[i], None
        if env is None:
            return
        # The game is already gone: both steps are best effort, and the close always runs.
        abort = getattr(env.unwrapped, "abort_episode", None)
        if cut_reason and abort is not None:
            try:
                abort(cut_reason)
            except Exception as error:  # noqa: BLE001
                log.debug("sub-env %d: writing the cut episode's log failed: %s", i, error)
        try:
            env.close()
        except Exception as error:  # noqa: BLE001
            log.debug("sub-env %d: close after loss failed: %s", i, error)

    # -- the rest of the VectorEnv contract ---------------------------------------------

    def _copy_obs(self) -> Any:
        return deepcopy(self._observations)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call method ``name`` (or read attribute ``name``) on every sub-env."""
        results = []
        for i in range(self.num_envs):
            target = self._env(i).get_wrapper_attr(name)
            results.append(target(*args, **kwargs) if callable(target) else target)
        return tuple(results)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        return tuple(self._env(i).get_wrapper_attr(name) for i in range(self.num_envs))

    def set_attr(self, name: str, values: Any) -> None:
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ConfigError(f"expected {self.num_envs} values for {name!r}, got {len(values)}")
        for i, value in enumerate(values):
            self._env(i).set_wrapper_attr(name, value)

    def close_extras(self, **kwargs: Any) -> None:
        """Close every sub-env, then every game instance, then the threads."""
        for i in range(self.num_envs):
            self._close_env(i)
        for instance in self.instances:
            try:
                instance.close()
            except Exception as error:  # noqa: BLE001 - keep closing the others
                log.warning("closing %s failed: %s", instance.describe(), error)
        for finalizer in self._on_close:
            try:
                finalizer()
            except Exception as error:  # noqa: BLE001 - keep closing
                log.warning("closing the vector env: %s", error)
        self._on_close.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def close(self, **kwargs: Any) -> None:
        if self.closed:
            return
        self.close_extras(**kwargs)
        self.closed = True

    def __del__(self) -> None:
        if not getattr(self, "closed", True):
            self.close()

    def __repr__(self) -> str:
        return f"TMNFVectorEnv({self.num_envs} x {self.instances[0].describe()}, {self.autoreset_mode.value})"


# --- building one from settings -------------------------------------------------------


BACKENDS = ("sim", "harness", "tminterface")


def make_vector_env(
    num_envs: int,
    config: Any = None,
    *,
    backend: str | None = None,
    maps: Sequence[str] | None = None,
    vector: VectorConfig | None = None,
    harness_options: dict | None = None,
    launch: Any = None,
    **overrides: Any,
) -> TMNFVectorEnv:
    """A :class:`TMNFVectorEnv` of ``num_envs`` sub-envs made from one env configuration.

    ``config`` / ``overrides``: an :class:`~tmstate.env.env.EnvConfig` (or dict) and field
    overrides, as for ``TMNFEnv``. ``backend``: ``"sim"`` (embedded simulator, not TMNF
    physics), ``"harness"`` (one plugin-harness process per sub-env, for tests and
    benchmarks) or ``"tminterface"`` (TMNF instances on ports ``base_port + i``).
    ``maps``: spread over the sub-envs round-robin (sub-env i drives ``maps[i % len]``).
    With ``log_dir`` set, sub-env i logs to ``log_dir/env<i>``.

    For ``"tminterface"``, ``launch`` is a :class:`tmstate.ops.launch.LaunchConfig` (or the
    path of its TOML file, or None for the default/environment settings). If that config's
    pid file exists, the games started by ``tmstate launch`` are used and restarted on
    loss; otherwise the vector env starts them itself and stops them on close.
    """
    from tmstate.env.env import make_config

    base = make_config(config, **overrides)
    backend = backend or ("tminterface" if base.backend == "tminterface" else "sim")
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if num_envs < 1:
        raise ConfigError(f"num_envs must be at least 1, got {num_envs}")
    vector = vector or VectorConfig()
    threaded = backend != "sim" and (vector.parallel if vector.parallel is not None else num_envs > 1)
    if threaded and "spin_us" not in base.backend_options:
        # Threads that poll their sockets would fight over the GIL: let each receive sleep.
        base = make_config(base, backend_options={**base.backend_options, "spin_us": 0.0})
    maps = list(maps) if maps else [base.map]
    configs = []
    for i in range(num_envs):
        changes: dict[str, Any] = {"map": maps[i % len(maps)]}
        if base.log_dir:
            changes["log_dir"] = str(Path(base.log_dir) / f"env{i}")
        if backend == "sim":
            changes["backend"] = "sim"
            if "seed" not in base.backend_options:
                changes["backend_options"] = {**base.backend_options, "seed": i}
        configs.append(make_config(base, **changes))
    on_close: list[Callable[[], None]] = []
    if backend == "sim":
        instances: list[GameInstance] = [SimInstance(c) for c in configs]
    elif backend == "harness":
        instances = [HarnessInstance(c, harness_options) for c in configs]
    else:
        launcher, owned = _launcher_for(num_envs, launch)
        if owned:
            on_close.append(launcher.stop_all)
        instances = [LaunchedInstance(launcher, i, c) for i, c in enumerate(configs)]
    try:
        return TMNFVectorEnv(instances, vector, on_close=on_close)
    except BaseException:
        for instance in instances:
            instance.close()
        for finalizer in on_close:
            finalizer()
        raise


def _launcher_for(num_envs: int, launch: Any) -> tuple[Any, bool]:
    """The launcher of the TMNF instances: adopted from ``tmstate launch``'s pid file, or a
    new one whose games are started now (then owned: stopped when the vector env closes)."""
    from tmstate.ops.launch import LaunchConfig, Launcher, load_config

    config = launch if isinstance(launch, LaunchConfig) else load_config(launch)
    if config.pid_file.exists():
        launcher = Launcher.adopt(config)
        if len(launcher.plans) < num_envs:
            raise ConfigError(
                f"{config.pid_file} lists {len(launcher.plans)} running instance(s), {num_envs} asked — "
                f"`tmstate launch --stop`, then `tmstate launch -n {num_envs}`"
            )
        return launcher, False
    launcher = Launcher(config, num_envs)
    launcher.check_ready_to_start()
    launcher.start_all()
    return launcher, True


# --- stable-baselines3 -------------------------------------------------------------------


def to_sb3(vector_env: TMNFVectorEnv) -> Any:
    """``vector_env`` as a stable-baselines3 ``VecEnv`` (switched to same-step autoreset).

    SB3 resets a sub-env inside the step that ended its episode and expects the last
    observation in ``info["terminal_observation"]``; a lost game's episode ends with
    ``info["game_lost"]`` and ``TimeLimit.truncated`` set, so SB3 bootstraps its value.
    """
    return _sb3_class()(vector_env)


def _sb3_class() -> type:
    """Build the adapter class on first use: stable-baselines3 is an optional dependency."""
    global _SB3VecEnv
    if _SB3VecEnv is not None:
        return _SB3VecEnv
    from stable_baselines3.common.vec_env import VecEnv

    class SB3VecEnv(VecEnv):
        """A :class:`TMNFVectorEnv` behind stable-baselines3's ``VecEnv`` contract."""

        def __init__(self, vector_env: TMNFVectorEnv) -> None:
            vector_env.autoreset_mode = AutoresetMode.SAME_STEP
            vector_env.metadata = {**vector_env.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
            vector_env._autoreset[:] = False
            self.vector_env = vector_env
            super().__init__(vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space)
            self._actions: Any = None

        def reset(self) -> Any:
            seeds, options = self._seeds, self._options
            results = self.vector_env._map(
                lambda i: self.vector_env._reset_one(i, seeds[i], options[i] or None), range(self.num_envs)
            )
            self._reset_seeds()
            self._reset_options()
            self.reset_infos = [info for _, info in results]
            for i, (obs, _) in enumerate(results):
                self.vector_env._last_obs[i] = obs
            return self._stack([obs for obs, _ in results])

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = actions

        def step_wait(self) -> Any:
            results = self.vector_env.step_list(self._actions)
            rewards = np.zeros(self.num_envs, dtype=np.float32)
            dones = np.zeros(self.num_envs, dtype=np.bool_)
            infos = []
            observations = []
            for i, (obs, reward, terminated, truncated, info) in enumerate(results):
                rewards[i] = reward
                dones[i] = terminated or truncated
                info = dict(info)
                info["TimeLimit.truncated"] = bool(truncated and not terminated)
                if dones[i]:
                    info["terminal_observation"] = info.pop("final_obs")
                    self.reset_infos[i] = {k: v for k, v in info.items() if k != "final_info"}
                observations.append(obs)
                infos.append(info)
            return self._stack(observations), rewards, dones, infos

        def _stack(self, observations: list[Any]) -> Any:
            space = self.vector_env.single_observation_space
            if isinstance(space, gym.spaces.Dict):
                return {key: np.stack([obs[key] for obs in observations]) for key in space.spaces}
            return np.stack(observations)

        def close(self) -> None:
            self.vector_env.close()

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [self.vector_env._env(i).get_wrapper_attr(attr_name) for i in self._get_indices(indices)]

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            for i in self._get_indices(indices):
                setattr(self.vector_env._env(i), attr_name, value)

        def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
            return [
                self.vector_env._env(i).get_wrapper_attr(method_name)(*method_args, **method_kwargs)
                for i in self._get_indices(indices)
            ]

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            from stable_baselines3.common import env_util

            return [env_util.is_wrapped(self.vector_env._env(i), wrapper_class) for i in self._get_indices(indices)]

        def get_images(self) -> list[Any]:
            return [self.vector_env._env(i).render() for i in range(self.num_envs)]

    _SB3VecEnv = SB3VecEnv
    return SB3VecEnv


_SB3VecEnv: type | None = None

"""Many game instances as one Gymnasium ``VectorEnv``, surviving crashed and hung games.

The package: ``instances`` (the games behind the sub-envs), ``env`` (this vector env),
``make`` (:func:`~tmstate.vector.make.make_vector_env`), ``sb3`` (the stable-baselines3 adapter).

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
``info["final_obs"]``). :func:`tmstate.vector.sb3.to_sb3` wraps the vector env as a stable-baselines3
``VecEnv`` (same-step autoreset, ``terminal_observation`` and ``TimeLimit.truncated`` in
the per-env infos, as SB3's own ``DummyVecEnv`` gives them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array, iterate

from tmstate.errors import (
    ConfigError,
    DisconnectedError,
    GameLostError,
    TmstateError,
)
from tmstate.vector.instances import NOT_GAME_LOST, GameInstance, is_game_lost, lost_info


log = logging.getLogger(__name__)


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
    restarts of instance ``i`` so far. The env owns the instances and the ``on_close``
    finalizers from the start: if making it fails, it has closed them already.
    """

    def __init__(
        self,
        instances: Sequence[GameInstance],
        config: VectorConfig | None = None,
        on_close: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.closed = True  # until the sub-envs exist (close_extras cleans up before that)
        self._on_close = list(on_close)
        self.instances = list(instances)
        self.num_envs = len(self.instances)
        self._pool: ThreadPoolExecutor | None = None
        self.envs: list[gym.Env | None] = [None] * self.num_envs
        if not instances:
            self.close_extras()
            raise ConfigError("a vector env needs at least one game instance")
        self.config = config or VectorConfig()
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
            self.single_observation_space, [obs for obs, _ in results], self._observations  # type: ignore[arg-type]
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
        self._observations = concatenate(self.single_observation_space, observations,
                                         self._observations)  # type: ignore[arg-type]
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
            except Exception as error:  # noqa: BLE001 - any failure to bring it back is a failed attempt
                if isinstance(error, NOT_GAME_LOST):
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
        """Every sub-env's game (``2 x sim sim_easy`` when they are all alike)."""
        names = [instance.describe() for instance in self.instances]
        games = f"{len(names)} x {names[0]}" if len(set(names)) == 1 else ", ".join(names)
        return f"TMNFVectorEnv({games}, {self.autoreset_mode.value})"

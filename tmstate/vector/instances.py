"""The games behind a vector env's sub-envs: how each is made, lost, told and restarted.

A :class:`GameInstance` builds the sub-env for one game (the simulator, the plugin harness,
a TMNF instance of :mod:`tmstate.ops.launch`, or any function), says whether its game is
still alive, and restarts it; :func:`is_game_lost` tells a lost game's errors from bugs.
Used by :class:`tmstate.vector.env.TMNFVectorEnv` (recovery rules in its module doc).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from tmstate.errors import (  # noqa: F401 - the one rule (tmstate.errors), used here and by the env
    GAME_LOST_ERRORS,
    NOT_GAME_LOST,
    GameLostError,
    is_game_lost,
)


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

        options = {**self.env_config.backend_options, "port": self.port, "token": self.launcher.token(self.index)}
        overrides: dict[str, Any] = {}
        if self.env_config.observation.frame_source == "x11":
            # Frames from this game's window: matched by its game process, which a restart
            # replaces, on its own display when each game has one (xvfb = true).
            window: dict[str, Any] = {}
            pid = self.launcher.game_pid(self.index)
            if pid is not None:
                window["window_pid"] = pid
            display = self.launcher.plans[self.index].display
            if display:
                window["window_display"] = display
            if window:
                overrides["observation"] = window
        return TMNFEnv(make_config(self.env_config, backend="tminterface", backend_options=options, **overrides))

    def recover(self) -> None:
        self.launcher.restart(self.index)

    def game_alive(self) -> bool | None:
        instance = self.launcher.instances.get(self.index)
        return instance is not None and instance.alive()

    def describe(self) -> str:
        return f"TMNF instance {self.index} port {self.port}"


class PortInstance(GameInstance):
    """A game already running on ``port`` (started by hand or by another tool). It is not
    this process's to restart: recovery waits up to ``wait_s`` for a plugin to answer on the
    port again (a game restarted by whoever runs it), then the sub-env reconnects. ``line``:
    the reference line, if not the one of the env's map (the harness's race: :func:`harness_line`)."""

    def __init__(self, port: int, env_config: Any, wait_s: float = 60.0, line: Any = None) -> None:
        self.port = int(port)
        self.env_config = env_config
        self.wait_s = float(wait_s)
        self.line = line

    def make_env(self) -> gym.Env:
        from tmstate.env.env import TMNFEnv, make_config

        options = {**self.env_config.backend_options, "port": self.port}
        return TMNFEnv(make_config(self.env_config, backend="tminterface", backend_options=options), line=self.line)

    def recover(self) -> None:
        from tmstate.ops.launch import default_probe

        deadline = time.monotonic() + self.wait_s
        while time.monotonic() < deadline:
            if default_probe(self.port, 1.0, self.env_config.backend_options.get("token", "")):
                return
            time.sleep(0.5)
        raise GameLostError(f"no game answered on port {self.port} within {self.wait_s:g} s; "
                            "restart it there (or train with a launch config, whose games are restarted for you)")

    def describe(self) -> str:
        return f"game on port {self.port}"

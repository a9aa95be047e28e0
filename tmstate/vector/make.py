"""``make_vector_env``: a :class:`~tmstate.vector.env.TMNFVectorEnv` from settings.

One call builds the N game instances (simulator, plugin harness, or TMNF instances started
or adopted through :mod:`tmstate.ops.launch`) and the vector env over them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


from tmstate.errors import (
    ConfigError,
)
from tmstate.vector.env import TMNFVectorEnv, VectorConfig
from tmstate.vector.instances import GameInstance, HarnessInstance, LaunchedInstance, PortInstance, SimInstance



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
    ports: Sequence[int] | None = None,
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
    ``ports`` (``"tminterface"``, one per sub-env): connect to the games on these ports
    instead. Those the pid file lists are restarted through its launcher on loss; the others
    are :class:`~tmstate.vector.instances.PortInstance` s (recovery waits for the game to answer again).
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
    elif ports is not None:
        instances = _port_instances(list(ports), configs, launch)
    else:
        launcher, owned = _launcher_for(num_envs, launch)
        if owned:
            on_close.append(launcher.stop_all)
        instances = [LaunchedInstance(launcher, i, c) for i, c in enumerate(configs)]
    return TMNFVectorEnv(instances, vector, on_close=on_close)  # it closes them if it fails


def _port_instances(ports: list[int], configs: list[Any], launch: Any) -> list[GameInstance]:
    """One instance per port: through ``tmstate launch``'s launcher when its pid file lists
    the port (so a lost game is restarted), else a :class:`~tmstate.vector.instances.PortInstance`."""
    from tmstate.config import check_port
    from tmstate.ops.launch import LaunchConfig, Launcher, load_config

    if len(ports) != len(configs):
        raise ConfigError(f"{len(ports)} port(s) given for {len(configs)} sub-env(s); give one port per sub-env")
    ports = [check_port(p) for p in ports]
    if len(set(ports)) != len(ports):
        raise ConfigError(f"the ports repeat ({', '.join(map(str, ports))}): one game per sub-env")
    config = launch if isinstance(launch, LaunchConfig) else load_config(launch)
    launcher = Launcher.adopt(config) if config.pid_file.exists() else None
    known = launcher.ports if launcher is not None else []
    return [LaunchedInstance(launcher, known.index(port), c) if port in known else PortInstance(port, c)
            for port, c in zip(ports, configs)]


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

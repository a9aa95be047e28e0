"""Start, watch and stop TMNF instances under Wine, each with the tmstate plugin on its own port.

One instance is one ``wine TMLoader.exe run TmForever "<profile>"
/configstring="set tmstate_listen <bind>:<port>"`` process tree (TMLoader starts the game with
TMInterface 2 from a TMLoader profile), optionally on its own Xvfb display. Instance ``i``
listens on ``base_port + i``. The launcher waits until every plugin answers the protocol
handshake, writes a pid file, and ``tmstate launch --stop`` ends exactly the processes it
started.

How the processes are found again: TMLoader may exit after starting the game and Wine
starts Windows processes as its own children, so the pid of ``wine`` alone is not enough.
Every process of an instance carries the environment variable ``TMSTATE_INSTANCE=<id>``
(inherited by all its descendants); stopping an instance signals exactly the processes
that carry its id, never processes found by name.

The prefix's shared processes: the first Wine program of a prefix starts ``wineserver``
and Wine's services (``services.exe``, ``explorer.exe /desktop``, ``winedevice.exe``,
``plugplay.exe``, ``svchost.exe``, ``rpcss.exe``), and they inherit *its* environment —
measured under Wine 8: with the game as first program they all carry instance 0's id,
so stopping instance 0 would end the wineserver under every other instance. So before
the first game the launcher starts the prefix itself (``wineserver -p``, then ``wine
wineboot``, which also creates a missing prefix) under an id of its own
(``<run id>.prefix``): games then carry only their own id, restarting one game leaves
the prefix up, and stopping everything ends the prefix's processes last, wineserver
included. A wineserver that already ran for the prefix is not ours and is left alone.

Configuration: a :class:`LaunchConfig` from a TOML file (``--config``, or the path in
``TMSTATE_LAUNCH_CONFIG``), then any ``TMSTATE_<FIELD>`` environment variable on top
(``TMSTATE_TMLOADER``, ``TMSTATE_WINE_PREFIX``, ``TMSTATE_BASE_PORT``, ``TMSTATE_XVFB`` ...).
Set-up steps and pitfalls: docs/wine.md.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tmstate.config import MAX_PORT, check_port, from_dict, read_toml
from tmstate.errors import ConfigError, GameLostError, TmstateError
from tmstate.files import atomic_write_bytes, atomic_write_text
from tmstate.link.protocol import DEFAULT_PORT

ENV_PREFIX = "TMSTATE_"
MARKER_VARIABLE = "TMSTATE_INSTANCE"
CONFIG_VARIABLE = "TMSTATE_LAUNCH_CONFIG"
PID_FILE_VERSION = 1


@dataclass
class LaunchConfig:
    """Where the game is and how to start it. Every field can be overridden by ``TMSTATE_<FIELD>``."""

    wine: str = "wine"
    """The wine executable (a name on PATH or a path)."""
    wine_prefix: str = ""
    """WINEPREFIX for the game; empty = inherit WINEPREFIX or wine's default ``~/.wine``."""
    tmloader: str = ""
    """Path of TMLoader.exe (a Linux path inside or outside the prefix)."""
    profile: str = "default"
    """TMLoader profile whose mods include TMInterface 2."""
    game: str = "TmForever"
    """The game name TMLoader knows (``run <game> <profile>``)."""
    base_port: int = DEFAULT_PORT
    """Instance i listens on base_port + i."""
    bind: str = "127.0.0.1"
    """The address each plugin listens on. The configstring always sets address and port
    together (``tmstate_listen``), so nothing kept from an earlier session applies."""
    plugin: str = ""
    """If set: a plugin file copied into the prefix's Documents/TMInterface/Plugins/ before launch."""
    xvfb: bool = False
    """Run each instance on its own virtual X display (Xvfb)."""
    xvfb_executable: str = "Xvfb"
    display_base: int = 90
    """Instance i gets display ``:display_base + i`` when xvfb is on."""
    xvfb_screen: str = "800x600x24"
    handshake_timeout_s: float = 180.0
    """How long to wait for a plugin to answer after its game was started."""
    stop_grace_s: float = 5.0
    """After SIGTERM, how long to wait before SIGKILL."""
    run_dir: str = "out/launch"
    """Folder for the pid file and one log per instance."""
    wine_debug: str = "-all"
    """WINEDEBUG for the game ("-all" keeps the logs small)."""
    start_prefix: bool = True
    """Start the prefix (``wineserver -p`` + ``wine wineboot``) under the launcher's own id before
    the first game, and end it after the last (see the module notes). False: leave the prefix to
    whatever starts it (the first game's Wine then starts the shared processes, which carry that
    game's id: stopping or restarting that game ends the wineserver under every other game)."""
    wineserver: str = ""
    """The wineserver executable; empty = the one next to ``wine``, else ``wineserver`` on PATH."""
    extra_env: dict[str, str] = field(default_factory=dict)
    """More environment variables for the game (e.g. DXVK_HUD, WINEFSYNC)."""
    auth: bool = True
    """Give every instance its own random token (docs/protocol.md, "Authentication"): its
    plugin then serves only clients holding it, not any local process. false = open."""

    def __post_init__(self) -> None:
        check_port(self.base_port, "launch base_port")
        if self.display_base < 0:
            raise ConfigError(f"launch display_base must be a display number >= 0, got {self.display_base}")
        if self.handshake_timeout_s <= 0 or self.stop_grace_s < 0:
            raise ConfigError(
                f"handshake_timeout_s must be > 0 and stop_grace_s >= 0, got "
                f"{self.handshake_timeout_s} and {self.stop_grace_s}"
            )
        if not self.bind or any(c.isspace() or c in ':;"' for c in self.bind):
            raise ConfigError(f"bind must be one IPv4 address or host name, got {self.bind!r}")

    @property
    def pid_file(self) -> Path:
        return Path(self.run_dir) / "instances.json"


def _parse_env_value(name: str, kind: type, text: str) -> object:
    """Convert an environment variable's text to the type of the config field it sets."""
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(text)
        if kind is dict:
            # KEY=VALUE pairs separated by spaces, as a shell would write them.
            return dict(item.split("=", 1) for item in shlex.split(text))
        return kind(text)
    except ValueError:
        raise ConfigError(
            f"environment variable {ENV_PREFIX}{name.upper()}={text!r} is not a valid {kind.__name__}"
        ) from None


def apply_environment(config: LaunchConfig, environ: Mapping[str, str]) -> LaunchConfig:
    """``config`` with every ``TMSTATE_<FIELD>`` variable of ``environ`` applied on top."""
    changes: dict[str, Any] = {}  # each parsed to its field's type
    for f in dataclasses.fields(config):
        text = environ.get(f"{ENV_PREFIX}{f.name.upper()}")
        if text is None:
            continue
        kind = type(getattr(config, f.name))
        changes[f.name] = _parse_env_value(f.name, kind, text)
    return dataclasses.replace(config, **changes) if changes else config


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> LaunchConfig:
    """The launch configuration: defaults, then the TOML file, then ``TMSTATE_*`` variables.

    The TOML file may hold the fields at top level or in a ``[launch]`` table.
    """
    environ = os.environ if environ is None else environ
    path = path or environ.get(CONFIG_VARIABLE) or None
    config = LaunchConfig()
    if path is not None:
        path = Path(path)
        data = read_toml(path, "launch config")
        where = f"{path}[launch]" if "launch" in data else str(path)
        config = from_dict(LaunchConfig, data.get("launch", data), where=where)
    return apply_environment(config, environ)


# --- the plan: exact commands, no side effects -------------------------------------------


@dataclass(frozen=True)
class InstancePlan:
    """Everything needed to start instance ``index``: its port, display and commands."""

    index: int
    port: int
    command: tuple[str, ...]
    env: dict[str, str]
    """Variables set on top of the inherited environment."""
    display: str | None
    xvfb_command: tuple[str, ...] | None
    log_path: Path
    game_image: str = "TmForever.exe"
    """File name of the game's executable: the process whose window is the game's."""

    def shell_lines(self) -> list[str]:
        """The commands as a person would type them in a shell (what ``--dry-run`` prints)."""
        lines = []
        if self.xvfb_command:
            lines.append(shlex.join(self.xvfb_command) + " &")
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        lines.append(f"{assignments} {shlex.join(self.command)}".strip())
        return lines


def configstring(config: LaunchConfig, port: int) -> str:
    """The TMInterface console commands run at start-up: the plugin's address and port (always
    both, in one variable: TMInterface keeps variables between sessions in builtin.txt and the
    plugin resets its own at start, so only this decides where it listens) and, with ``auth``,
    ``load`` of the owner-only script that sets its token (never the token itself)."""
    from tmstate.link.auth import configstring_commands

    return configstring_commands(config.bind, port, config.auth)


def plan_instances(config: LaunchConfig, count: int) -> list[InstancePlan]:
    """The exact commands for ``count`` instances (ports base_port .. base_port+count-1)."""
    if count < 1:
        raise ConfigError(f"--instances must be at least 1, got {count}")
    last_port = config.base_port + count - 1
    if last_port > MAX_PORT:
        raise ConfigError(f"ports {config.base_port}..{last_port} go past {MAX_PORT} — lower base_port")
    plans = []
    for index in range(count):
        port = config.base_port + index
        env = {"WINEDEBUG": config.wine_debug}
        if config.wine_prefix:
            env["WINEPREFIX"] = str(Path(config.wine_prefix).expanduser())
        display = None
        xvfb_command = None
        if config.xvfb:
            display = f":{config.display_base + index}"
            env["DISPLAY"] = display
            xvfb_command = (
                config.xvfb_executable, display, "-screen", "0", config.xvfb_screen, "-nolisten", "tcp",
            )
        env.update(config.extra_env)
        command = (
            config.wine,
            str(Path(config.tmloader).expanduser()) if config.tmloader else "TMLoader.exe",
            "run",
            config.game,
            config.profile,
            f"/configstring={configstring(config, port)}",
        )
        log_path = Path(config.run_dir) / f"instance_{index}.log"
        plans.append(InstancePlan(index, port, command, env, display, xvfb_command, log_path,
                                  game_image=f"{config.game}.exe"))
    return plans


def prefix_path(config: LaunchConfig, environ: Mapping[str, str] | None = None) -> Path:
    """The Wine prefix the game runs in (config, else WINEPREFIX, else ~/.wine)."""
    environ = os.environ if environ is None else environ
    text = config.wine_prefix or environ.get("WINEPREFIX") or "~/.wine"
    return Path(text).expanduser()


def wineserver_executable(config: LaunchConfig) -> str:
    """``wineserver`` as configured, else the one next to ``wine``, else the name on PATH."""
    if config.wineserver:
        return config.wineserver
    wine = shutil.which(config.wine)
    if wine is not None and (Path(wine).parent / "wineserver").is_file():
        return str(Path(wine).parent / "wineserver")
    return "wineserver"


def tminterface_folder(prefix: Path, user: str | None = None) -> Path:
    """TMInterface's own folder inside a Wine prefix (Wine maps Documents per Unix user)."""
    return prefix / "drive_c" / "users" / (user or getpass.getuser()) / "Documents" / "TMInterface"


def plugins_folder(prefix: Path, user: str | None = None) -> Path:
    """TMInterface's plugin folder inside a Wine prefix."""
    return tminterface_folder(prefix, user) / "Plugins"


def scripts_folder(prefix: Path, user: str | None = None) -> Path:
    """TMInterface's script folder (its ``script_folder`` default), where ``load`` looks."""
    return tminterface_folder(prefix, user) / "Scripts"


def install_plugin(source: str | Path, prefix: Path) -> Path:
    """Copy the plugin file into the prefix's Plugins folder (atomically); return its new path."""
    source = Path(source).expanduser()
    if not source.is_file():
        raise ConfigError(f"{source}: plugin file not found — set 'plugin' to plugins/tmstate.as")
    return atomic_write_bytes(plugins_folder(prefix) / source.name, source.read_bytes())


# --- processes ---------------------------------------------------------------------------


def pids_with_marker(marker: str) -> list[int]:
    """Pids of this user's processes whose environment holds ``TMSTATE_INSTANCE=<marker>``."""
    return pids_with_environment(MARKER_VARIABLE, marker)


def pids_with_environment(name: str, value: str) -> list[int]:
    """Pids of this user's live (non-zombie) processes whose environment holds ``name=value``.

    Read from /proc/<pid>/environ (Linux). Processes of other users are unreadable and
    skipped, so only processes we could have started are ever found.
    """
    needle = f"{name}={value}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                variables = fh.read().split(b"\0")
        except OSError:
            continue
        if needle in variables and not _is_zombie(int(entry.name)):
            found.append(int(entry.name))
    return found


def process_image(pid: int) -> str:
    """The file name a process runs, as ``ps`` shows it: for a Windows program under Wine the
    last part of its Windows path (Wine rewrites argv[0] to e.g. ``Z:\\games\\TmForever.exe``),
    else the last part of argv[0]. Empty when the process is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            first = fh.read().split(b"\0", 1)[0].decode("utf-8", "replace")
    except OSError:
        return ""
    return first.replace("\\", "/").rsplit("/", 1)[-1]


def game_pids(marker: str, image: str) -> list[int]:
    """Pids carrying ``marker`` that run the executable ``image`` (case-insensitive), e.g. the
    TmForever.exe that TMLoader started: the process whose pid is the window's _NET_WM_PID."""
    wanted = image.lower()
    return sorted(pid for pid in pids_with_marker(marker) if process_image(pid).lower() == wanted)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            # The state letter follows the ")" that ends the command name.
            return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


def signal_marked(marker: str, grace_s: float) -> int:
    """SIGTERM every process carrying ``marker``, SIGKILL what is left after ``grace_s``.

    Returns how many processes were signalled.
    """
    pids = pids_with_marker(marker)
    for pid in pids:
        _kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and pids_with_marker(marker):
        time.sleep(0.05)
    for pid in pids_with_marker(marker):
        _kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and pids_with_marker(marker):
        time.sleep(0.02)
    return len(pids)


def _kill(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    # A stopped process (SIGSTOP) does not act on SIGTERM until continued.
    if sig == signal.SIGTERM:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def default_probe(port: int, timeout_s: float, token: str = "") -> bool:
    """True when a plugin on 127.0.0.1:``port`` answers the protocol handshake within ``timeout_s``.

    The bridge's own handshake (:meth:`tmstate.link.bridge.Bridge.connect`: HELLO, the
    plugin's HELLO, BYE on close), one try: a plugin that listens but speaks another protocol
    version raises :class:`VersionMismatchError` instead of being waited for, and so does
    one that refuses ``token`` (:class:`AuthError`: another game holds the port).
    """
    from tmstate.errors import AuthError, BridgeError, ProtocolError, VersionMismatchError
    from tmstate.link.bridge import Bridge

    try:
        with Bridge(port=port, timeout_s=timeout_s, connect_retries=0, client_name="tmstate launch", token=token):
            return True
    except (VersionMismatchError, AuthError):
        raise
    except (BridgeError, ProtocolError, OSError):  # not listening, timed out, refused, an ERROR
        return False


@dataclass
class Instance:
    """A started instance: its plan, the id its processes carry, and its launcher process."""

    plan: InstancePlan
    marker: str
    process: subprocess.Popen | None = None
    xvfb_process: subprocess.Popen | None = None
    started_at: float = 0.0
    pid: int | None = None
    xvfb_pid: int | None = None
    ready_s: float | None = None
    """Seconds from the start of the game to its plugin's first handshake."""
    token: str = field(default="", repr=False)
    """The instance's auth token ("" with ``auth = false``); in the owner-only pid file."""

    @property
    def port(self) -> int:
        return self.plan.port

    def game_pid(self) -> int | None:
        """The game's own process (TMLoader's child, ``plan.game_image``): its pid is what Wine
        puts in the window's ``_NET_WM_PID``, not the pid of the launched ``wine TMLoader.exe``."""
        found = game_pids(self.marker + ".game", self.plan.game_image)
        return found[0] if found else None

    def alive(self) -> bool:
        """Some process of the game is still running (TMLoader itself may have exited)."""
        if self.process is not None and self.process.poll() is None:
            return True
        return bool(pids_with_marker(self.marker + ".game"))

    def record(self) -> dict:
        return {
            "index": self.plan.index,
            "port": self.plan.port,
            "marker": self.marker,
            "pid": self.process.pid if self.process else self.pid,
            "game_pid": self.game_pid(),
            "xvfb_pid": self.xvfb_process.pid if self.xvfb_process else self.xvfb_pid,
            "display": self.plan.display,
            "command": list(self.plan.command),
            "log": str(self.plan.log_path),
            "started_at": self.started_at,
            "ready_s": self.ready_s,
            "token": self.token,
        }


@dataclass
class PrefixRecord:
    """The Wine prefix's shared processes (wineserver, Wine's services) that the launcher started
    under its own id ``marker``; ``setup_s``: how long ``wineserver -p`` + ``wineboot`` took
    (creating the prefix when it was missing: ``created``)."""

    wine_prefix: str
    marker: str
    setup_s: float = 0.0
    created: bool = False
    display: str | None = None
    """With ``xvfb = true``: the prefix's own Xvfb display, where Wine's desktop process lives."""

    def alive(self) -> bool:
        return bool(pids_with_marker(self.marker))

    def record(self) -> dict:
        return dataclasses.asdict(self)


class Launcher:
    """Starts, watches, restarts and stops ``count`` game instances.

    ``probe(port, timeout_s, token) -> bool`` decides when an instance is ready; the default,
    :func:`default_probe`, does the protocol handshake (HELLO, the plugin's HELLO, BYE).
    With ``auth`` each instance gets a token (:meth:`token`), kept for its restarts.
    """

    def __init__(
        self,
        config: LaunchConfig,
        count: int,
        probe: Callable[[int, float, str], bool] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.plans = plan_instances(config, count)
        self.probe = probe or default_probe
        self.environ = dict(os.environ if environ is None else environ)
        self.run_id = uuid.uuid4().hex[:12]
        self.instances: dict[int, Instance] = {}
        self.prefix: PrefixRecord | None = None
        """The prefix processes this launcher started (None: not started, or not ours)."""
        self._prefix_xvfb: subprocess.Popen | None = None
        self._tokens: dict[int, str] = {}

    def token(self, index: int) -> str:
        """Instance ``index``'s auth token ("" with ``auth = false``); the same across restarts."""
        if not self.config.auth:
            return ""
        if index not in self._tokens:
            from tmstate.link.auth import new_token

            self._tokens[index] = new_token()
        return self._tokens[index]

    def _hand_over_token(self, plan: InstancePlan) -> Path | None:
        """The owner-only script the game loads at start to learn its token (docs/protocol.md)."""
        if not self.config.auth:
            return None
        from tmstate.link.auth import write_token_script

        folder = scripts_folder(prefix_path(self.config, self.environ))
        return write_token_script(folder, plan.port, self.token(plan.index))

    def _forget_token_script(self, plan: InstancePlan) -> None:
        """Remove the script once the plugin has read it (it clears its variable at once)."""
        if self.config.auth:
            from tmstate.link.auth import token_script_name

            folder = scripts_folder(prefix_path(self.config, self.environ))
            (folder / token_script_name(plan.port)).unlink(missing_ok=True)

    @classmethod
    def adopt(cls, config: LaunchConfig, probe: Callable[[int, float, str], bool] | None = None) -> Launcher:
        """A launcher for the instances in ``config``'s pid file (started by ``tmstate launch``).

        It can restart them (the pid file is updated) but was not their starter: use
        :meth:`stop_all` only if you mean to end them.
        """
        records = read_pid_file(config.pid_file)
        if not records:
            raise ConfigError(f"{config.pid_file}: lists no instance — run `tmstate launch` first")
        launcher = cls(config, max(int(r["index"]) for r in records) + 1, probe=probe)
        prefix = read_prefix_record(config.pid_file)
        if prefix is not None:
            known = {f.name for f in dataclasses.fields(PrefixRecord)}
            launcher.prefix = PrefixRecord(**{k: v for k, v in prefix.items() if k in known})
        for record in records:
            plan = launcher.plans[int(record["index"])]
            if plan.port != record["port"]:
                raise ConfigError(
                    f"{config.pid_file}: instance {record['index']} runs on port {record['port']}, this config "
                    f"says {plan.port} — use the launch config the instances were started with"
                )
            launcher.instances[plan.index] = Instance(
                plan=plan, marker=record["marker"], started_at=float(record.get("started_at", 0.0)),
                pid=record.get("pid"), xvfb_pid=record.get("xvfb_pid"), ready_s=record.get("ready_s"),
                token=record.get("token", ""),
            )
            if record.get("token"):
                launcher._tokens[plan.index] = record["token"]
        return launcher

    @property
    def ports(self) -> list[int]:
        return [plan.port for plan in self.plans]

    def game_pid(self, index: int) -> int | None:
        """The pid of instance ``index``'s game process (its window's ``_NET_WM_PID``), or None."""
        instance = self.instances.get(index)
        return instance.game_pid() if instance is not None else None

    # -- starting ---------------------------------------------------------------------

    def check_ready_to_start(self) -> None:
        """Refuse early, with the fix, when wine, TMLoader or Xvfb cannot be found."""
        if shutil.which(self.config.wine) is None:
            raise ConfigError(
                f"wine executable {self.config.wine!r} not found — install wine (docs/wine.md) "
                f"or set 'wine' / {ENV_PREFIX}WINE"
            )
        if not self.config.tmloader or not Path(self.config.tmloader).expanduser().is_file():
            raise ConfigError(
                f"TMLoader.exe not found at {self.config.tmloader!r} — set 'tmloader' in the launch "
                f"config or {ENV_PREFIX}TMLOADER (docs/wine.md)"
            )
        if self.config.start_prefix and shutil.which(self.wineserver_executable()) is None:
            raise ConfigError(
                f"wineserver {self.wineserver_executable()!r} not found — set 'wineserver' to the one of "
                f"your wine, or start_prefix = false"
            )
        if self.config.xvfb and shutil.which(self.config.xvfb_executable) is None:
            raise ConfigError(
                f"{self.config.xvfb_executable!r} not found — apt-get install xvfb, or set xvfb = false"
            )

    def start(self, index: int) -> Instance:
        """Start instance ``index`` (its Xvfb first, if any). Does not wait for the plugin."""
        plan = self.plans[index]
        marker = f"{self.run_id}.{index}.{uuid.uuid4().hex[:6]}"
        plan.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.ensure_prefix()
        instance = Instance(plan=plan, marker=marker, started_at=time.time(), token=self.token(index))
        self._hand_over_token(plan)
        env = {**self.environ, **plan.env}
        if plan.xvfb_command:
            instance.xvfb_process = self._start_xvfb(plan, {**env, MARKER_VARIABLE: marker + ".xvfb"})
        with open(plan.log_path, "ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(plan.command)}\n".encode())
            log.flush()
            # Own session: Ctrl-C in the terminal that ran `tmstate launch` must not kill the games.
            instance.process = subprocess.Popen(
                plan.command,
                env={**env, MARKER_VARIABLE: marker + ".game"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.instances[index] = instance
        return instance

    def wineserver_executable(self) -> str:
        """The wineserver of this launcher's wine (see :func:`wineserver_executable`)."""
        return wineserver_executable(self.config)

    def ensure_prefix(self) -> PrefixRecord | None:
        """Start the prefix's wineserver and Wine's services under the launcher's own id.

        ``wineserver -p`` (persistent: it does not exit between a game's death and its
        restart), then ``wine wineboot``, which creates the prefix if it is missing and starts
        services.exe, explorer.exe and the rest, so they carry ``<run id>.prefix`` and not a
        game's id. Nothing happens when ``start_prefix`` is off, when the prefix is already
        up from this launcher, or when another wineserver serves the prefix (then it is not
        ours to stop: :attr:`prefix` stays None).
        """
        if not self.config.start_prefix or (self.prefix is not None and self.prefix.alive()):
            return self.prefix
        prefix = prefix_path(self.config, self.environ)
        created = not (prefix / "system.reg").is_file()
        prefix.mkdir(parents=True, exist_ok=True)  # wineserver needs the folder to exist
        record = PrefixRecord(str(prefix), f"{self.run_id}.prefix.{uuid.uuid4().hex[:6]}", created=created)
        env = {**self.environ, "WINEPREFIX": str(prefix), "WINEDEBUG": self.config.wine_debug,
               **self.config.extra_env, MARKER_VARIABLE: record.marker}
        log_path = Path(self.config.run_dir) / "prefix.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(log_path, "ab") as log:
            server = [self.wineserver_executable(), "-p"]
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(server)}\n".encode())
            log.flush()
            # wineserver forks itself into the background; exit status 2 = one already runs.
            status: int | None = subprocess.run(server, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True,
                                                check=False).returncode
            if status == 2:
                self.prefix = None
                return None
            if status != 0:
                raise TmstateError(f"`{shlex.join(server)}` failed (exit {status}) for prefix {prefix} — see {log_path}")
            self.prefix = record
            if self.config.xvfb:
                # wineboot starts explorer.exe (Wine's desktop) on $DISPLAY; with none it fails and
                # every later window of the prefix fails too (CreateWindow error 1400, measured). The
                # games' own displays come and go with restarts, so the prefix gets one of its own.
                try:
                    env["DISPLAY"] = record.display = self._start_prefix_xvfb(env)
                except BaseException:
                    self.stop_prefix()
                    raise
            boot = [self.config.wine, "wineboot"]
            log.write(f"--- {shlex.join(boot)}\n".encode())
            log.flush()
            try:
                status = subprocess.run(boot, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True, timeout=self.config.handshake_timeout_s,
                                        check=False).returncode
            except subprocess.TimeoutExpired:
                status = None  # no exit status: the boot timed out
        record.setup_s = time.monotonic() - started
        if status != 0:
            self.stop_prefix()
            raise TmstateError(
                f"`wine wineboot` for prefix {prefix} failed ({'timed out' if status is None else f'exit {status}'}) "
                f"— see {log_path} and docs/wine.md"
            )
        return record

    def stop_prefix(self) -> int:
        """End the prefix processes this launcher started (wineserver included); 0 if none."""
        record, self.prefix = self.prefix, None
        if record is None:
            return 0
        count = signal_marked(record.marker, self.config.stop_grace_s)
        if self._prefix_xvfb is not None:
            self._prefix_xvfb.wait()  # reap; signal_marked already made sure it exited
            self._prefix_xvfb = None
        return count

    def _start_prefix_xvfb(self, env: dict[str, str]) -> str:
        """An Xvfb for the prefix (a free display number Xvfb picks itself); returns ``:<n>``."""
        import select

        read_fd, write_fd = os.pipe()
        command = [self.config.xvfb_executable, "-displayfd", str(write_fd), "-screen", "0", "640x480x24",
                   "-nolisten", "tcp"]
        try:
            self._prefix_xvfb = subprocess.Popen(
                command, env=env, pass_fds=(write_fd,), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
        finally:
            os.close(write_fd)
        with os.fdopen(read_fd) as reader:
            ready, _, _ = select.select([reader], [], [], 10.0)
            number = reader.readline().strip() if ready else ""
        if not number.isdigit():
            raise TmstateError(f"the prefix's Xvfb did not start — run `{shlex.join(command)}` by hand to see why")
        return f":{number}"

    def _start_xvfb(self, plan: InstancePlan, env: dict[str, str]) -> subprocess.Popen:
        number = str(plan.display).lstrip(":")
        if Path(f"/tmp/.X{number}-lock").exists():
            raise ConfigError(
                f"display {plan.display} is already in use (/tmp/.X{number}-lock) — "
                f"choose another display_base"
            )
        command = list(plan.xvfb_command or ())
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        socket_path = Path(f"/tmp/.X11-unix/X{number}")
        deadline = time.monotonic() + 10.0
        while not socket_path.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise TmstateError(
                    f"Xvfb on display {plan.display} did not start (exit code {process.returncode}) — "
                    f"run `{shlex.join(command)}` by hand to see why"
                )
            time.sleep(0.05)
        return process

    def wait_ready(
        self, indices: Iterable[int] | None = None, timeout_s: float | None = None, progress: bool = True
    ) -> None:
        """Wait until every plugin answers its handshake; raise naming the instance's log if not."""
        from tqdm import tqdm

        waiting = sorted(self.instances if indices is None else indices)
        timeout_s = self.config.handshake_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        with tqdm(total=len(waiting), desc="plugin handshakes", unit="game", disable=not progress) as bar:
            while waiting:
                for index in list(waiting):
                    instance = self.instances[index]
                    if self.probe(instance.port, 0.5, instance.token):
                        instance.ready_s = time.time() - instance.started_at
                        self._forget_token_script(instance.plan)
                        waiting.remove(index)
                        bar.update(1)
                        continue
                    if not instance.alive():
                        raise GameLostError(
                            f"instance {index} (port {instance.port}) exited before its plugin answered "
                            f"— see {instance.plan.log_path} and docs/wine.md (pitfalls)"
                        )
                if waiting and time.monotonic() > deadline:
                    first = self.instances[waiting[0]]
                    raise GameLostError(
                        f"no plugin handshake from instance(s) {waiting} within {timeout_s:.0f} s "
                        f"(ports {[self.instances[i].port for i in waiting]}) — is the plugin loaded and "
                        f"the game past its login prompt? See {first.plan.log_path} and docs/wine.md"
                    )
                if waiting:
                    time.sleep(0.1)

    def start_all(self, progress: bool = True) -> None:
        """Start every instance, wait for every handshake, write the pid file.

        On failure the instances already started are stopped again (nothing is left behind).
        """
        try:
            for index in range(len(self.plans)):
                self.start(index)
                self.write_pid_file()
            self.wait_ready(progress=progress)
        except BaseException:
            self.stop_all()
            raise
        self.write_pid_file()

    def restart(self, index: int, timeout_s: float | None = None) -> Instance:
        """Stop instance ``index`` whatever its state, start it again and wait for its plugin."""
        self.stop(index)
        instance = self.start(index)
        self.write_pid_file()
        self.wait_ready([index], timeout_s=timeout_s, progress=False)
        self.write_pid_file()  # now with the game's pid and its handshake time
        return instance

    # -- stopping ---------------------------------------------------------------------

    def stop(self, index: int) -> None:
        """Stop instance ``index`` (game first, then its Xvfb); safe if it already died."""
        instance = self.instances.pop(index, None)
        if instance is None:
            return
        self._forget_token_script(instance.plan)  # a game that never answered leaves it behind
        stop_record(instance.record(), self.config.stop_grace_s)
        for process in (instance.process, instance.xvfb_process):
            if process is not None:
                process.wait()  # reap; signal_marked already made sure it exited
        self.write_pid_file()

    def stop_all(self) -> None:
        """Stop every instance, then the prefix processes this launcher started."""
        for index in list(self.instances):
            self.stop(index)
        self.stop_prefix()
        self.write_pid_file()

    def write_pid_file(self) -> None:
        """The running instances as JSON (atomically); removed when none is left."""
        path = self.config.pid_file
        if not self.instances and self.prefix is None:
            path.unlink(missing_ok=True)
            return
        records = [self.instances[i].record() for i in sorted(self.instances)]
        data = {"version": PID_FILE_VERSION, "run_id": self.run_id, "instances": records,
                "prefix": self.prefix.record() if self.prefix is not None else None}
        atomic_write_text(path, json.dumps(data, indent=2), mode=0o600)  # owner-only: it holds the tokens

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


@dataclass
class PidRecord:
    """One instance as the pid file records it (:meth:`Instance.record`)."""

    index: int
    port: int
    marker: str
    pid: int | None = None
    game_pid: int | None = None
    xvfb_pid: int | None = None
    display: str | None = None
    command: list[str] = field(default_factory=list)
    log: str = ""
    started_at: float = 0.0
    ready_s: float | None = None
    token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ConfigError(f"index must be >= 0, got {self.index}")
        check_port(self.port, "port")
        if not self.marker or not all(c.isalnum() or c in "-_." for c in self.marker):
            raise ConfigError(f"marker must be a plain non-empty name, got {self.marker!r}")


def read_pid_file(path: Path) -> list[dict]:
    """The instance records of a pid file written by :class:`Launcher`, each checked (as a
    :class:`PidRecord`): a damaged or tampered file is a one-line ConfigError, never a
    KeyError or TypeError halfway through ``--stop``."""
    instances = _read_pid_data(path).get("instances", [])
    if not isinstance(instances, list):
        raise ConfigError(f"{path}: 'instances' is not a list{_PID_HINT}")
    return [_checked_record(PidRecord, raw, path, f"instances[{i}]") for i, raw in enumerate(instances)]


def read_prefix_record(path: Path) -> dict | None:
    """The pid file's record of the prefix processes the launcher started (checked), or None."""
    prefix = _read_pid_data(path).get("prefix")
    return None if prefix is None else _checked_record(PrefixRecord, prefix, path, "prefix")


_PID_HINT = " — delete it by hand (and stop its games yourself if any still run)"


def _checked_record(cls: type, raw: object, path: Path, where: str) -> dict:
    """A pid-file record with its known fields checked against ``cls`` (the config checker);
    keys a newer launcher added are kept as they are."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: damaged pid file: {where} is not a table{_PID_HINT}")
    known = {f.name for f in dataclasses.fields(cls)}
    try:
        checked = dataclasses.asdict(from_dict(cls, {k: v for k, v in raw.items() if k in known}, where=where))
    except ConfigError as exc:
        raise ConfigError(f"{path}: damaged pid file: {exc}{_PID_HINT}") from None
    return {**raw, **checked}


def _read_pid_data(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no pid file — nothing was launched with this run_dir") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: pid file is not valid JSON ({exc}){_PID_HINT}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: pid file cannot be read ({exc.strerror or exc}){_PID_HINT}") from None
    if not isinstance(data, dict) or data.get("version") != PID_FILE_VERSION:
        raise ConfigError(f"{path}: expected a tmstate pid file version {PID_FILE_VERSION}{_PID_HINT}")
    return data


def stop_record(record: Mapping, grace_s: float) -> int:
    """Stop the processes of one pid-file record (game, then Xvfb). Returns processes signalled."""
    count = signal_marked(f"{record['marker']}.game", grace_s)
    count += signal_marked(f"{record['marker']}.xvfb", grace_s)
    return count


def stop_from_pid_file(path: Path, grace_s: float = 5.0) -> int:
    """``tmstate launch --stop``: stop every instance in the pid file, then the prefix processes
    the launcher started (wineserver included), then remove the file."""
    records = read_pid_file(path)
    prefix = read_prefix_record(path)
    total = 0
    for record in records:
        total += stop_record(record, grace_s)
    if prefix is not None:
        total += signal_marked(prefix["marker"], grace_s)
    path.unlink(missing_ok=True)
    return total


# --- command line ------------------------------------------------------------------------

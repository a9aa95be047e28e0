"""``tmstate check``: what is installed and ready, and what to do about what is not.

Each line is one thing — a Python dependency, the plugin harness, Wine and the game
paths, the simulator's compiled kernel, Xvfb — marked OK, MISSING or INFO (optional, nothing configured), with the fix.
The command exits 1 only when a required Python dependency is missing: everything else is
optional for some use (the simulator needs neither Wine nor the harness).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

OK = "OK"
MISSING = "MISSING"
INFO = "INFO"

# (import name, distribution name, required, what it is for)
PYTHON_DEPS: tuple[tuple[str, str, bool, str], ...] = (
    ("numpy", "numpy", True, "arrays"),
    ("scipy", "scipy", True, "reference-line search"),
    ("gymnasium", "gymnasium", True, "the env API"),
    ("cv2", "opencv-python-headless", True, "frames"),
    ("Xlib", "python-xlib", True, "X11 window capture"),
    ("tminterface", "tminterface", True, "save-state decoding"),
    ("gbx", "tmnf-gbx", True, "replays and maps"),
    ("matplotlib", "matplotlib", True, "plots"),
    ("tqdm", "tqdm", True, "progress bars"),
    ("imageio", "imageio", True, "GIF/MP4 output"),
    ("stable_baselines3", "stable-baselines3", False, "training (extra [train])"),
    ("torch", "torch", False, "training (extra [train])"),
    ("tensorboard", "tensorboard", False, "training logs (extra [train])"),
    ("pygame", "pygame", False, "windows: render_mode='human', tmstate drive (extra [human])"),
    ("ray", "ray[rllib]", False, "training on many machines: --engine rllib (extra [ray])"),
    ("pytest", "pytest", False, "tests (extra [test])"),
    ("hypothesis", "hypothesis", False, "tests (extra [test])"),
)


@dataclass
class Item:
    """One line of the report."""

    name: str
    status: str
    detail: str
    fix: str = ""
    required: bool = False


def check_python() -> list[Item]:
    items = []
    for module, dist, required, purpose in PYTHON_DEPS:
        try:
            importlib.import_module(module)
        except Exception as exc:  # any import failure means "not usable"
            extra = re.search(r"extra \[(\w+)\]", purpose)
            if required:
                fix = f"pip install {dist}"
            elif extra:  # the extra pins a compatible version (and torch's CPU build, via setup.sh)
                fix = f'bash scripts/setup.sh {extra[1]} (or pip install -e ".[{extra[1]}]") for {purpose}'
            else:
                fix = f"pip install {dist} (for {purpose})"
            status = MISSING if required else INFO
            items.append(Item(f"python: {dist}", status, f"import {module} failed: {exc}", fix, required))
            continue
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown version"
        items.append(Item(f"python: {dist}", OK, f"{version} ({purpose})", required=required))
    return items


def check_harness() -> list[Item]:
    from tmstate.errors import ConfigError
    from tmstate.link import harness

    items = []
    plugin = harness.PLUGIN_PATH
    items.append(
        Item("plugin source", OK, str(plugin))
        if plugin.is_file()
        else Item("plugin source", MISSING, f"{plugin} not found", "use a complete checkout of tmstate")
    )
    header = harness.angelscript_header()
    items.append(
        Item("angelscript headers", OK, str(header))
        if header
        else Item("angelscript headers", MISSING, "/usr/include/angelscript.h not found",
                  "apt-get install angelscript-dev (needed to build the harness)")
    )
    for tool in ("make", "g++"):
        found = shutil.which(tool)
        items.append(
            Item(f"build tool: {tool}", OK, found)
            if found
            else Item(f"build tool: {tool}", MISSING, "not on PATH", f"apt-get install {tool}")
        )
    binary = harness.harness_binary()
    items.append(
        Item("harness binary", OK, str(binary))
        if binary.is_file()
        else Item("harness binary", INFO, f"{binary} not built yet",
                  "built on first use (tmstate harness-demo), or python3 -c "
                  "'from tmstate.link.harness import build_harness; build_harness()'")
    )
    try:
        engines = harness.engines() if header else []
    except ConfigError as exc:  # TMSTATE_ANGELSCRIPT_ENGINES names a folder that is not one
        items.append(Item("plugin-check engines", MISSING, str(exc), f"fix or unset {harness.ENGINES_ENV}"))
        return items
    versions = ", ".join(f"{e.version} ({e.where})" for e in engines)
    items.append(
        Item("plugin-check engines", OK, f"AngelScript {versions}")
        if len(engines) > 1
        else Item("plugin-check engines", INFO, f"AngelScript {versions or 'none'}: one engine refuses a few "
                  "public plugins on a language rule (plugins/API.md, Engine)",
                  f"bash {harness.GET_ENGINE_SCRIPT} (gets Debian sid's 2.38.0)")
    )
    return items


def _path_item(name: str, value: str, what: str, fix: str) -> Item:
    """A configured path or executable name: OK if it exists, MISSING if not."""
    if not value:
        return Item(name, INFO, "not configured", fix)
    if os.sep not in value and not value.startswith("~"):
        found = shutil.which(value)
        if found:
            return Item(name, OK, found)
        return Item(name, MISSING, f"{value!r} ({what}) not found on PATH", fix)
    path = Path(value).expanduser()
    if path.exists():
        return Item(name, OK, str(path))
    return Item(name, MISSING, f"{path} ({what}) does not exist", fix)


def check_game() -> list[Item]:
    """Wine, TMLoader and the TMNF folder, as configured (env vars or the launch config)."""
    from tmstate.ops.launch import LaunchConfig, load_config, wineserver_executable

    items = []
    config: LaunchConfig | None = None
    try:
        config = load_config()
        wine, tmloader, prefix = config.wine, config.tmloader, config.wine_prefix
        source = "launch config + TMSTATE_* environment"
    except Exception as exc:  # a broken launch config is worth a line, not a crash
        items.append(Item("launch config", MISSING, str(exc), "fix the file named in the message"))
        wine = os.environ.get("TMSTATE_WINE", "")
        tmloader = os.environ.get("TMSTATE_TMLOADER", "")
        prefix = os.environ.get("TMSTATE_WINE_PREFIX", "")
        source = "environment"
    items.append(_path_item("wine", wine, "wine executable",
                            "install wine (docs/wine.md) or set TMSTATE_WINE"))
    if config is not None and config.start_prefix:  # `tmstate launch` starts the prefix with it
        items.append(_path_item("wineserver", wineserver_executable(config), "wineserver of that wine",
                                "install wine (docs/wine.md), or set `wineserver` in the launch config"))
    items.append(_path_item("TMLoader.exe", tmloader, f"from {source}",
                            "set TMSTATE_TMLOADER or `tmloader` in the launch config (docs/wine.md)"))
    if prefix:
        item = _path_item("wine prefix", prefix, "WINEPREFIX", "create it (docs/wine.md)")
        if item.status == MISSING and config is not None and config.start_prefix:
            item = Item("wine prefix", INFO, f"{item.detail}: `tmstate launch` creates it (about 10 s)", "")
        items.append(item)
    tmnf_dir = os.environ.get("TMSTATE_TMNF_DIR", "")
    items.append(_path_item("TMNF folder", tmnf_dir, "TMSTATE_TMNF_DIR",
                            "set TMSTATE_TMNF_DIR to the TmForever install folder (optional)"))
    return items


def auth_mode(port: int, timeout_s: float = 1.0) -> str:
    """How the plugin on ``port`` admits clients: "token" (it refused a HELLO without the
    instance's token), "open" (it served one: any local process may drive that game) or
    "absent" (nothing answered)."""
    from tmstate.errors import AuthError, BridgeError, ProtocolError
    from tmstate.link.bridge import Bridge

    try:
        with Bridge(port=port, timeout_s=timeout_s, connect_retries=0, client_name="tmstate check"):
            return "open"
    except AuthError:
        return "token"
    except (BridgeError, ProtocolError, OSError):
        return "absent"


def check_auth() -> list[Item]:
    """Which authentication mode each game the launch config knows of is in."""
    from tmstate.ops.launch import load_config, read_pid_file

    try:
        config = load_config()
    except Exception:  # reported by check_game
        return []
    try:
        ports = [int(r["port"]) for r in read_pid_file(config.pid_file)]
        where = f"instances in {config.pid_file}"
    except Exception:  # no pid file (nothing launched), or a damaged one
        ports = [config.base_port]
        where = "launch base_port"
    items = [Item("launch auth", OK if config.auth else INFO,
                  "tmstate launch gives each instance its own token" if config.auth else
                  "auth = false: launched games serve any local client",
                  "" if config.auth else "set auth = true in the launch config (docs/protocol.md)")]
    for port in ports:
        mode = auth_mode(port)
        if mode == "token":
            items.append(Item(f"plugin on port {port}", OK, f"token mode: only the holder of its token may drive it ({where})"))
        elif mode == "open":
            items.append(Item(f"plugin on port {port}", INFO, f"no token: any local process may connect and drive it ({where})",
                              "start it with `tmstate launch` (auth = true) on a shared machine"))
        else:
            items.append(Item(f"plugin on port {port}", INFO, f"no plugin answers ({where})", "start the game to check"))
    return items


def check_display() -> list[Item]:
    xvfb = shutil.which("Xvfb")
    return [
        Item("Xvfb", OK, xvfb)
        if xvfb
        else Item("Xvfb", MISSING, "not on PATH", "apt-get install xvfb (headless game instances, tests)")
    ]


def check_sim() -> list[Item]:
    """The simulator's compiled ticks (tmstate.backends.sim.kernel): built here, or why not."""
    from tmstate.backends.sim import kernel

    if kernel.library() is not None:
        return [Item("simulator kernel", OK, kernel.status())]
    return [Item("simulator kernel", INFO, kernel.status(),
                 "apt-get install gcc: the simulator steps several times faster (same results)")]


def collect() -> list[Item]:
    return check_python() + check_harness() + check_sim() + check_game() + check_auth() + check_display()


def format_table(items: list[Item]) -> str:
    width = max(len(i.name) for i in items)
    lines = []
    for item in items:
        line = f"{item.status:<7}  {item.name:<{width}}  {item.detail}"
        if item.status != OK and item.fix:
            line += f"  -> {item.fix}"
        lines.append(line)
    return "\n".join(lines)

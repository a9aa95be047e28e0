"""``tmstate plugin-check PLUGIN...``: compile TMInterface plugins against the harness's API model.

Each PLUGIN is a ``.as`` file, or a folder whose ``.as`` files (subfolders included) form
one plugin, as TMInterface loads a plugin folder. The harness (``plugins/harness``)
registers the TMInterface 2 API as ``plugins/API.md`` models it and compiles the plugin
with AngelScript; the messages are printed as AngelScript gives them
(``file:row:col: ERR: text``), grouped per plugin. Exit status 0 when every plugin
compiles, 1 otherwise.

Why: the model is only as good as the evidence behind it. Public plugins that are known
to run in the real game must compile against it unmodified; one that does not is a finding
about the model (a missing or wrongly declared symbol, an engine property), never about
the plugin.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tmstate.errors import ConfigError


@dataclass(frozen=True)
class CheckResult:
    """One plugin's outcome: whether it compiled and AngelScript's messages."""

    plugin: Path
    ok: bool
    messages: list[str]


def check_plugin(plugin: str | Path, binary: Path | None = None, timeout_s: float = 120.0) -> CheckResult:
    """Compile one plugin (file or folder) with ``tmstate-harness --check-only``."""
    from tmstate.link.harness import build_harness

    path = Path(plugin)
    if not path.exists():
        raise ConfigError(f"{path}: no such plugin file or folder")
    if path.is_dir() and not any(path.rglob("*.as")):
        raise ConfigError(f"{path}: the folder holds no .as file (a plugin folder is its .as files)")
    if path.is_file() and path.suffix != ".as":
        raise ConfigError(f"{path}: a plugin is a .as file or a folder of them")
    harness = binary or build_harness()
    done = subprocess.run(
        [str(harness), "--check-only", "--plugin", str(path)],
        capture_output=True, text=True, timeout=timeout_s,
    )
    lines = [line for line in done.stderr.splitlines() if ": ERR: " in line or ": WARN: " in line]
    if done.returncode not in (0, 1):  # 3: the API model itself did not register
        lines = done.stderr.splitlines()[-10:]
    return CheckResult(path, done.returncode == 0, lines)


def angelscript_version(binary: Path | None = None) -> tuple[int, ...]:
    """The AngelScript version the harness is built against, e.g. (2, 35, 1)."""
    from tmstate.link.harness import build_harness

    done = subprocess.run([str(binary or build_harness()), "--angelscript-version"],
                          capture_output=True, text=True, timeout=30)
    text = done.stdout.strip().split()[0] if done.stdout.strip() else ""
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        raise ConfigError(f"the harness printed no AngelScript version (got {done.stdout!r}); rebuild it") from None

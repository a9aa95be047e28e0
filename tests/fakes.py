"""Fakes shared by several test modules (tests/ is on sys.path under pytest's default import mode)."""

from __future__ import annotations

import sys
from pathlib import Path

HARNESS_WINE = """#!{python}
# A fake wine for the launcher: runs the plugin harness with the configstring as TMInterface
# would (its address and port, and `load` of the token script from the prefix's TMInterface
# script folder).
import getpass, os, sys
configstring = sys.argv[-1].split("=", 1)[1]
scripts = os.path.join(os.environ["WINEPREFIX"], "drive_c", "users", getpass.getuser(), "Documents", "TMInterface",
                       "Scripts")
os.execv({binary!r}, [{binary!r}, "--plugin", {plugin!r}, "--config", configstring, "--scripts-dir", scripts])
"""
"""Use with ``LaunchConfig(start_prefix=False, wine_prefix=...)``: it has no wineserver or wineboot."""


def harness_wine(folder: Path) -> tuple[Path, Path]:
    """Write :data:`HARNESS_WINE` (running the built harness) and a stand-in TMLoader.exe into
    ``folder``; returns (wine, tmloader) for a ``LaunchConfig``."""
    from tmstate.link.harness import PLUGIN_PATH, build_harness

    wine = folder / "wine"
    wine.write_text(HARNESS_WINE.format(python=sys.executable, binary=str(build_harness()), plugin=str(PLUGIN_PATH)))
    wine.chmod(0o755)
    tmloader = folder / "TMLoader.exe"
    tmloader.write_bytes(b"MZ")
    return wine, tmloader

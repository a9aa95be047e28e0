"""Fakes shared by several test modules (tests/ is on sys.path under pytest's default import mode)."""

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

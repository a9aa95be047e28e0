"""Fakes shared by several test modules (tests/ is on sys.path under pytest's default import mode)."""

HARNESS_WINE = """#!{python}
# A fake wine for the launcher: runs the plugin harness on the address the configstring names.
import os, sys
listen = sys.argv[-1].rsplit(" ", 1)[1]  # ADDRESS:PORT of "set tmstate_listen ADDRESS:PORT"
os.execv({binary!r}, [{binary!r}, "--plugin", {plugin!r}, "--config", "set tmstate_listen " + listen])
"""
"""Use with ``LaunchConfig(start_prefix=False)``: it has no wineserver or wineboot."""

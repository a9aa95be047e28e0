"""Data the package needs at run time, shipped inside it (package data, importlib.resources).

- ``plugins/tmstate.as`` — the TMInterface plugin (and its API notes);
- ``plugins/harness/`` — the AngelScript harness sources (Makefile, src/), built on first use
  into a user cache folder (:func:`tmstate.link.harness.build_harness`);
- ``reference_lines/*.npz`` — the simulator tracks the project ships.

In a source checkout ``plugins`` and ``reference_lines`` here are symlinks to the top-level
folders the design fixes; a wheel carries the files themselves (pyproject.toml lists them).
Code reaches them only through :func:`data_path`, so nothing resolves outside the package.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def data_path(*parts: str) -> Path:
    """The path of a shipped file or folder, e.g. ``data_path("plugins", "tmstate.as")``."""
    return Path(str(files(__name__).joinpath(*parts)))

"""Loading configuration dataclasses from TOML.

Every configurable part of tmstate is a dataclass with defaults (``RewardConfig``,
``TerminationConfig``, ``EnvConfig`` ...). This module turns a TOML table into such a
dataclass, refusing unknown keys so that a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import Any, TypeVar

from tmstate.errors import ConfigError

T = TypeVar("T")


def from_dict(cls: type[T], values: dict[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from ``values``; nested dataclass fields take nested tables."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"{where or cls.__name__}: unknown key(s) {', '.join(unknown)}; "
            f"known keys are {', '.join(sorted(known))}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        hint = hints.get(name)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value, f"{where or cls.__name__}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from exc


def read_toml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The tables of a TOML file; a missing or malformed file is a one-line ConfigError."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found — check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}) — fix the syntax") from None


def load_toml(cls: type[T], path: str | Path, table: str | None = None) -> T:
    """Load dataclass ``cls`` from a TOML file, optionally from one of its tables."""
    path = Path(path)
    data = read_toml(path)
    if table is not None:
        if table not in data:
            raise ConfigError(f"{path}: no [{table}] table — add one or leave it out")
        data = data[table]
    return from_dict(cls, data, where=f"{path}" + (f"[{table}]" if table else ""))

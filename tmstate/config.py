"""Loading configuration dataclasses from TOML, every value checked against its declared type.

Every configurable part of tmstate is a dataclass with defaults (``RewardConfig``,
``TerminationConfig``, ``EnvConfig`` ...). This module turns a TOML table into such a
dataclass, refusing unknown keys so that a typo never passes silently, and checking each
value against the field's annotation with one generic checker (:func:`check_type`), so a
``reward = 5`` or an ``xvfb = "no"`` is a one-line :class:`ConfigError` naming the key, the
value and what was expected, not an ``AttributeError`` at the first step.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from tmstate.errors import ConfigError

T = TypeVar("T")

SHORTHAND_ATTRIBUTE = "CONFIG_SHORTHAND"
"""A dataclass may name one of its fields here: a plain string given for a table of that
dataclass sets that field (``observation = "frames"`` means ``observation = {type = "frames"}``)."""

MAX_PORT = 65535


def check_port(port: Any, what: str = "port", *, allow_zero: bool = False) -> int:
    """``port`` as an int in 1..65535 (0 too with ``allow_zero``: "the OS picks"), else ConfigError.

    The one check for every place a TCP port enters (bridge, GameConfig, launch, CLI).
    """
    low = 0 if allow_zero else 1
    if isinstance(port, bool) or not isinstance(port, int) or not low <= port <= MAX_PORT:
        raise ConfigError(f"{what} must be a whole number in {low}..{MAX_PORT}, got {port!r}")
    return int(port)


def _describe(hint: Any) -> str:
    """A type annotation in words a user reads (``a whole number``, ``a list of numbers``)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return "anything"
    if hint is bool:
        return "true or false"
    if hint is int:
        return "a whole number"
    if hint is float:
        return "a number"
    if hint in (str, Path):
        return "a string"
    if origin in (typing.Union, types.UnionType):
        return " or ".join("nothing (leave it out)" if a is type(None) else _describe(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (tuple, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} ({', '.join(_describe(a) for a in args)})"
        return f"a list of {_describe(args[0]) if args else 'values'}"
    if origin is dict or hint is dict:
        return f"a table of {_describe(args[1])}" if len(args) == 2 else "a table"
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return f"a table of {hint.__name__} keys"
    return getattr(hint, "__name__", str(hint))


def check_type(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against annotation ``hint`` (and lightly normalised), else ConfigError.

    Understands what config dataclasses use: bool, int, float (an int is accepted; NaN is
    not), str, Path, Any, ``X | None``, Literal, ``tuple[X, ...]``, ``tuple[X, Y]``,
    ``list[X]``, ``dict[K, V]`` and nested config dataclasses (from a table, an instance, or
    a string for a dataclass with a :data:`SHORTHAND_ATTRIBUTE`). Lists become tuples where
    the field is a tuple.
    """

    def refuse() -> ConfigError:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return ConfigError(f"{where}: expected {_describe(hint)}, got {shown} ({type(value).__name__})")

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or hint is object:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return check_type(value, arg, where)
            except ConfigError:
                continue
        raise refuse()
    if origin is typing.Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise refuse()
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise refuse()
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise refuse()
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value):
            return float(value)
        raise refuse()
    if hint is str:
        if isinstance(value, str):
            return value
        raise refuse()
    if hint is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise refuse()
    if origin in (tuple, list) or hint in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise refuse()
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise refuse()
            return tuple(check_type(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return list(items) if (origin is list or hint is list) else tuple(items)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise refuse()
        key_hint, value_hint = args if len(args) == 2 else (Any, Any)
        return {check_type(k, key_hint, f"{where} key"): check_type(v, value_hint, f"{where}.{k}")
                for k, v in value.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        shorthand = getattr(hint, SHORTHAND_ATTRIBUTE, None)
        if isinstance(value, str) and shorthand:
            value = {shorthand: value}
        if isinstance(value, dict):
            return from_dict(hint, value, where)
        raise refuse()
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise refuse()
    return value  # an annotation this checker does not know: left to the dataclass itself


def from_dict(cls: type[T], values: Any, where: str = "") -> T:
    """Build dataclass ``cls`` from a table, each value checked against its field's type."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    where = where or cls.__name__
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a table of {cls.__name__} keys, got {values!r} "
                          f"({type(values).__name__}) — write it as [table] or {{key = value}}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(str(k) for k in set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; "
            f"known keys are {', '.join(sorted(known))}"
        )
    kwargs = {name: check_type(value, hints.get(name, Any), f"{where}.{name}") for name, value in values.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def check_arguments(func: Any, values: dict[str, Any], where: str, skip: int = 0) -> dict[str, Any]:
    """Keyword ``values`` for ``func`` checked against its signature and annotations.

    Unknown names are a ConfigError listing the known ones, as for a config table; so is a
    value of the wrong type. ``skip`` leading parameters are positional ones the caller
    fills itself (``self``, a line). For option tables handed on to a function
    (``backend_options``), so they are checked like every other config value.
    """
    import inspect

    parameters = list(inspect.signature(func).parameters.values())[skip:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        named = {p.name for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD}
    else:
        named = {p.name for p in parameters if p.kind in (inspect.Parameter.KEYWORD_ONLY,
                                                          inspect.Parameter.POSITIONAL_OR_KEYWORD)}
        unknown = sorted(str(k) for k in set(values) - named)
        if unknown:
            raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)}; "
                              f"known options are {', '.join(sorted(named))}")
    hints = typing.get_type_hints(func)
    return {name: check_type(value, hints.get(name, Any), f"{where}.{name}") if name in named else value
            for name, value in values.items()}


def read_toml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The tables of a TOML file; a missing, unreadable or malformed file is a one-line ConfigError."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found — check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a {what} — pass the .toml file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}) — save the {what} as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror or exc}) — check its permissions") from None
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

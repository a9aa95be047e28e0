"""tmstate: a reinforcement-learning environment for TrackMania Nations Forever.

The true game state comes from TMInterface 2 through the plugin in ``plugins/``; an
embedded simulator (a simplified car, not TMNF physics) and a log-replay backend let the
same environment run without the game.

The main API, importable from here: :class:`TMNFEnv`, :class:`EnvConfig`,
:func:`make_vector_env`, :func:`to_sb3`, :class:`ReferenceLine`, :func:`read_episode` and
``__version__``. They are loaded on first use (PEP 562), so ``import tmstate.errors`` or
``tmstate --help`` does not pay for scipy and the env; ``import tmstate`` itself only
registers the Gymnasium ids (which imports Gymnasium).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tmstate._version import __version__

from tmstate.env.registry import register_envs as _register_envs

_register_envs()  # import tmstate makes gym.make("tmstate/...") work (gym.register_envs(tmstate))

_API: dict[str, str] = {
    "TMNFEnv": "tmstate.env.env",
    "EnvConfig": "tmstate.env.env",
    "make_vector_env": "tmstate.vector.make",
    "to_sb3": "tmstate.vector.sb3",
    "ReferenceLine": "tmstate.core.reference",
    "read_episode": "tmstate.formats.log",
}
"""Public name -> the module that defines it."""

__all__ = ["EnvConfig", "ReferenceLine", "TMNFEnv", "__version__", "make_vector_env", "read_episode", "to_sb3"]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from tmstate.core.reference import ReferenceLine
    from tmstate.env.env import EnvConfig, TMNFEnv
    from tmstate.formats.log import read_episode
    from tmstate.vector.make import make_vector_env
    from tmstate.vector.sb3 import to_sb3


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'tmstate' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # next time without __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])

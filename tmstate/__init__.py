"""tmstate: a reinforcement-learning environment for TrackMania Nations Forever.

The true game state comes from TMInterface 2 through the plugin in ``plugins/``; an
embedded simulator (a simplified car, not TMNF physics) and a log-replay backend let the
same environment run without the game.
"""

__version__ = "0.1.0"

from tmstate.env.registry import register_envs as _register_envs

_register_envs()  # import tmstate makes gym.make("tmstate/...") work (gym.register_envs(tmstate))

"""Gymnasium ids of the env: one generic id, and one per shipped track and observation type.

``import tmstate`` calls :func:`register_envs`, so ``gym.make("tmstate/SimEasy-v0")`` works
after it (and ``gym.register_envs(tmstate)``, Gymnasium's way to keep that import from
looking unused). This module imports only Gymnasium: the env itself is loaded by
``gym.make`` through the entry point string.

- ``tmstate/TMNF-v0``: any map and backend, set by keywords (``map=``, ``backend=``, ...).
  ``gym.make_vec(id, num_envs=N)`` of any id gives the batched simulator vector env for the
  sim backend (:data:`VECTOR_ENTRY_POINT`).
- ``tmstate/<Track>-v0``, ``tmstate/<Track>-Frames-v0``, ``tmstate/<Track>-Dict-v0``: a
  shipped simulator track with telemetry, frame or dict observations, and a
  ``TimeLimit`` of :data:`MAX_EPISODE_STEPS` steps. Keywords still override anything.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

ENV_ID = "tmstate/TMNF-v0"
ENTRY_POINT = "tmstate.env.env:TMNFEnv"
VECTOR_ENTRY_POINT = "tmstate.vector.sim:make_vec"
"""``gym.make_vec``: the batched simulator (:class:`tmstate.vector.sim.SimVectorEnv`) for the
sim backend, :func:`tmstate.vector.make.make_vector_env` for the others."""

SHIPPED_TRACKS: tuple[str, ...] = ("sim_easy", "sim_esses", "sim_hairpins")
"""The shipped simulator tracks (a test checks this equals
:func:`tmstate.backends.sim.track.track_names`; listed here so registering imports nothing heavy)."""

OBSERVATION_IDS: dict[str, str] = {"telemetry": "", "frames": "-Frames", "dict": "-Dict"}
"""Observation type -> the part of the id that names it."""

MAX_EPISODE_STEPS = 1200
"""Steps before Gymnasium's TimeLimit truncates a per-track episode: 60 s of race time at
the default 50 ms action period, several times what the demo's line-following driver
needs on the shipped tracks (the env's own ``termination.time_limit_s`` of 180 s stays as a backstop)."""


def track_id(track: str, observation: str = "telemetry") -> str:
    """The id of a shipped track with an observation type: ``sim_easy``, ``frames`` -> ``tmstate/SimEasy-Frames-v0``."""
    name = "".join(part.capitalize() for part in track.split("_"))
    return f"tmstate/{name}{OBSERVATION_IDS[observation]}-v0"


def registered_ids() -> dict[str, dict[str, Any]]:
    """Every per-track id with the keywords it makes the env with. The settings are the
    ``config`` base, so keywords given to ``gym.make`` merge over them table by table
    (``observation={"width": 84}`` keeps the id's observation type)."""
    return {track_id(track, obs): {"config": {"map": track, "backend": "sim", "observation": {"type": obs}}}
            for track in SHIPPED_TRACKS for obs in OBSERVATION_IDS}


def register_envs() -> None:
    """Register every tmstate id with Gymnasium (idempotent; also the ``gymnasium.envs`` entry point)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point=ENTRY_POINT, vector_entry_point=VECTOR_ENTRY_POINT)
    for env_id, kwargs in registered_ids().items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=ENTRY_POINT, vector_entry_point=VECTOR_ENTRY_POINT, kwargs=kwargs,
                         max_episode_steps=MAX_EPISODE_STEPS)

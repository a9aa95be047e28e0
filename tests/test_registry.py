"""Gymnasium registration: ``import tmstate`` registers every id; per-track ids carry their
track, observation type and a TimeLimit; docs/env.md lists them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from tmstate.backends.sim.track import track_names
from tmstate.env.registry import ENV_ID, MAX_EPISODE_STEPS, SHIPPED_TRACKS, registered_ids, track_id

ROOT = Path(__file__).resolve().parents[1]


def test_import_tmstate_registers_in_a_fresh_interpreter():
    code = (
        "import gymnasium as gym, tmstate\n"
        "gym.register_envs(tmstate)\n"
        "env = gym.make('tmstate/SimEasy-v0')\n"
        "print(env.spec.max_episode_steps, env.unwrapped.line.metadata.map_name, env.observation_space.shape)\n"
        "print(ENV := 'tmstate/TMNF-v0' in gym.registry)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.split("\n")[:2]
    steps, track, shape = first.split(" ", 2)
    assert (int(steps), track) == (MAX_EPISODE_STEPS, "sim_easy")
    assert shape.startswith("(") and second == "True"


def test_the_id_list_is_the_shipped_tracks():
    assert list(SHIPPED_TRACKS) == track_names()
    assert track_id("sim_hairpins", "frames") == "tmstate/SimHairpins-Frames-v0"
    assert len(registered_ids()) == 3 * len(SHIPPED_TRACKS)


@pytest.mark.parametrize("obs_type", ["telemetry", "frames", "dict"])
def test_each_per_track_id_makes_its_track_and_observation(obs_type):
    env_id = track_id("sim_esses", obs_type)
    env = gym.make(env_id)
    try:
        assert env.spec.max_episode_steps == MAX_EPISODE_STEPS
        assert env.unwrapped.config.observation.type == obs_type
        assert env.unwrapped.line.metadata.map_name == "sim_esses"
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs)
    finally:
        env.close()


def test_keywords_merge_over_an_id_table_by_table():
    env = gym.make("tmstate/SimEasy-Frames-v0", observation={"width": 48, "height": 40}, reward={"time": 0.002})
    try:
        c = env.unwrapped.config
        assert (c.observation.type, c.observation.width, c.observation.height) == ("frames", 48, 40)
        assert c.reward.time == 0.002
        assert env.observation_space.shape == (40, 48, 4)
    finally:
        env.close()


def test_the_time_limit_truncates_a_standing_car():
    env = gym.make("tmstate/SimEasy-v0", max_episode_steps=30, termination={"no_progress_s": 100.0})
    env.reset(seed=0)
    try:
        for step in range(1, 31):  # noqa: B007 (the last step is checked after the loop)
            _, _, terminated, truncated, _ = env.step([0.0, 0.0])
            assert not terminated
            if truncated:
                break
        assert truncated and step == 30
    finally:
        env.close()


def test_docs_list_every_id():
    text = (ROOT / "docs" / "env.md").read_text()
    missing = [i for i in [ENV_ID, *registered_ids()] if f"`{i}`" not in text]
    assert not missing, f"docs/env.md does not list {missing}"


def test_the_cleanrl_style_vector_env_of_docs_training_md_steps():
    """docs/training.md's CleanRL make_env (Gymnasium 1.x wrappers) on a registered id."""
    import numpy as np

    def make_env(env_id: str, gamma: float = 0.99):
        def thunk():
            env = gym.make(env_id)
            env = gym.wrappers.FlattenObservation(env)
            env = gym.wrappers.RecordEpisodeStatistics(env)
            env = gym.wrappers.ClipAction(env)
            env = gym.wrappers.NormalizeObservation(env)
            env = gym.wrappers.TransformObservation(env, lambda obs: np.clip(obs, -10, 10), env.observation_space)
            env = gym.wrappers.NormalizeReward(env, gamma=gamma)
            env = gym.wrappers.TransformReward(env, lambda reward: np.clip(reward, -10, 10))
            return env
        return thunk

    envs = gym.vector.SyncVectorEnv([make_env("tmstate/SimEasy-v0") for _ in range(2)])
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (2, envs.single_observation_space.shape[0])
    ended = 0
    for _ in range(150):  # standing still: no_progress ends each episode after 5 s (100 steps)
        obs, reward, terminated, truncated, infos = envs.step(np.zeros((2, 2), dtype=np.float32))
        if "episode" in infos:
            ended += int(infos["_episode"].sum())
    envs.close()
    assert ended == 2 and np.isfinite(obs).all()

"""The batched simulator vector env: same episodes as single envs, autoreset, registration, SB3."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from tmstate.env.env import TMNFEnv
from tmstate.errors import ActionError, ConfigError
from tmstate.tools.demo import LineFollower
from tmstate.vector.sim import SimVectorEnv, to_sb3

KW = dict(map="sim_hairpins", observation={"type": "telemetry"}, termination={"time_limit_s": 18.0})


def actions_for(envs, rng, step):
    """Car 0 follows the line (it finishes), the others drive at random (walls, no progress, time limit)."""
    out = np.column_stack([rng.uniform(-1, 1, len(envs)), rng.uniform(-0.8, 1, len(envs))]).astype(np.float32)
    out[0] = LineFollower(envs[0].line).act(envs[0].state, envs[0].location)
    return out


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_batched_cars_live_the_episodes_of_single_envs(mode):
    n = 4
    batch = SimVectorEnv(n, autoreset_mode=mode, **KW)
    singles = [TMNFEnv(backend="sim", **KW) for _ in range(n)]
    obs, _ = batch.reset(seed=0)
    np.testing.assert_array_equal(obs, np.stack([e.reset(seed=0)[0] for e in singles]))
    rng = np.random.default_rng(1)
    pending = [False] * n
    ends = {"finished": 0, "other": 0}
    for step in range(500):
        actions = actions_for(singles, rng, step)
        obs, reward, terminated, truncated, info = batch.step(actions)
        for i, env in enumerate(singles):
            if pending[i]:  # next_step: this step resets the car and ignores its action
                o, r, te, tr = *env.reset()[:1], 0.0, False, False
                pending[i] = False
            else:
                o, r, te, tr, inf = env.step(actions[i])
                if te or tr:
                    ends["finished" if inf["finished"] else "other"] += 1
                    if mode == "same_step":
                        np.testing.assert_array_equal(info["final_obs"][i], o)
                        assert info["final_info"]["termination_reason"][i] == inf["termination_reason"]
                        o = env.reset()[0]
                    else:
                        pending[i] = True
            np.testing.assert_allclose(obs[i], o, rtol=0, atol=1e-6)
            assert reward[i] == pytest.approx(r, abs=1e-9)
            assert (bool(terminated[i]), bool(truncated[i])) == (te, tr)
    assert ends["finished"] >= 1 and ends["other"] >= 1


def test_make_vec_gives_the_batched_env():
    env = gym.make_vec("tmstate/TMNF-v0", num_envs=64, vectorization_mode="vector_entry_point", map="sim_esses")
    assert isinstance(env, SimVectorEnv) and env.num_envs == 64
    obs, _ = env.reset(seed=3)
    assert obs.shape == (64, *env.single_observation_space.shape)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert reward.shape == (64,) and info["race_time_ms"].shape == (64,) and info["_race_time_ms"].all()
    env.close()


def test_frames_are_the_single_env_frames_within_a_grey_level():
    kw = dict(map="sim_esses", observation={"type": "dict", "width": 64, "height": 48, "stack": 2})
    batch = SimVectorEnv(2, **kw)
    single = TMNFEnv(backend="sim", **kw)
    b, _ = batch.reset(seed=0)
    s, _ = single.reset(seed=0)
    action = np.array([0.4, 1.0], dtype=np.float32)
    for _ in range(25):
        b, *_ = batch.step(np.stack([action, action]))
        s, *_ = single.step(action)
    assert b["frames"].shape == (2, 48, 64, 2)
    diff = np.abs(b["frames"][0].astype(int) - s["frames"].astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.1  # the batch renders grey directly, the env converts RGB
    np.testing.assert_allclose(b["telemetry"][0], s["telemetry"], atol=1e-6)


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_frame_stacks_follow_the_single_envs_through_episode_ends(mode):
    """The batch's frame stacks (pushed for all cars, refilled for the cars that reset) are
    the single envs' stacks, within a grey level, across ends and autoresets."""
    kw = dict(map="sim_hairpins", observation={"type": "dict", "width": 32, "height": 24, "stack": 3},
              termination={"time_limit_s": 0.6})  # 12 steps an episode
    n = 3
    batch = SimVectorEnv(n, autoreset_mode=mode, **kw)
    singles = [TMNFEnv(backend="sim", **kw) for _ in range(n)]
    obs, _ = batch.reset(seed=0)
    expected = [e.reset(seed=0)[0] for e in singles]
    rng = np.random.default_rng(2)
    pending = [False] * n
    ends = 0
    for _ in range(40):
        actions = np.column_stack([rng.uniform(-1, 1, n), rng.uniform(0, 1, n)]).astype(np.float32)
        obs, _, terminated, truncated, info = batch.step(actions)
        for i, env in enumerate(singles):
            if pending[i]:
                expected[i], pending[i] = env.reset()[0], False
                continue
            o, _, te, tr, _ = env.step(actions[i])
            if te or tr:
                ends += 1
                if mode == "same_step":
                    final = info["final_obs"][i]
                    assert np.abs(final["frames"].astype(int) - o["frames"].astype(int)).max() <= 1
                    o = env.reset()[0]
                else:
                    pending[i] = True
            expected[i] = o
        for i in range(n):
            diff = np.abs(obs["frames"][i].astype(int) - expected[i]["frames"].astype(int))
            assert diff.max() <= 1 and diff.mean() < 0.1
            np.testing.assert_allclose(obs["telemetry"][i], expected[i]["telemetry"], atol=1e-6)
    assert ends >= n  # every car's episode ended at least once


def test_stable_baselines3_trains_through_the_adapter():
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import PPO

    vec = to_sb3(SimVectorEnv(4, map="sim_easy", termination={"time_limit_s": 2.0}))
    model = PPO("MlpPolicy", vec, n_steps=32, batch_size=64, seed=0, device="cpu", verbose=0)
    model.learn(256)
    obs = vec.reset()
    for _ in range(50):  # a 2 s time limit at 50 ms: every car ends an episode within 40 steps
        obs, rewards, dones, infos = vec.step(model.predict(obs, deterministic=True)[0])
        if dones.any():
            i = int(np.flatnonzero(dones)[0])
            assert "terminal_observation" in infos[i] and infos[i]["TimeLimit.truncated"]
            break
    else:
        pytest.fail("no episode ended")
    vec.close()


def test_bad_settings_and_actions_are_refused():
    with pytest.raises(ConfigError, match="simulator"):
        SimVectorEnv(2, backend="tminterface")
    with pytest.raises(ConfigError, match="log"):
        SimVectorEnv(2, log_dir="out/x")
    with pytest.raises(ConfigError, match="autoreset_mode"):
        SimVectorEnv(2, autoreset_mode="sometimes")
    env = SimVectorEnv(2)
    env.reset()
    with pytest.raises(ActionError, match="outside"):
        env.step(np.array([[0.0, 2.0], [0.0, 0.0]]))
    with pytest.raises(ActionError, match="NaN"):
        env.step(np.array([[np.nan, 0.0], [0.0, 0.0]]))


def test_starts_spread_along_the_track_when_asked():
    env = SimVectorEnv(16, map="sim_esses", start={"mode": "uniform", "speed_mps": 0.0})
    _, info = env.reset(seed=5)
    arcs = info["progress_m"]
    assert arcs.min() >= 0.0 and arcs.max() <= 0.9 * env.line.length_m and np.ptp(arcs) > 100.0
    _, reward, *_ = env.step(np.tile([0.0, 1.0], (16, 1)))
    assert np.all(np.abs(reward) < 0.05)  # progress counts from where each car starts
    _, again = SimVectorEnv(16, map="sim_esses", start={"mode": "uniform", "speed_mps": 0.0}).reset(seed=5)
    np.testing.assert_array_equal(again["progress_m"], arcs)


def test_a_registered_track_id_keeps_its_step_limit_in_make_vec():
    env = gym.make_vec("tmstate/SimEasy-v0", num_envs=3, vectorization_mode="vector_entry_point",
                       max_episode_steps=5)
    assert isinstance(env, SimVectorEnv) and env.line.metadata.map_name == "sim_easy"
    env.reset(seed=0)
    for k in range(5):
        _, _, terminated, truncated, _ = env.step(np.tile([0.0, 1.0], (3, 1)))
        assert not terminated.any() and truncated.all() == (k == 4)

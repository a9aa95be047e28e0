"""Reward terms: weights, signs, the partial last step, the finish bonus, config checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tmstate.config import load_toml
from tmstate.errors import ConfigError
from tmstate.core.progress import Location
from tmstate.core.reward import TERMS, Reward, RewardConfig, total
from tmstate.core.state import GameState

HERE = Location(arc_length_m=10.0, lateral_m=-2.0, distance_m=2.0, index=20)


def state(t_ms: int, *, finished: bool = False, speed: float = 0.0) -> GameState:
    return GameState(race_time_ms=t_ms, finished=finished, velocity=np.array([0.0, 0.0, speed]))


def test_terms_are_weighted_and_named():
    reward = Reward(RewardConfig(progress=0.01, time=0.001, finish=5.0, speed=0.1, lateral=0.2))
    terms = reward.terms(state(1000), state(1050, speed=30.0), 1.5, HERE)
    assert tuple(terms) == TERMS
    assert terms["progress"] == pytest.approx(0.015)
    assert terms["time"] == pytest.approx(-0.05)
    assert terms["finish"] == 0.0
    assert terms["speed"] == pytest.approx(0.1 * 30.0 * 0.05)
    assert terms["lateral"] == pytest.approx(-0.2 * 2.0 * 0.05)
    assert total(terms) == pytest.approx(sum(terms.values()))


def test_backwards_is_negative_and_finish_pays_once_with_the_partial_step():
    reward = Reward(RewardConfig(progress=0.01, time=0.001, finish=5.0))
    assert reward.terms(state(0), state(50), -2.0, HERE)["progress"] == pytest.approx(-0.02)
    # The backend returns the finish tick itself: a step of 20 ms instead of 50.
    terms = reward.terms(state(17590), state(17610, finished=True), 0.4, HERE)
    assert terms["time"] == pytest.approx(-0.02)
    assert terms["finish"] == 5.0
    assert reward.terms(state(17610, finished=True), state(17660, finished=True), 0.0, HERE)["finish"] == 0.0


def test_time_term_sums_to_race_time_whatever_the_step():
    reward = Reward(RewardConfig(time=0.0005))
    times = [0, 50, 100, 130, 180, 200]
    total_time = sum(reward.terms(state(a), state(b), 0.0, HERE)["time"] for a, b in zip(times, times[1:]))
    assert total_time == pytest.approx(-0.0005 * 200)


def test_defaults_break_even_and_config_checks(tmp_path):
    config = RewardConfig()
    assert config.break_even_speed == pytest.approx(10.0)  # 36 km/h
    assert RewardConfig(progress=0.01, time=6 / 5000).break_even_speed == pytest.approx(120.0)
    assert RewardConfig(progress=0.0).break_even_speed == math.inf
    with pytest.raises(ConfigError, match="time"):
        RewardConfig(time=float("nan"))
    path = tmp_path / "r.toml"
    path.write_text("[reward]\ntime = 0.002\nfinish = 0\n")
    loaded = load_toml(RewardConfig, path, "reward")
    assert loaded.time == 0.002 and loaded.finish == 0 and loaded.progress == 0.01


@pytest.fixture
def airtime():
    """A custom term, registered for one test: seconds with no wheel on the ground."""
    from tmstate.core.reward import REGISTRY, register_term

    @register_term("airtime", "seconds with no wheel on the ground")
    def value(step) -> float:
        return 0.0 if any(step.state.wheel_contact) else step.elapsed_s

    yield value
    del REGISTRY["airtime"]


def test_a_custom_term_is_weighted_by_name_and_reaches_info_and_the_log(airtime, tmp_path):
    from tmstate.env.env import TMNFEnv
    from tmstate.formats.log import read_episode

    env = TMNFEnv(backend="sim", reward={"time": 0.001, "airtime": 0.5}, log_dir=str(tmp_path),
                  termination={"time_limit_s": 1.0})
    assert env.config.reward.extra == {"airtime": 0.5} and env.config.reward.time == 0.001
    env.reset(seed=0)
    flying = GameState(race_time_ms=50, wheel_contact=(False,) * 4)
    assert env.scorer.reward.terms(GameState(), flying, 0.0, HERE)["airtime"] == pytest.approx(0.5 * 0.05)
    while True:
        _, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0], dtype=np.float32))
        assert list(info["reward_terms"]) == [*TERMS, "airtime"]
        assert reward == pytest.approx(sum(info["reward_terms"].values()))
        if terminated or truncated:
            break
    env.close()
    log = read_episode(info["log_path"])
    assert set(log.reward_terms) == {*TERMS, "airtime"} and len(log.reward_terms["airtime"]) == log.steps
    assert log.metadata["reward"]["extra"] == {"airtime": 0.5}


def test_the_batched_sim_env_refuses_a_custom_term_it_would_not_score(airtime):
    """It computed the built-in terms only: a run with a custom term trained on another reward, silently."""
    from tmstate.vector.sim import SimVectorEnv

    with pytest.raises(ConfigError, match="airtime"):
        SimVectorEnv(2, reward={"airtime": 0.5})
    SimVectorEnv(2, reward={"airtime": 0.0}).close()  # weight 0 adds nothing: the same reward


def test_env_takes_a_reward_a_config_or_a_dict(airtime):
    from tmstate.env.env import TMNFEnv

    reward = Reward(RewardConfig(time=0.002, extra={"airtime": 1.0}))
    env = TMNFEnv(backend="sim", reward=reward)
    assert env.scorer.reward is reward and env.config.reward.time == 0.002
    assert TMNFEnv(backend="sim", reward=RewardConfig(finish=3.0)).config.reward.finish == 3.0
    assert TMNFEnv(backend="sim", reward={"extra": {"airtime": 2.0}}).config.reward.weights["airtime"] == 2.0
    assert "airtime" not in Reward().terms(state(0), state(50), 0.0, HERE)  # unweighted: not in the dict


def test_weights_are_validated_against_the_registry(airtime):
    from tmstate.core.reward import register_term
    from tmstate.env.env import TMNFEnv

    with pytest.raises(ConfigError, match=r"unknown reward term 'airtme' \(registered: airtime\)"):
        TMNFEnv(backend="sim", reward={"extra": {"airtme": 1.0}})
    with pytest.raises(ConfigError, match="extra.airtime must be a finite number"):
        RewardConfig(extra={"airtime": math.nan})
    with pytest.raises(ConfigError, match="built in"):
        register_term("time")
    with pytest.raises(ConfigError, match="built in"):
        RewardConfig(extra={"time": 1.0})


def test_an_unregistered_flat_name_is_an_unknown_key(airtime):
    from tmstate.env.env import TMNFEnv

    with pytest.raises(ConfigError, match="airtme"):
        TMNFEnv(backend="sim", reward={"airtme": 1.0})

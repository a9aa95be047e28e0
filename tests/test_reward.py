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

"""Termination rules: finished, off the line, no progress, time limit (truncation)."""

from __future__ import annotations

import pytest

from tmstate.errors import ConfigError
from tmstate.core.progress import Location
from tmstate.core.state import GameState
from tmstate.core.termination import Termination, TerminationConfig

ON = Location(0.0, 0.0, 1.0, 0)


def at(t_ms: int, finished: bool = False) -> GameState:
    return GameState(race_time_ms=t_ms, finished=finished)


def test_finished_wins():
    term = Termination()
    term.reset(at(0), 0.0)
    assert term.check(at(20000, finished=True), 500.0, Location(0, 0, 99.0, 0)) == (True, False, "finished")


def test_off_line():
    term = Termination(TerminationConfig(max_distance_m=30.0))
    term.reset(at(0), 0.0)
    assert term.check(at(50), 1.0, Location(1.0, 25.0, 29.0, 2)) == (False, False, "")
    assert term.check(at(100), 2.0, Location(2.0, 31.0, 31.0, 4)) == (True, False, "off_line")


def test_no_progress_counts_race_time_since_the_last_real_gain():
    term = Termination(TerminationConfig(no_progress_s=2.0, min_progress_m=1.0))
    term.reset(at(0), 0.0)
    assert term.check(at(1000), 0.9, ON)[0] is False  # not enough yet, clock keeps running
    assert term.check(at(1500), 1.2, ON)[0] is False  # gain of 1.2 m: clock restarts at 1.5 s
    assert term.check(at(3400), 2.1, ON)[0] is False  # 1.9 s since the mark
    assert term.check(at(3600), 2.1, ON) == (True, False, "no_progress")


def test_backward_then_forward_does_not_reset_the_clock():
    term = Termination(TerminationConfig(no_progress_s=2.0, min_progress_m=1.0))
    term.reset(at(0), 10.0)
    for t, p in [(500, 8.0), (1000, 10.5), (1500, 8.0), (2000, 10.5)]:
        assert term.check(at(t), p, ON)[0] is False
    assert term.check(at(2100), 10.5, ON) == (True, False, "no_progress")


def test_time_limit_truncates_and_zero_switches_rules_off():
    term = Termination(TerminationConfig(time_limit_s=10.0, no_progress_s=0, max_distance_m=0))
    term.reset(at(0), 0.0)
    assert term.check(at(9950), 0.0, Location(0, 0, 500.0, 0)) == (False, False, "")
    assert term.check(at(10000), 0.0, ON) == (False, True, "time_limit")


def test_bad_config():
    with pytest.raises(ConfigError, match="no_progress_s"):
        TerminationConfig(no_progress_s=-1)


def test_zero_min_progress_counts_standing_still_as_moving_on():
    term = Termination(TerminationConfig(no_progress_s=1.0, min_progress_m=0.0))
    term.reset(at(0), 5.0)
    for t in range(500, 5000, 500):
        assert term.check(at(t), 5.0, ON) == (False, False, "")
    assert term.check(at(5500), 4.0, ON) == (False, False, "")  # a loss: the clock runs from 4.5 s
    assert term.check(at(6000), 4.5, ON) == (True, False, "no_progress")


def test_config_error_says_which_values_switch_a_rule_off():
    with pytest.raises(ConfigError, match=r"max_distance_m must be a number >= 0 \(0 = off\), got -1"):
        TerminationConfig(max_distance_m=-1)
    with pytest.raises(ConfigError, match=r"min_progress_m must be a number >= 0, got -1"):
        TerminationConfig(min_progress_m=-1)

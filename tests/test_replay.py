"""The replay backend: logged episodes and ghosts played back as the game."""

from __future__ import annotations

from tmstate.tools.lines import line_from_ghost

import numpy as np
import pytest

from tmstate.backends.base import backend_class
from tmstate.core.state import Action
from tmstate.errors import LogFileError
from tmstate.formats.log import EpisodeLogWriter
from tmstate.backends.replay import ReplayBackend
from tmstate.core.reward import RewardConfig, total
from tmstate.core.scoring import Scorer
from tmstate.core.state import GameState
from tmstate.core.termination import TerminationConfig


def logged_episode(directory, steps: int = 5, finish_ms: int | None = 230):
    writer = EpisodeLogWriter(directory, metadata={"action_period_ms": 50, "backend": "sim"})
    states = [GameState(race_time_ms=50 * i, position=np.array([0.0, 0.0, 2.0 * i]), yaw=0.1 * i) for i in range(steps + 1)]
    if finish_ms is not None:
        states[-1].race_time_ms = finish_ms
        states[-1].finished = True
    writer.begin(states[0])
    for s in states[1:]:
        writer.add(Action(gas=1.0), s, {"progress": 0.02}, s.finished, False)
    return writer.end(), states


def test_plays_a_log_back_in_order_and_holds_the_end(tmp_path):
    path, states = logged_episode(tmp_path)
    backend = backend_class("replay")(path)
    assert isinstance(backend, ReplayBackend) and backend.action_period_ms == 50
    first = backend.reset()
    assert first.race_time_ms == 0 and np.array_equal(first.position, states[0].position)
    got = [backend.step(Action(steer=1.0)) for _ in range(5)]  # actions are ignored
    assert [s.race_time_ms for s in got] == [50, 100, 150, 200, 230]  # the finish tick comes early
    assert got[-1].finished and not any(s.finished for s in got[:-1])
    assert np.allclose([s.position[2] for s in got], [2, 4, 6, 8, 10])
    assert backend.step(Action()).race_time_ms == 230  # held after the end


def test_interpolates_between_logged_states_and_restores(tmp_path):
    path, _ = logged_episode(tmp_path)
    backend = ReplayBackend(path, action_period_ms=20)
    backend.reset()
    s = backend.step(Action())
    assert s.race_time_ms == 20 and s.position[2] == pytest.approx(0.8) and s.yaw == pytest.approx(0.04)
    snapshot = backend.save()
    backend.step(Action())
    backend.step(Action())
    again = backend.restore(snapshot)
    assert again.race_time_ms == 20 and backend.step(Action()).race_time_ms == 40


def test_a_ghost_through_reward_and_termination(realdata):
    """A01 ghost at 50 ms steps: finishes at 17.61 s; the time term totals exactly -w * 17610."""
    backend = ReplayBackend(realdata / "replays" / "A01-Race_TAS_00_17_61.Replay.Gbx", action_period_ms=50)
    from tmstate.formats.gbx import read_ghost

    line = line_from_ghost(read_ghost(backend.path))
    scorer = Scorer(line, RewardConfig(time=0.001), TerminationConfig(no_progress_s=5.0))
    prev = backend.reset()
    scorer.reset(prev)
    time_total, steps, reason = 0.0, 0, ""
    while not reason:
        state = backend.step(Action())
        scored = scorer.step(prev, state)
        terms, reason = scored.terms, scored.reason
        time_total += terms["time"]
        prev, steps = state, steps + 1
        assert steps < 1000
    assert reason == "finished" and prev.race_time_ms == 17610 and steps == 353
    assert time_total == pytest.approx(-0.001 * 17610)
    assert scorer.progress_m == pytest.approx(line.length_m, rel=1e-6)
    assert total(terms) > 0


def test_unreadable_log_names_the_path(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"")
    with pytest.raises(LogFileError, match="empty") as info:
        ReplayBackend(bad)
    assert str(bad) in str(info.value)

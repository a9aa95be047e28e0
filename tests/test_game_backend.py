"""GameBackend ("tminterface") against the real plugin in the AngelScript harness."""

from __future__ import annotations

import numpy as np
import pytest

from tmstate.link import protocol as p
from tmstate.backends.base import backend_class
from tmstate.core.state import Action
from tmstate.errors import ConfigError
from tmstate.backends.tminterface import GameBackend, GameConfig

pytestmark = pytest.mark.harness


@pytest.fixture
def backend(harness):
    b = GameBackend(port=harness.port, frame_size=(32, 24), timeout_s=5)
    yield b
    b.close()


def test_defaults_speed_up_and_rewind_reset():
    config = GameConfig()
    assert config.game_speed > 1 and config.rewind_reset and config.prevent_finish
    assert backend_class("tminterface") is GameBackend
    with pytest.raises(ConfigError):
        GameConfig(action_period_ms=55)
    with pytest.raises(ConfigError):
        GameBackend(no_such_field=1)


def test_reset_step_and_rewind_reset(backend):
    first = backend.reset()
    assert first.race_time_ms == 0 and backend.start_blob is not None
    for i in range(20):
        state = backend.step(Action(steer=-0.5, gas=1.0))
        assert state.race_time_ms == (i + 1) * backend.action_period_ms
    assert np.linalg.norm(state.position - first.position) > 1.0
    blob = backend.start_blob
    again = backend.reset()  # rewinds to the save state, no restart
    assert backend.start_blob is blob
    assert backend.bridge.last_flags & p.StateFlag.AFTER_REWIND
    assert again.race_time_ms == 0
    assert np.array_equal(again.position, first.position) and again.yaw == first.yaw
    assert again.speed == first.speed


def test_save_and_restore(backend):
    backend.reset()
    for _ in range(5):
        backend.step(Action(gas=1.0))
    snapshot = backend.save()
    here = backend.bridge.last_state
    for _ in range(5):
        backend.step(Action(steer=1.0, gas=1.0))
    back = backend.restore(snapshot)
    assert back.race_time_ms == here.race_time_ms
    assert np.array_equal(back.position, here.position)


def test_frames_are_rgb_auto_or_requested(backend):
    backend.reset()
    backend.step(Action(gas=1.0))
    auto = backend.frame(32, 24)  # the auto frame that came with the STATE
    assert auto.shape == (24, 32, 3) and auto.dtype == np.uint8
    bgra = backend.bridge.last_frame
    assert np.array_equal(auto, bgra[..., 2::-1])
    other = backend.frame(40, 30)  # another size: a REQUEST_FRAME round trip
    assert other.shape == (30, 40, 3) and other.dtype == np.uint8


def test_reconnects_on_reset_after_the_connection_was_lost(backend):
    backend.reset()
    backend.step(Action(gas=1.0))
    backend.bridge.close()
    state = backend.reset()
    assert state.race_time_ms == 0 and backend.bridge.connected

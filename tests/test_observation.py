"""Observation types (telemetry, frames, dict, frame sources) and action types."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tmstate.env.action import DISCRETE_ACTIONS, ContinuousAction, DiscreteAction, action_type
from tmstate.backends.base import Backend
from tmstate.core.state import Action
from tmstate.errors import ActionError, ConfigError
from tmstate.env.observation import (
    TELEMETRY_FEATURES,
    BackendFrames,
    DictObservation,
    FramesObservation,
    ObservationConfig,
    RenderedFrames,
    TelemetryObservation,
    observation_type,
)
from tmstate.core.progress import ProgressTracker
from tmstate.core.reference import ReferenceLine
from tmstate.core.state import GameState

F = len(TELEMETRY_FEATURES)


@pytest.fixture(scope="module")
def line() -> ReferenceLine:
    """200 m straight along +z, then nothing: simple to reason about."""
    return ReferenceLine.from_points([[0.0, 0.0, 0.0], [0.0, 0.0, 200.0]], spacing_m=0.5)


def locate(line, state):
    return ProgressTracker(line).reset(state.position)


# --- telemetry ------------------------------------------------------------------------


def test_telemetry_on_the_line_heading_along_it(line):
    obs_type = TelemetryObservation(line, points=3, spacing_m=10.0)
    state = GameState(position=np.array([0.0, 0.0, 20.0]), velocity=np.array([0.0, 0.0, 25.0]), yaw=0.0,
                      gear=2, rpm=5000.0, wheel_contact=(True, True, False, True), steer=-0.5, gas=1.0)
    obs = obs_type.observe(state, locate(line, state))
    assert obs.shape == (F + 6,) and obs.dtype == np.float32 and obs_type.space().contains(obs)
    np.testing.assert_allclose(obs[:F], [0.5, 0.5, 0.0, 0.0, 0.4, 0.5, 1, 1, 0, 1, 0.0, 0.0, 1.0,
                                         -0.5, 1.0, 0.0, 0.1], atol=1e-6)
    np.testing.assert_allclose(obs[F:].reshape(3, 2), [[0.0, 0.2], [0.0, 0.4], [0.0, 0.6]], atol=1e-6)


def test_telemetry_offset_and_turned_car(line):
    obs_type = TelemetryObservation(line, points=2, spacing_m=10.0)
    # 2 m right of the line (+x is the driver's right facing +z), turned 0.3 rad to the right.
    yaw = 0.3
    speed = 20.0
    state = GameState(position=np.array([2.0, 0.0, 50.0]),
                      velocity=np.array([math.sin(yaw) * speed, 0.0, math.cos(yaw) * speed]), yaw=yaw)
    obs = obs_type.observe(state, locate(line, state))
    assert obs[10] == pytest.approx(0.2, abs=1e-6)  # lateral / 10 m
    assert obs[11] == pytest.approx(math.sin(0.3), abs=1e-6)  # heading error, + = right of the line
    assert obs[12] == pytest.approx(math.cos(0.3), abs=1e-6)
    assert obs[1] == pytest.approx(speed / 50.0, abs=1e-6) and obs[2] == pytest.approx(0.0, abs=1e-6)
    # The point 10 m ahead on the line, seen from the car: to its left and ahead.
    dx, dz = -2.0, 10.0
    right = dx * math.cos(yaw) - dz * math.sin(yaw)
    ahead = dx * math.sin(yaw) + dz * math.cos(yaw)
    np.testing.assert_allclose(obs[F:F + 2], [right / 50.0, ahead / 50.0], atol=1e-6)
    assert obs[F] < 0


def test_telemetry_points_continue_past_the_finish(line):
    obs_type = TelemetryObservation(line, points=2, spacing_m=10.0)
    state = GameState(position=np.array([0.0, 0.0, 195.0]))
    obs = obs_type.observe(state, locate(line, state))
    np.testing.assert_allclose(obs[F:].reshape(2, 2), [[0.0, 0.2], [0.0, 0.4]], atol=1e-6)


def test_telemetry_is_clipped_to_its_space(line):
    obs_type = TelemetryObservation(line, points=1)
    state = GameState(position=np.array([0.0, 0.0, 10.0]), velocity=np.array([0.0, 0.0, 900.0]))
    obs = obs_type.observe(state, locate(line, state))
    assert obs[0] == 10.0 and obs_type.space().contains(obs)


# --- frames ---------------------------------------------------------------------------


class CountingSource:
    """Frames whose pixels all hold the call number (RGB = n, 2n, 3n)."""

    def __init__(self, width, height):
        self.n = 0
        self.width, self.height = width, height

    def __call__(self, state):
        self.n += 1
        frame = np.zeros((self.height, self.width, 3), np.uint8)
        frame[:] = (self.n, 2 * self.n, 3 * self.n)
        return frame


def test_frame_stack_keeps_the_newest_last(line):
    obs_type = FramesObservation(CountingSource(8, 6), 8, 6, grayscale=False, stack=3)
    state = GameState()
    loc = locate(line, state)
    first = obs_type.reset(state, loc)
    assert first.shape == (6, 8, 9) and first.dtype == np.uint8
    assert np.all(first[..., 0::3] == 1)  # reset fills the stack with the first frame
    obs_type.observe(state, loc)
    third = obs_type.observe(state, loc)
    assert list(third[0, 0, 0::3]) == [1, 2, 3] and list(third[0, 0, 2::3]) == [3, 6, 9]
    third_copy = third.copy()
    obs_type.observe(state, loc)
    np.testing.assert_array_equal(third, third_copy)  # observations are copies, not views


@pytest.mark.parametrize("channels, stack", [(1, 4), (3, 3), (1, 1)])
def test_frame_stack_of_many_views_is_a_channel_shift_newest_last(channels, stack):
    """FrameStack moves its whole buffer at once; it must equal shifting each view's channels."""
    from tmstate.env.observation import FrameStack

    rng = np.random.default_rng(0)
    n, h, w = 5, 4, 6
    frames = FrameStack(n, h, w, channels, stack)
    reference = np.zeros((n, h, w, channels * stack), np.uint8)
    for k in range(12):
        new = rng.integers(0, 256, (n, h, w, channels), dtype=np.uint8)
        if k % 5 == 0:  # some views start again: every slot holds their frame
            idx = np.array([0, 3]) if k else np.arange(n)
            frames.fill(idx, new[idx])
            reference[idx] = np.concatenate([new[idx]] * stack, axis=-1)
        else:
            frames.push(new)
            reference[..., :-channels] = reference[..., channels:].copy()
            reference[..., -channels:] = new
        obs = frames.observation()
        np.testing.assert_array_equal(obs, reference)
        obs[:] = 0  # the observation is a copy: writing it leaves the stack alone
    np.testing.assert_array_equal(frames.observation(), reference)


def test_grayscale_frames_are_resized_to_the_space(line):
    obs_type = FramesObservation(CountingSource(16, 12), 8, 6, grayscale=True, stack=2)
    obs = obs_type.reset(GameState(), locate(line, GameState()))
    assert obs.shape == (6, 8, 2) and obs_type.space().contains(obs)
    assert obs[0, 0, 0] == round(0.299 * 1 + 0.587 * 2 + 0.114 * 3)


class NoFrames(Backend):
    def reset(self, seed=None):
        return GameState()

    def step(self, action):
        return GameState()

    def save(self):
        return b""

    def restore(self, snapshot):
        return GameState()


def test_backend_without_frames_falls_back_to_rendered_views(line):
    rendered = RenderedFrames(line, 32, 24)
    source = BackendFrames(NoFrames(), 32, 24, fallback=rendered)
    frame = source(GameState(position=np.array([0.0, 0.0, 10.0])))
    assert frame.shape == (24, 32, 3) and frame.std() > 0
    with pytest.raises(ConfigError, match="gives no frames"):
        BackendFrames(NoFrames(), 32, 24)(GameState())


def test_dict_observation_and_factory(line):
    config = ObservationConfig(type="dict", width=32, height=24, stack=2, frame_source="render", lookahead_points=4)
    obs_type = observation_type(config, NoFrames(), line)
    assert isinstance(obs_type, DictObservation)
    state = GameState(position=np.array([0.0, 0.0, 10.0]))
    obs = obs_type.reset(state, locate(line, state))
    assert set(obs) == {"frames", "telemetry"} and obs_type.space().contains(obs)
    assert obs["frames"].shape == (24, 32, 2) and obs["telemetry"].shape == (F + 8,)


def test_observation_config_is_checked():
    with pytest.raises(ConfigError, match="observation type"):
        ObservationConfig(type="lidar")
    with pytest.raises(ConfigError, match="frame_source"):
        ObservationConfig(frame_source="webcam")
    with pytest.raises(ConfigError):
        ObservationConfig(stack=0)


# --- actions --------------------------------------------------------------------------


def test_continuous_action_mapping():
    act = ContinuousAction(brake_threshold=0.5)
    assert act.space().shape == (2,)
    assert act.to_input(np.array([0.25, 0.75], np.float32)) == Action(0.25, 0.75, False)
    assert act.to_input([-1.0, 0.0]) == Action(-1.0, 0.0, False)  # coast
    assert act.to_input([0.0, -0.4]) == Action(0.0, 0.0, False)  # inside the dead zone: coast
    assert act.to_input([0.0, -0.5]) == Action(0.0, 0.0, True)  # brake
    assert act.to_input([0.0, -1.0]) == Action(0.0, 0.0, True)
    assert act.to_input(np.float32([1.0, 1.0])).analog_steer == 65536
    assert ContinuousAction(brake_threshold=0.0).to_input([0.0, -0.01]).brake


@pytest.mark.parametrize("bad", [[float("nan"), 0.0], [0.0, float("inf")], [1.5, 0.0], [0.0, -1.2], [0.0], [0.0, 1.0, 0.0], "go"])
def test_continuous_action_refuses_bad_input(bad):
    with pytest.raises(ActionError):
        ContinuousAction().to_input(bad)


def test_discrete_actions_are_the_twelve_combinations():
    act = DiscreteAction()
    assert act.space().n == 12
    combos = {(a.steer, a.gas, a.brake) for a in DISCRETE_ACTIONS}
    assert combos == {(s, g, b) for s in (-1.0, 0.0, 1.0) for g, b in ((1.0, False), (0.0, False), (0.0, True), (1.0, True))}
    assert act.to_input(0) == Action(0.0, 1.0, False)
    assert act.to_input(np.int64(2)) == Action(1.0, 1.0, False)
    assert act.to_input(np.array(4)) == Action(-1.0, 0.0, False)


@pytest.mark.parametrize("bad", [12, -1, 1.0, True, np.float32(3), "3"])
def test_discrete_action_refuses_bad_input(bad):
    with pytest.raises(ActionError):
        DiscreteAction().to_input(bad)


def test_unknown_action_type():
    with pytest.raises(ConfigError, match="continuous"):
        action_type("joystick")

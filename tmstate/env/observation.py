"""Observation types: what the agent sees, picked by ``ObservationConfig.type``.

Small classes in the manner of highway-env's ``envs/common/observation.py``:

- ``"telemetry"`` — :class:`TelemetryObservation`, a float32 vector (layout in
  :data:`TELEMETRY_FEATURES`): speed, velocity in the car's frame, yaw rate, gear, rpm,
  wheel contacts, lateral offset and heading error to the reference line, the inputs in
  force, progress, then the next K reference points in the car's frame.
- ``"frames"`` — :class:`FramesObservation`, the last N images, uint8 ``(H, W, C x N)``
  (C = 1 grey or 3 RGB, newest last), channel-last as stable-baselines3's CNN expects.
- ``"dict"`` — :class:`DictObservation`, ``{"frames": ..., "telemetry": ...}``.

Frames come from a *frame source* (``ObservationConfig.frame_source``):

- ``"backend"`` — ``backend.frame(w, h)``: the plugin's CaptureScreenshot in the game, the
  simulator's render in the sim;
- ``"render"`` — a schematic view drawn from the state on the reference line's corridor
  (:class:`tmstate.backends.sim.render.TrackRenderer`): works for every backend, including replays;
- ``"auto"`` (default) — the backend's frame when it has one, else ``"render"``;
- ``"x11"`` — the game window's pixels through X11 (:mod:`tmstate.env.xwindow`), for a game
  whose plugin cannot capture.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np
from gymnasium import spaces

from tmstate.backends.base import Backend
from tmstate.errors import ConfigError
from tmstate.core.progress import Location
from tmstate.core.reference import ReferenceLine
from tmstate.core.state import GameState

TELEMETRY_FEATURES: tuple[str, ...] = (
    "speed / 50 m/s",
    "forward velocity / 50 m/s",
    "sideways velocity (+ right) / 10 m/s",
    "yaw rate / 2 rad/s",
    "gear / 5",
    "rpm / 10000",
    "wheel contact FL", "wheel contact FR", "wheel contact RR", "wheel contact RL",
    "lateral offset from the line (+ right) / 10 m",
    "sin heading error (+ car points right of the line)",
    "cos heading error",
    "steer in force", "gas in force", "brake in force",
    "progress along the line / line length",
)
"""The fixed features at the start of the telemetry vector; then 2 per reference point:
(right, forward) offset of the point in the car's frame / 50 m."""

TELEMETRY_BOUND = 10.0
"""Telemetry values are clipped to ±this (the space's bounds)."""

FRAME_SOURCES = ("auto", "backend", "render", "x11")

TABLE_STEP_M = 0.1
"""Arc-length step of the table the telemetry reads reference points from."""


@dataclass
class ObservationConfig:
    """What the agent observes (see the module doc). A plain string in a config names the type."""

    CONFIG_SHORTHAND: ClassVar[str] = "type"  # observation = "frames" is {type = "frames"}
    type: str = "telemetry"  # telemetry | frames | dict
    width: int = 64  # frame width, pixels
    height: int = 64  # frame height, pixels
    grayscale: bool = True
    stack: int = 4  # frames stacked (newest last)
    frame_source: str = "auto"  # auto | backend | render | x11
    camera: str = "chase"  # camera of rendered frames: chase | driver | top
    lookahead_points: int = 10  # reference points in the telemetry
    lookahead_spacing_m: float = 10.0  # metres between those points along the line
    window_title: str = "TrackMania"  # x11 source: a substring of the game window's title
    window_pid: int = 0  # x11 source: the game's process id (0 = match by title only)
    window_display: str = ""  # x11 source: the X display of the game's window ("" = $DISPLAY)

    def __post_init__(self) -> None:
        if self.type not in OBSERVATION_TYPES:
            raise ConfigError(f"unknown observation type {self.type!r}; choose one of {', '.join(OBSERVATION_TYPES)}")
        if self.frame_source not in FRAME_SOURCES:
            raise ConfigError(f"unknown frame_source {self.frame_source!r}; choose one of {', '.join(FRAME_SOURCES)}")
        if self.width < 1 or self.height < 1 or self.stack < 1:
            raise ConfigError(f"frames need width, height and stack >= 1, got {self.width}x{self.height} x{self.stack}")
        if self.lookahead_points < 0 or not self.lookahead_spacing_m > 0:
            raise ConfigError("lookahead_points must be >= 0 and lookahead_spacing_m > 0, got "
                              f"{self.lookahead_points} and {self.lookahead_spacing_m}")


class ObservationType(abc.ABC):
    """Builds observations from game states."""

    @abc.abstractmethod
    def space(self) -> spaces.Space:
        """The Gymnasium observation space."""

    def reset(self, state: GameState, location: Location) -> Any:
        """The first observation of an episode (clears any history)."""
        return self.observe(state, location)

    @abc.abstractmethod
    def observe(self, state: GameState, location: Location) -> Any:
        """The observation after a step."""

    def close(self) -> None:
        """Release windows or connections the type holds."""


class TelemetryObservation(ObservationType):
    """A float32 vector: :data:`TELEMETRY_FEATURES`, then K reference points in the car's frame."""

    def __init__(self, line: ReferenceLine, points: int = 10, spacing_m: float = 10.0) -> None:
        self.line = line
        self.points = int(points)
        self.offsets = spacing_m * np.arange(1, self.points + 1)
        self.size = len(TELEMETRY_FEATURES) + 2 * self.points
        self._space = spaces.Box(-TELEMETRY_BOUND, TELEMETRY_BOUND, shape=(self.size,), dtype=np.float32)
        per_m = line.segment_vectors[:, [0, 2]] / line.segment_lengths[:, None]
        self._dir = (per_m / np.maximum(np.linalg.norm(per_m, axis=1, keepdims=True), 1e-12)).tolist()
        # The line's (x, z) every TABLE_STEP_M of arc length, extended straight past the
        # finish far enough for the farthest look-ahead point: a look-up replaces a search
        # per step (the points are then at most TABLE_STEP_M / 2 off the line's vertices).
        beyond = float(self.offsets[-1]) + 1.0 if self.points else 1.0
        arcs = np.arange(0.0, line.length_m + beyond, TABLE_STEP_M)
        seg = np.minimum(np.searchsorted(line.cumulative_m, arcs, side="right") - 1, len(per_m) - 1)
        self._table = line.points[seg][:, [0, 2]] + (arcs - line.cumulative_m[seg])[:, None] * per_m[seg]
        self._table_last = len(arcs) - 1
        self._steps = self.offsets / TABLE_STEP_M
        self._length = line.length_m
        self._rotation = np.zeros((2, 2))

    def space(self) -> spaces.Box:
        return self._space

    def observe(self, state: GameState, location: Location) -> np.ndarray:
        yaw = state.yaw
        s, c = math.sin(yaw), math.cos(yaw)
        vx, vy, vz = state.velocity.tolist()
        dx, dz = self._dir[location.index]
        contact = state.wheel_contact
        features = [
            math.sqrt(vx * vx + vy * vy + vz * vz) / 50.0,
            (vx * s + vz * c) / 50.0,  # forward
            (vx * c - vz * s) / 10.0,  # sideways, + right
            float(state.angular_velocity[1]) / 2.0,
            state.gear / 5.0,
            state.rpm / 10000.0,
            float(contact[0]), float(contact[1]), float(contact[2]), float(contact[3]),
            location.lateral_m / 10.0,
            s * dz - c * dx,  # sin of the heading error: + when the car points right of the line
            s * dx + c * dz,  # cos of the heading error
            state.steer, state.gas, state.brake,
            location.arc_length_m / self._length,
        ]
        out = np.empty(self.size, dtype=np.float64)
        fixed = len(TELEMETRY_FEATURES)
        out[:fixed] = features
        if self.points:
            k = (self._steps + (location.arc_length_m / TABLE_STEP_M + 0.5)).astype(np.intp)
            np.minimum(k, self._table_last, out=k)
            xz = self._table[k]
            xz -= state.position[::2]
            r = self._rotation  # [right, forward] = [dx, dz] @ [[c, s], [-s, c]] / 50
            r[0, 0] = r[1, 1] = c / 50.0
            r[0, 1] = s / 50.0
            r[1, 0] = -s / 50.0
            np.matmul(xz, r, out=out[fixed:].reshape(-1, 2))
        np.minimum(out, TELEMETRY_BOUND, out=out)
        np.maximum(out, -TELEMETRY_BOUND, out=out)
        return out.astype(np.float32)


FrameSource = Callable[[GameState], np.ndarray]
"""A function giving the current RGB frame (H, W, 3) uint8 for a state."""


class FrameStack:
    """The last ``stack`` frames of ``n`` views, uint8 (n, H, W, C x stack), newest last.

    A push moves the whole buffer by C bytes (one contiguous move: every pixel's channels
    shift by one frame, the oldest falls out) and writes the newest frame into the last C
    channels. (Slicing the channel axis instead moves each pixel's few bytes one by one:
    about 10x slower for 64 views of 64x64.) The frame stack of :class:`FramesObservation`
    (n = 1) and of the batched simulator (:class:`tmstate.vector.sim.SimVectorEnv`) alike.
    """

    def __init__(self, n: int, height: int, width: int, channels: int, stack: int) -> None:
        self.channels, self.stack = int(channels), int(stack)
        self._buffer = np.zeros((n, height, width, self.channels * self.stack), dtype=np.uint8)

    def fill(self, index: Any, frames: np.ndarray) -> None:
        """Views ``index`` start again: every slot of their stack holds ``frames`` ((len, H, W, C))."""
        self._buffer[index] = np.concatenate([frames] * self.stack, axis=-1) if self.stack > 1 else frames

    def push(self, frames: np.ndarray) -> None:
        """The newest frame of every view ((n, H, W, C)); the oldest is dropped."""
        c = self.channels
        if self.stack > 1:
            flat = self._buffer.reshape(-1)
            flat[:-c] = flat[c:]  # channel k + C of every pixel into channel k (the last C are overwritten next)
        self._buffer[..., -c:] = frames

    def observation(self) -> np.ndarray:
        """(n, H, W, C x stack), oldest frame first: a copy."""
        return self._buffer.copy()


class FramesObservation(ObservationType):
    """The last ``stack`` frames, uint8 (H, W, C x stack), newest last."""

    def __init__(self, source: FrameSource, width: int, height: int, grayscale: bool = True, stack: int = 4) -> None:
        self.source = source
        self.width, self.height = int(width), int(height)
        self.grayscale = grayscale
        self.channels = 1 if grayscale else 3
        self.stack = int(stack)
        shape = (self.height, self.width, self.channels * self.stack)
        self._space = spaces.Box(0, 255, shape=shape, dtype=np.uint8)
        self._frames = FrameStack(1, self.height, self.width, self.channels, self.stack)

    def space(self) -> spaces.Box:
        return self._space

    def _frame(self, state: GameState) -> np.ndarray:
        frame = self.source(state)
        if frame.shape[0] != self.height or frame.shape[1] != self.width:
            frame = cv2.resize(frame, (self.width, self.height), interpolation=cv2.INTER_AREA)
        if self.grayscale:
            return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[:, :, None] if frame.ndim == 3 else frame[:, :, None]
        return frame

    def reset(self, state: GameState, location: Location) -> np.ndarray:
        self._frames.fill(0, self._frame(state))
        return self._frames.observation()[0]

    def observe(self, state: GameState, location: Location) -> np.ndarray:
        self._frames.push(self._frame(state)[None])
        return self._frames.observation()[0]

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if close is not None:
            close()


class DictObservation(ObservationType):
    """``{"frames": FramesObservation, "telemetry": TelemetryObservation}``."""

    def __init__(self, frames: FramesObservation, telemetry: TelemetryObservation) -> None:
        self.frames = frames
        self.telemetry = telemetry
        self._space = spaces.Dict({"frames": frames.space(), "telemetry": telemetry.space()})

    def space(self) -> spaces.Dict:
        return self._space

    def reset(self, state: GameState, location: Location) -> dict[str, np.ndarray]:
        return {"frames": self.frames.reset(state, location), "telemetry": self.telemetry.reset(state, location)}

    def observe(self, state: GameState, location: Location) -> dict[str, np.ndarray]:
        return {"frames": self.frames.observe(state, location), "telemetry": self.telemetry.observe(state, location)}

    def close(self) -> None:
        self.frames.close()


OBSERVATION_TYPES = ("telemetry", "frames", "dict")


class RenderedFrames:
    """Frame source ``"render"``: the schematic view of a state on the line's corridor."""

    def __init__(self, line: ReferenceLine, width: int, height: int, camera: str = "chase",
                 width_m: float | None = None) -> None:
        from tmstate.backends.sim.render import TrackRenderer, camera as check_camera

        check_camera(camera)
        self.renderer = TrackRenderer(line, width_m)
        self.width, self.height, self.camera = width, height, camera

    def __call__(self, state: GameState) -> np.ndarray:
        return self.renderer.view(float(state.position[0]), float(state.position[2]), state.yaw,
                                  self.width, self.height, self.camera)


class BackendFrames:
    """Frame source ``"backend"`` (or ``"auto"`` with a fallback for backends without frames)."""

    def __init__(self, backend: Backend, width: int, height: int, fallback: RenderedFrames | None = None) -> None:
        self.backend = backend
        self.width, self.height = width, height
        self.fallback = fallback
        self._has_frames: bool | None = None

    def __call__(self, state: GameState) -> np.ndarray:
        if self._has_frames is not False:
            frame = self.backend.frame(self.width, self.height)
            if frame is not None:
                self._has_frames = True
                return frame
            self._has_frames = False
        if self.fallback is None:
            raise ConfigError(f"the {type(self.backend).__name__} backend gives no frames; "
                              "use frame_source 'render' or 'auto'")
        return self.fallback(state)


class WindowFrames:
    """Frame source ``"x11"``: the game window's client area (see :mod:`tmstate.env.xwindow`)."""

    def __init__(self, title: str, pid: int, width: int, height: int, display: str = "") -> None:
        from tmstate.env.xwindow import WindowCapture

        self.capture = WindowCapture.find(title=title or None, pid=pid or None, display=display or None)
        self.width, self.height = width, height

    def __call__(self, state: GameState) -> np.ndarray:
        return self.capture.grab(self.width, self.height)

    def close(self) -> None:
        self.capture.close()


def frame_source(config: ObservationConfig, backend: Backend, line: ReferenceLine) -> FrameSource:
    """The frame source the config names."""
    w, h = config.width, config.height
    if config.frame_source == "x11":
        return WindowFrames(config.window_title, config.window_pid, w, h, config.window_display)
    rendered = RenderedFrames(line, w, h, config.camera)
    if config.frame_source == "render":
        return rendered
    return BackendFrames(backend, w, h, rendered if config.frame_source == "auto" else None)


def observation_type(config: ObservationConfig, backend: Backend, line: ReferenceLine) -> ObservationType:
    """The observation type the config names, wired to ``backend`` and ``line``."""
    if config.type == "telemetry":
        return TelemetryObservation(line, config.lookahead_points, config.lookahead_spacing_m)
    frames = FramesObservation(frame_source(config, backend, line), config.width, config.height,
                               config.grayscale, config.stack)
    if config.type == "frames":
        return frames
    return DictObservation(frames, TelemetryObservation(line, config.lookahead_points, config.lookahead_spacing_m))

"""``tmstate demo``: drive a simulator track with a line-following controller, through the env.

The controller (:class:`LineFollower`) is deliberately simple: pure-pursuit steering
towards a point ahead on the reference line, and a speed target from the sharpest bend
within braking distance. The demo runs one episode of :class:`tmstate.env.env.TMNFEnv` on the
``sim`` backend (the embedded simulator — a simplified car, not TMNF physics), logs it,
prints the race time and the return, and writes a PNG summary (the track with the driven
path coloured by speed; the reward terms over time) and a short GIF of the frames.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tmstate.env.env import TMNFEnv
from tmstate.errors import ConfigError
from tmstate.files import atomic_write_bytes, ensure_folder
from tmstate.core.progress import Location
from tmstate.core.reference import ReferenceLine
from tmstate.backends.sim.model import CarParams, Handling, PreviousCar, load_car
from tmstate.backends.sim.track import track_names
from tmstate.core.state import GameState
from tmstate.errors import TmstateError


class LineFollower:
    """Pure pursuit on the reference line with a curvature-based speed target.

    Steering inverts the car model's steady turn (:class:`~tmstate.backends.sim.model.Handling`:
    the wheel angle a curvature needs at this speed, over the speed-dependent full lock); the
    speed target keeps ``grip_fraction`` of the car's grip in the sharpest bend within
    braking distance.
    """

    def __init__(self, line: ReferenceLine, car: CarParams | PreviousCar | None = None,
                 grip_fraction: float = 0.8) -> None:
        self.line = line
        self.handling = Handling(car if car is not None else load_car())
        self.grip_fraction = grip_fraction
        t = line.tangents[:, [0, 2]]
        heading = np.unwrap(np.arctan2(t[:, 0], t[:, 1]))
        self._cum = line.cumulative_m
        curvature = np.abs(np.gradient(heading, self._cum))
        # A line from a ghost is as noisy as the car's path: judge bends over ~8 m, not 0.5 m.
        spacing = max(float(np.median(np.diff(self._cum))), 1e-3) if len(self._cum) > 1 else 1.0
        width = max(1, int(round(8.0 / spacing)))
        self._curvature = np.convolve(curvature, np.ones(width) / width, mode="same")

    def act(self, state: GameState, location: Location) -> np.ndarray:
        """The continuous action (steer, gas - brake) for this state."""
        h = self.handling
        speed = state.speed
        arc = location.arc_length_m
        target = self.line.point_at(arc + 4.0 + 0.35 * speed)
        dx, dz = target[0] - state.position[0], target[2] - state.position[2]
        s, co = math.sin(state.yaw), math.cos(state.yaw)
        right, ahead = dx * co - dz * s, dx * s + dz * co
        distance = max(math.hypot(right, ahead), 1e-3)
        curvature = 2.0 * right / (distance * distance)  # pure pursuit: circle through the target
        steer = h.steer_for_curvature(curvature, speed)
        grip = h.grip(speed) * self.grip_fraction
        window = (self._cum >= arc) & (self._cum <= arc + 10.0 + speed * speed / (2.0 * h.brake_mps2 * 0.75))
        sharpest = float(self._curvature[window].max()) if window.any() else 0.0
        limit = math.sqrt(grip / max(sharpest, 1e-4))
        pedal = 1.0 if speed < limit else (-1.0 if speed > limit + 2.0 else 0.0)
        return np.array([steer, pedal], dtype=np.float32)


@dataclass
class DemoResult:
    """What one demo episode did."""

    track: str
    finished: bool
    race_time_ms: int
    episode_return: float
    termination_reason: str
    steps: int
    positions: np.ndarray = field(repr=False)  # (T, 3)
    speeds: np.ndarray = field(repr=False)  # (T,)
    times_ms: np.ndarray = field(repr=False)  # (T,)
    reward_terms: dict[str, np.ndarray] = field(repr=False)
    log_path: Path | None = None
    summary_path: Path | None = None
    video_path: Path | None = None


def _current(env: TMNFEnv) -> GameState:
    """The env's state after reset()/step() (None only before the first reset)."""
    if env.state is None:
        raise TmstateError("the env has no state yet: call reset() first")
    return env.state


def _where(env: TMNFEnv) -> Location:
    """The env's location on its line after reset()/step()."""
    if env.location is None:
        raise TmstateError("the env has no location yet: call reset() first")
    return env.location


def run_demo(track: str | None = None, out: str | Path | None = None, seed: int = 0, video: bool = True,
             frame_every: int = 2, frame_size: tuple[int, int] = (240, 160), progress: bool = False) -> DemoResult:
    """Drive one episode; with ``out``, log it there and write ``summary.png`` (and ``demo.gif``)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"the seed must be a whole number >= 0, got {seed!r}")
    track = track or track_names()[0]
    out_dir = ensure_folder(out, "--out folder") if out is not None else None
    env = TMNFEnv(
        map=track, backend="sim", render_mode="rgb_array" if video else None,
        log_dir=str(out_dir / "logs") if out_dir is not None else "",
        render_width=frame_size[0], render_height=frame_size[1],
    )
    sim: Any = env.backend  # the simulator backend (map is a sim track): its cars and corridor
    controller = LineFollower(env.line, sim.cars.model)
    frames: list[np.ndarray] = []
    positions, speeds, times = [], [], []
    terms: dict[str, list[float]] = {}
    episode_return = 0.0
    info: dict = {}
    bar = _progress_bar(progress, track)
    try:
        env.reset(seed=seed)
        state = _current(env)
        positions.append(state.position.copy())
        speeds.append(state.speed)
        times.append(state.race_time_ms)
        if video:
            frames.extend(f for f in [env.render()] if f is not None)
        steps = 0
        while True:
            action = controller.act(_current(env), _where(env))
            _, reward, terminated, truncated, info = env.step(action)
            steps += 1
            episode_return += reward
            state = _current(env)
            positions.append(state.position.copy())
            speeds.append(state.speed)
            times.append(state.race_time_ms)
            for name, value in info["reward_terms"].items():
                terms.setdefault(name, []).append(value)
            if video and steps % frame_every == 0:
                frames.extend(f for f in [env.render()] if f is not None)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(time_s=f"{state.race_time_ms / 1000:.2f}", speed_kmh=state.display_speed_kmh, refresh=False)
            if terminated or truncated:
                break
    finally:
        if bar is not None:
            bar.close()
        env.close()
    result = DemoResult(
        track=track, finished=bool(info.get("finished")), race_time_ms=int(times[-1]),
        episode_return=float(episode_return), termination_reason=info.get("termination_reason", ""),
        steps=steps, positions=np.array(positions), speeds=np.array(speeds), times_ms=np.array(times),
        reward_terms={k: np.array(v) for k, v in terms.items()},
        log_path=Path(info["log_path"]) if "log_path" in info else None,
    )
    if out_dir is not None:
        result.summary_path = write_summary(result, env.line, sim.cars.corridor.width_m, out_dir / "summary.png")
        if video and frames:
            result.video_path = write_gif(frames, out_dir / "demo.gif", fps=max(1, round(1000 / (env.config.action_period_ms * frame_every))))
    return result


def title_text(track: str, status: str, width: int = 48) -> str:
    """The map panel's title, wrapped so a long track path never runs off the figure: the
    file name of a path (its folder is in the log), then the status on its own line."""
    import textwrap

    name = Path(track).name if ("/" in track or "\\" in track) else track
    return "\n".join(textwrap.wrap(name, width) + [f"(simulator, not TMNF physics): {status}"])


def _progress_bar(enabled: bool, track: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(desc=f"driving {track}", unit="step")


def write_summary(result: DemoResult, line: ReferenceLine, width_m: float, path: Path) -> Path:
    """PNG: the track with the driven path coloured by speed, and the reward terms over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    from tmstate.tools.plot import save_figure
    from tmstate.backends.sim.track import Corridor

    left, right = Corridor(line, width_m).edges()
    fig, (ax_map, ax_terms) = plt.subplots(1, 2, figsize=(13, 5.5), dpi=110, gridspec_kw={"width_ratios": [1.1, 1]})
    ax_map.fill(np.concatenate([left[:, 0], right[::-1, 0]]), np.concatenate([left[:, 1], right[::-1, 1]]),
                color="0.85", zorder=0)
    ax_map.plot(left[:, 0], left[:, 1], color="0.4", lw=0.8)
    ax_map.plot(right[:, 0], right[:, 1], color="0.4", lw=0.8)
    ax_map.plot(line.points[:, 0], line.points[:, 2], color="0.6", lw=0.6, ls="--", label="reference line")
    xz = result.positions[:, [0, 2]]
    segments = np.stack([xz[:-1], xz[1:]], axis=1)
    kmh = result.speeds * 3.6
    collection = LineCollection(list(segments), cmap="viridis", linewidths=2.5)
    collection.set_array(0.5 * (kmh[:-1] + kmh[1:]))
    ax_map.add_collection(collection)
    fig.colorbar(collection, ax=ax_map, label="speed (km/h)")
    for i, arc in enumerate(line.metadata.checkpoints_m):
        p = line.point_at(arc)
        ax_map.plot(p[0], p[2], "s", color="tab:blue", ms=7, label="checkpoint" if i == 0 else None)
    ax_map.plot(*line.points[0, [0, 2]], "o", color="tab:green", ms=8, label="start")
    ax_map.plot(*line.points[-1, [0, 2]], "*", color="tab:red", ms=12, label="finish")
    ax_map.set_aspect("equal")
    ax_map.set_xlabel("x (m)")
    ax_map.set_ylabel("z (m)")
    ax_map.legend(loc="best", fontsize=8)
    status = f"finished in {result.race_time_ms / 1000:.2f} s" if result.finished else f"ended: {result.termination_reason}"
    ax_map.set_title(title_text(result.track, status), fontsize=10)
    t = result.times_ms[1:] / 1000.0
    for name, values in result.reward_terms.items():
        if np.any(values):
            ax_terms.plot(t, np.cumsum(values), label=f"{name} (sum {values.sum():+.3f})")
    total = np.sum(list(result.reward_terms.values()), axis=0) if result.reward_terms else np.zeros(0)
    ax_terms.plot(t, np.cumsum(total), color="k", lw=2, label=f"return {result.episode_return:+.3f}")
    ax_terms.axhline(0.0, color="0.7", lw=0.8)
    ax_terms.set_xlabel("race time (s)")
    ax_terms.set_ylabel("cumulative reward")
    ax_terms.set_title("reward terms over the episode")
    ax_terms.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


def write_gif(frames: list[np.ndarray], path: Path, fps: int = 10) -> Path:
    """An animated GIF of RGB frames (imageio, Pillow plugin), written atomically."""
    import imageio.v3 as iio

    buffer = io.BytesIO()
    iio.imwrite(buffer, np.stack(frames), extension=".gif", duration=int(1000 / fps), loop=0)
    atomic_write_bytes(path, buffer.getvalue())
    return path

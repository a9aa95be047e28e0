"""Real TMNF car motion from ``.Replay.Gbx`` ghosts, for fitting and checking the simulator car.

:func:`read_motion` reads the first ghost of a replay through the PyPI parser ``tmnf-gbx``
(imported as ``gbx``) and keeps what a car model needs, as arrays:

- per sample (every ``samplePeriod`` ms, 50 or 100 in the shared ghosts): position,
  world velocity, yaw / pitch / roll from the rotation, the stored angular velocity
  (``exp(int16 norm / 1000)`` rad/s along a packed direction), the front-wheel angle
  (``steerFront``: 127 = straight, one step = 1.4 degrees, + = right), rpm in the ghost's
  own unit, the shift flag (bit 0 of the flags byte ``u6``), the turbo flag and the four
  wheels' contact materials (0 = no contact; 7 and 26 are turbo surfaces);
- per 10 ms tick from the race start: the inputs of the ghost's control timeline
  (CGameCtnGhost 019): ``Steer`` (signed 24-bit value / 65536, + = right), ``SteerLeft`` /
  ``SteerRight`` (full lock; whichever of analog and keys was touched last steers, and the
  samples show ``SteerLeft`` as +, so the keys' names and the analog sign disagree), ``Accelerate`` / ``Gas``, ``Brake``. The race starts at the
  ``_FakeIsRaceRunning`` event; an event at time t holds from the tick starting at t.

A sample at race time T is the state after the ticks 0 .. T/10 - 1, so the inputs that take
the car from sample i to sample i + 1 are the ticks ``T_i/10 .. T_{i+1}/10 - 1``.

:func:`pair_masks` gives the "ground" and "flat" filters of ``SIM_CALIBRATION_NOTES.md``
(see docs/sim.md) for every pair of consecutive samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tmstate.errors import ReplayFileError

TICK_MS = 10
WHEEL_STEP_RAD = math.radians(1.4)
"""One step of the ghost's stored front-wheel angle."""
TURBO_MATERIALS = (7, 26)
"""Surface ids of turbo (booster) pads."""
_SAMPLE_BYTES = 61


@dataclass
class GhostMotion:
    """One ghost's samples and its 10 ms input timeline, up to its finish."""

    name: str
    period_ms: int
    race_time_ms: int
    times_ms: np.ndarray  # (M,) int, sample i at i * period_ms
    positions: np.ndarray  # (M, 3)
    velocities: np.ndarray  # (M, 3) world, m/s
    yaw: np.ndarray  # (M,) rad, forward = (sin yaw, cos yaw) in (x, z)
    pitch: np.ndarray  # (M,) rad, + = nose down (as tmstate.gbx)
    roll: np.ndarray  # (M,) rad
    yaw_rate: np.ndarray  # (M,) rad/s, stored angular velocity about world y (+ = turning right)
    wheel_angle: np.ndarray  # (M,) rad, + = right
    rpm: np.ndarray  # (M,) the ghost's unit
    shifting: np.ndarray  # (M,) bool
    turbo: np.ndarray  # (M,) bool
    materials: np.ndarray  # (M, 4) int
    tick_steer: np.ndarray  # (T,) -1..1 per 10 ms tick from the race start
    tick_gas: np.ndarray  # (T,) 0 or 1
    tick_brake: np.ndarray  # (T,) 0 or 1

    @property
    def speed(self) -> np.ndarray:
        """3D speed of every sample, m/s."""
        return np.linalg.norm(self.velocities, axis=1)

    @property
    def series(self) -> str:
        """"A", "B" or "human" (the campaign series of a TAS ghost, else human)."""
        if "TAS" in self.name and self.name[:1] in "AB":
            return self.name[:1]
        return "human"


def _int16(value: int) -> int:
    return value - 65536 if value >= 32768 else value


def _int24(value: int) -> int:
    value &= 0xFFFFFF
    return value - 0x1000000 if value & 0x800000 else value


def read_motion(path: str | Path) -> GhostMotion:
    """The motion and inputs of the first ghost of a ``.Replay.Gbx``; ReplayFileError if unusable."""
    from tmstate.formats.gbx import _checked_gbx

    path = _checked_gbx(path, ".Replay.Gbx")
    import gbx
    from gbx.GameIDs import ChunkId

    try:
        parsed = gbx.GbxReader(str(path)).readAll()
        race_time = next(c.data["raceTime"] for c in parsed[ChunkId.CGameCtnGhost005] if "raceTime" in c.data)
        samples = next(c.data["sampleData"] for c in parsed[ChunkId.CGameGhost005] if "sampleData" in c.data).data
        control = next(c.data for c in parsed[ChunkId.CGameCtnGhost019] if "controlEntries" in c.data)
    except Exception as exc:  # the parser raises anything (struct, zlib, index, StopIteration) on bad bytes
        raise ReplayFileError(path, f"no ghost with samples and inputs could be read ({type(exc).__name__}: {exc})",
                              "use a TMNF .Replay.Gbx of a finished run (sample format 9, with its input events)") from None
    period = int(samples.get("samplePeriod", 0))
    count = int(samples.get("sampleDataSize", 0)) // _SAMPLE_BYTES
    race_time = int(race_time)
    if period <= 0 or count < 2 or race_time <= 0:
        raise ReplayFileError(path, f"ghost has {count} samples every {period} ms, race time {race_time} ms",
                              "the replay holds no usable ghost")
    keep = min(count, race_time // period + 1)
    try:
        rows = [(samples[f"position {i}"].to_list(), samples[f"quat {i}"].to_list(), samples[f"speedNorm {i}"],
                 samples[f"speedDirection {i}"].to_list(), samples[f"angularSpeedNorm {i}"],
                 samples[f"angulatSpeedDirection {i}"].to_list(), samples[f"steerFront {i}"], samples[f"RPM {i}"],
                 samples[f"u6 {i}"], samples[f"turbo {i}"],
                 [samples[f"materialId{w} {i}"] for w in ("FL", "FR", "RR", "RL")]) for i in range(keep)]
    except (KeyError, AttributeError, TypeError, ValueError, Exception) as exc:
        raise ReplayFileError(path, f"ghost samples are incomplete ({exc})", "the file is corrupt") from None
    pos = np.array([r[0] for r in rows], dtype=np.float64)
    quat = np.array([r[1] for r in rows], dtype=np.float64)
    norm = np.array([r[2] for r in rows], dtype=np.float64)
    speed = np.where(norm == -32768, 0.0, np.exp(norm / 1000.0))
    vel = speed[:, None] * np.array([r[3] for r in rows], dtype=np.float64)
    ang_norm = np.array([_int16(int(r[4])) for r in rows], dtype=np.float64)
    ang = np.where(ang_norm == -32768, 0.0, np.exp(ang_norm / 1000.0))[:, None] * np.array([r[5] for r in rows])
    from scipy.spatial.transform import Rotation

    matrices = Rotation.from_quat(quat).as_matrix()
    forward = matrices[:, :, 2]
    yaw = np.arctan2(forward[:, 0], forward[:, 2])
    pitch = np.arcsin(np.clip(-forward[:, 1], -1.0, 1.0))
    roll = np.arctan2(matrices[:, 1, 0], matrices[:, 1, 1])
    ticks = _input_timeline(path, control, race_time)
    return GhostMotion(
        name=path.name, period_ms=period, race_time_ms=race_time,
        times_ms=np.arange(keep, dtype=np.int64) * period,
        positions=pos, velocities=vel, yaw=yaw, pitch=pitch, roll=roll,
        yaw_rate=ang[:, 1],
        wheel_angle=(np.array([r[6] for r in rows], dtype=np.float64) - 127.0) * WHEEL_STEP_RAD,
        rpm=np.array([r[7] for r in rows], dtype=np.float64),
        shifting=np.array([int(r[8]) & 1 for r in rows], dtype=bool),
        turbo=np.array([r[9] for r in rows]) != 0,
        materials=np.array([r[10] for r in rows], dtype=np.int64),
        tick_steer=ticks[0], tick_gas=ticks[1], tick_brake=ticks[2],
    )


def _input_timeline(path: Path, control: dict, race_time_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steer, gas, brake) per 10 ms tick from the race start, from the ghost's control events."""
    names = [entry["controlNames"] for entry in control["controlNameList"].data]
    events = [(int(e["time"]), names[int(e["controlNameIndex"])], int(e["onOff"])) for e in control["controlEntries"].data]
    start = next((t for t, name, _ in events if name == "_FakeIsRaceRunning"), None)
    if start is None:
        raise ReplayFileError(path, "the ghost's input events have no race start", "use a replay of a whole run")
    n = race_time_ms // TICK_MS + 1
    gas = np.zeros(n)
    brake = np.zeros(n)
    steer = np.zeros(n)
    # Steering: the analog value, or the keys (SteerLeft is +: that is what the samples'
    # stored steer shows where a ghost uses both, as B08 does) — whichever was touched last;
    # releasing the keys centres the steering until the next analog event.
    analog, left, right, keys = 0.0, 0.0, 0.0, False
    for time, name, value in sorted(events, key=lambda e: e[0]):
        tick = max(-(-(time - start) // TICK_MS), 0)  # first tick starting at or after the event
        if tick >= n:
            continue
        if name in ("Accelerate", "Gas"):
            gas[tick:] = 1.0 if (_int24(value) > 0 if name == "Gas" else value) else 0.0
        elif name == "Brake":
            brake[tick:] = 1.0 if value else 0.0
        elif name in ("Steer", "SteerLeft", "SteerRight"):
            if name == "Steer":
                analog, keys = _int24(value) / 65536.0, False
            else:
                left = (1.0 if value else 0.0) if name == "SteerLeft" else left
                right = (1.0 if value else 0.0) if name == "SteerRight" else right
                keys = True
            steer[tick:] = (left - right) if keys else analog
    return np.clip(steer, -1.0, 1.0), gas, brake


def pair_masks(g: GhostMotion) -> dict[str, np.ndarray]:
    """For every pair (i, i + 1) of samples: {"ground": bool (M-1,), "flat": bool (M-1,)}.

    ground: both samples have all four wheels on a surface, no turbo surface or flag, speed
    below 999 km/h, and the pair is not a "glitch" (the speed from the position difference
    agrees with the mean sample speed within 5 % + 1 m/s: TAS runs hold wall bugs and
    teleports). flat: ground, and both samples have |pitch| < 1.5 deg, |roll| < 2.5 deg,
    |vertical speed| < 1 m/s.
    """
    contact = (g.materials != 0).all(axis=1)
    turbo = np.isin(g.materials, TURBO_MATERIALS).any(axis=1) | g.turbo
    speed = g.speed
    ok = contact & ~turbo & (speed * 3.6 < 999.0)
    dt = np.diff(g.times_ms) / 1000.0
    moved = np.linalg.norm(np.diff(g.positions, axis=0), axis=1) / dt
    mean_speed = 0.5 * (speed[1:] + speed[:-1])
    no_glitch = np.abs(moved - mean_speed) <= 0.05 * mean_speed + 1.0
    ground = ok[1:] & ok[:-1] & no_glitch
    level = (np.abs(g.pitch) < math.radians(1.5)) & (np.abs(g.roll) < math.radians(2.5)) & (np.abs(g.velocities[:, 1]) < 1.0)
    flat = ground & level[1:] & level[:-1]
    return {"ground": ground, "flat": flat}

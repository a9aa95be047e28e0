"""Ghosts from ``.Replay.Gbx`` files: race time, checkpoints, samples -> states; map blocks.

Parsing only: lines built from ghosts, and checking a line against a ghost, are in
:mod:`tmstate.tools.lines`.

Files are parsed with the PyPI package ``tmnf-gbx`` (imported as ``gbx``). What this module
takes from a replay (the first ghost in it):

- race time: chunk CGameCtnGhost 005 ``raceTime`` (ms);
- checkpoint times: CGameCtnGhost 00B (the last one is the finish);
- samples every ``samplePeriod`` ms (CGameGhost 005, sample format version 9): position,
  rotation quaternion, speed (``exp(speedNorm / 1000)`` m/s, 0 when -32768) along a packed
  direction, steer (0 = full right, 127 = centre, 255 = full left), gas, brake, wheel materials.

Samples go on after the finish; :func:`read_ghost` cuts them at the race time and adds
one state at exactly the race time (the finish; interpolated, or carried on at the last
sample's velocity when the samples stop up to one period short). Sample ``i`` is at race time
``i * samplePeriod`` ms.

Known gaps (not stored in ghosts): gear, wheel contact; RPM is stored in a unit we have
not confirmed, so states carry ``rpm = 0``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tmstate.errors import ReplayFileError
from tmstate.core.reference import LineMetadata, ReferenceLine, drop_stationary, utc_now_iso
from tmstate.core.state import GameState

_SPEED_ZERO = -32768
_SAMPLE_BYTES = 61  # one ghost sample of format version 9 (tmnf-gbx's SAMPLE_SIZE)


@dataclass
class Ghost:
    """The samples of one ghost up to its finish, as arrays (one row per state)."""

    path: Path
    map_name: str
    map_uid: str
    player: str
    game_version: str
    race_time_ms: int
    sample_period_ms: int
    respawns: int
    checkpoint_times_ms: tuple[int, ...]  # the last is the finish
    times_ms: np.ndarray  # (M,) int64; the last is race_time_ms
    positions: np.ndarray  # (M, 3) metres
    velocities: np.ndarray  # (M, 3) m/s
    quaternions: np.ndarray  # (M, 4) x, y, z, w (scalar last)
    steer: np.ndarray  # (M,) -1 (left) .. 1 (right)
    gas: np.ndarray  # (M,) 0..1
    brake: np.ndarray  # (M,) 0 or 1
    wheel_material: np.ndarray  # (M, 4) int, order front-left, front-right, rear-right, rear-left

    @property
    def source(self) -> str:
        return f"replay:{self.path.name}"

    def states(self) -> list[GameState]:
        """One :class:`GameState` per sample; the last is the finish (``finished=True``)."""
        from scipy.spatial.transform import Rotation

        rotations = Rotation.from_quat(self.quaternions)
        matrices = rotations.as_matrix()
        forward = matrices[:, :, 2]  # the car's local +z is its forward axis
        yaw = np.arctan2(forward[:, 0], forward[:, 2])
        pitch = np.arcsin(np.clip(-forward[:, 1], -1.0, 1.0))
        roll = np.arctan2(matrices[:, 1, 0], matrices[:, 1, 1])
        angular = _angular_velocity(rotations, self.times_ms)
        cps = np.asarray(self.checkpoint_times_ms, dtype=np.int64)
        states = []
        for i, t in enumerate(self.times_ms.tolist()):
            speed = float(np.linalg.norm(self.velocities[i]))
            states.append(GameState(
                race_time_ms=int(t),
                position=self.positions[i].copy(),
                velocity=self.velocities[i].copy(),
                yaw=float(yaw[i]), pitch=float(pitch[i]), roll=float(roll[i]),
                angular_velocity=angular[i].copy(),
                display_speed_kmh=int(round(speed * 3.6)),
                checkpoint_count=int(np.count_nonzero(cps <= t)),
                checkpoint_target=len(cps),
                finished=bool(t >= self.race_time_ms),
                wheel_material=_four(int(m) for m in self.wheel_material[i]),
                steer=float(self.steer[i]), gas=float(self.gas[i]), brake=float(self.brake[i]),
            ))
        return states

    def position_at(self, time_ms: float) -> np.ndarray:
        """Position linearly interpolated at a race time (clamped to the samples)."""
        return np.array([np.interp(time_ms, self.times_ms, self.positions[:, k]) for k in range(3)])


def _four(values) -> tuple[int, int, int, int]:
    """Four wheels' values as the 4-tuple GameState keeps."""
    a, b, c, d = values
    return a, b, c, d


def _angular_velocity(rotations, times_ms: np.ndarray) -> np.ndarray:
    """World-frame angular velocity (rad/s) from successive rotations (forward difference)."""
    out = np.zeros((len(times_ms), 3))
    if len(times_ms) < 2:
        return out
    dt = np.diff(times_ms).astype(np.float64) / 1000.0
    delta = rotations[1:] * rotations[:-1].inv()
    out[:-1] = delta.as_rotvec() / np.where(dt > 0, dt, 1.0)[:, None]
    out[-1] = out[-2]
    return out


# --- reading ----------------------------------------------------------------------------


def _checked_gbx(path: str | Path, kind: str) -> Path:
    """``path`` if it is a non-empty file that starts like a Gbx file; ReplayFileError if not."""
    path = Path(path)
    if not path.is_file():
        raise ReplayFileError(path, "file not found", f"check the path to the {kind}")
    with path.open("rb") as f:
        head = f.read(3)
    if not head:
        raise ReplayFileError(path, "file is empty", "copy it again")
    if head != b"GBX":
        raise ReplayFileError(path, "not a Gbx file (it does not start with GBX)", f"give a TMNF {kind}")
    return path


def read_ghost(path: str | Path) -> Ghost:
    """Read the first ghost of a ``.Replay.Gbx``, cut at its race time. ReplayFileError if unusable."""
    path = _checked_gbx(path, ".Replay.Gbx")
    import gbx
    from gbx.GameIDs import ChunkId

    try:
        parsed = gbx.GbxReader(str(path)).readAll()
    except Exception as exc:  # the parser raises anything (struct, zlib, index, assert) on bad bytes
        raise ReplayFileError(path, f"not a readable Gbx file ({type(exc).__name__}: {exc})",
                              "the file is corrupt or not a TMNF replay") from None

    def first(chunk_id, key):
        try:
            chunks = parsed[chunk_id]
        except Exception:
            return None
        for chunk in chunks:
            if key in chunk.data:
                return chunk.data[key]
        return None

    race_time = first(ChunkId.CGameCtnGhost005, "raceTime")
    samples = first(ChunkId.CGameGhost005, "sampleData")
    if race_time is None or samples is None:
        raise ReplayFileError(path, "no ghost with race time and samples found (unsupported sample format, "
                              "or not a .Replay.Gbx)", "use a TMNF .Replay.Gbx of a finished run")
    checkpoints = first(ChunkId.CGameCtnGhost00B, "checkpoints")
    cp_times = tuple(int(c["time"]) for c in checkpoints) if checkpoints is not None else (int(race_time),)
    header = first(ChunkId.CGameCtnReplayRecord000, "trackUID") or ""
    challenge = first(ChunkId.CGameCtnReplayRecord002, "gbxData") or b""
    match = re.search(rb'<ident uid="([^"]*)" name="([^"]*)"', challenge)
    map_name = match.group(2).decode("utf-8", "replace") if match else ""
    map_uid = header or (match.group(1).decode("utf-8", "replace") if match else "")
    respawns = first(ChunkId.CGameCtnGhost008, "numRespawns") or 0
    player = first(ChunkId.CGameCtnReplayRecord000, "nickname") or ""
    version = (first(ChunkId.CGameCtnGhost019, "gameVersion") or "").strip()
    return _ghost_from_samples(path, samples.data, int(race_time), cp_times, map_name=map_name,
                               map_uid=map_uid, player=player, game_version=version, respawns=int(respawns))


def _ghost_from_samples(path: Path, data: dict, race_time_ms: int, cp_times: tuple[int, ...], **info) -> Ghost:
    """Arrays from the parser's per-sample fields, cut at the race time."""
    period = int(data.get("samplePeriod", 0))
    count = int(data.get("sampleDataSize", 0)) // _SAMPLE_BYTES
    if period <= 0 or count < 2:
        raise ReplayFileError(path, f"ghost has {count} samples every {period} ms", "the replay holds no usable ghost")
    try:
        pos = np.array([[data[f"position {i}"].x, data[f"position {i}"].y, data[f"position {i}"].z]
                        for i in range(count)], dtype=np.float64)
        quat = np.array([data[f"quat {i}"].to_list() for i in range(count)], dtype=np.float64)
        norm = np.array([data[f"speedNorm {i}"] for i in range(count)], dtype=np.float64)
        direction = np.array([[data[f"speedDirection {i}"][k] for k in range(3)] for i in range(count)])
        steer_raw = np.array([data[f"steer {i}"] for i in range(count)], dtype=np.float64)
        gas_raw = np.array([data[f"gas {i}"] for i in range(count)], dtype=np.float64)
        brake_raw = np.array([data[f"brake {i}"] for i in range(count)], dtype=np.float64)
        material = np.array([[data[f"materialId{w} {i}"] for w in ("FL", "FR", "RR", "RL")]
                             for i in range(count)], dtype=np.int64)
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise ReplayFileError(path, f"ghost samples are incomplete ({exc})", "the file is corrupt") from None
    bad = ~np.isfinite(pos).all(axis=1) | ~np.isfinite(quat).all(axis=1)
    if bad.any():
        raise ReplayFileError(path, f"{int(bad.sum())} ghost sample(s) have NaN/infinite position or rotation "
                              f"(first: sample {int(np.argmax(bad))})", "the file is corrupt")
    speed = np.where(norm == _SPEED_ZERO, 0.0, np.exp(norm / 1000.0))
    vel = speed[:, None] * direction
    steer = np.clip((127.0 - steer_raw) / 127.0, -1.0, 1.0)
    gas = gas_raw / 255.0
    brake = (brake_raw > 0).astype(np.float64)
    times = np.arange(count, dtype=np.int64) * period
    if race_time_ms <= 0 or race_time_ms > times[-1] + period:
        raise ReplayFileError(path, f"race time {race_time_ms} ms is outside the samples (0..{times[-1]} ms)",
                              "the ghost is cut short or its race time is wrong")
    from scipy.spatial.transform import Rotation, Slerp

    # Cut at the finish: samples before it, plus one at exactly the race time — interpolated,
    # or (when the samples stop up to one period short, as in some human ghosts) carried on
    # from the last sample at its velocity.
    keep = int(np.searchsorted(times, race_time_ms, side="left"))  # samples with t < race time
    if keep >= count:
        i = j = count - 1
        frac = 0.0
        end_pos = pos[i] + vel[i] * (race_time_ms - times[i]) / 1000.0
        q_end = quat[i]
    else:
        j = keep
        i = max(j - 1, 0)
        frac = 0.0 if times[j] == times[i] else (race_time_ms - times[i]) / (times[j] - times[i])
        end_pos = pos[i] + frac * (pos[j] - pos[i])
        q_end = Slerp([0.0, 1.0], Rotation.from_quat(quat[[i, j]]))([frac]).as_quat()[0]

    def cut(values: np.ndarray, last) -> np.ndarray:
        return np.concatenate([values[:keep], np.asarray(last, dtype=values.dtype)[None]], axis=0)

    return Ghost(
        path=path, race_time_ms=race_time_ms, sample_period_ms=period, checkpoint_times_ms=cp_times,
        times_ms=cut(times, race_time_ms),
        positions=cut(pos, end_pos),
        velocities=cut(vel, vel[i] + frac * (vel[j] - vel[i])),
        quaternions=cut(quat, q_end),
        steer=cut(steer, steer[i]),
        gas=cut(gas, gas[i]),
        brake=cut(brake, brake[i]),
        wheel_material=cut(material, material[i]),
        **info,
    )


def ghost_metadata(ghost: Ghost, line_path: Path | None = None) -> dict:
    """Log metadata for a ghost converted to a states-only episode log."""
    meta = {
        "kind": "ghost",
        "source": ghost.source,
        "map_name": ghost.map_name,
        "map_uid": ghost.map_uid,
        "player": ghost.player,
        "race_time_ms": ghost.race_time_ms,
        "sample_period_ms": ghost.sample_period_ms,
        "backend": "ghost",
        "action_period_ms": ghost.sample_period_ms,
    }
    if line_path is not None:
        meta["line"] = str(line_path)
    return meta


# --- maps -------------------------------------------------------------------------------

BLOCK_SIZE_M = (32.0, 8.0, 32.0)
"""One Stadium block in metres (x, y, z); a block's world centre is about block * size + (16, 0, 16)."""


@dataclass
class MapMarker:
    """A start, checkpoint or finish block of a map, in world metres (block centre)."""

    kind: str  # "start", "checkpoint", "finish"
    block: str
    position: np.ndarray


def read_challenge_markers(path: str | Path) -> tuple[str, list[MapMarker]]:
    """(map name, start/checkpoint/finish blocks) of a ``.Challenge.Gbx`` (chunk CGameCtnChallenge 01F)."""
    path = _checked_gbx(path, ".Challenge.Gbx")
    import gbx
    from gbx.GameIDs import ChunkId

    try:
        chunks = gbx.GbxReader(str(path)).readAll()[ChunkId.CGameCtnChallenge01F]
        data = chunks[0].data
        count = int(data["numBlocks"])
        blocks = [(str(data[f"blockName {i}"]), int(data[f"posX {i}"]), int(data[f"posY {i}"]), int(data[f"posZ {i}"]))
                  for i in range(count)]
    except Exception as exc:  # the parser raises anything on bad bytes
        raise ReplayFileError(path, f"no block list could be read ({type(exc).__name__}: {exc})",
                              "is this a TMNF .Challenge.Gbx?") from None
    markers = []
    for name, bx, by, bz in blocks:
        if "Checkpoint" in name:
            kind = "checkpoint"
        elif "Finish" in name and "StartFinish" not in name:
            kind = "finish"
        elif "StartLine" in name or "StartFinish" in name:
            kind = "start"
        else:
            continue
        centre = np.array([bx * BLOCK_SIZE_M[0] + 16.0, by * BLOCK_SIZE_M[1], bz * BLOCK_SIZE_M[2] + 16.0])
        markers.append(MapMarker(kind, name, centre))
    return str(data.get("trackName", "")), markers


# --- a ghost's line (here, below the backends, so the simulator can drive a ghost's map) ---


def line_from_ghost(ghost: Ghost, spacing_m: float | None = 0.5, smooth: float = 0.0) -> ReferenceLine:
    """A reference line along the ghost's path from the start to the finish, with its checkpoints."""
    points = drop_stationary(ghost.positions)
    if len(points) < 2:
        raise ReplayFileError(ghost.path, "the ghost never moves", "use a replay of a finished run")
    metadata = LineMetadata(map_name=ghost.map_name, map_uid=ghost.map_uid, source=ghost.source,
                            created=utc_now_iso(), extra={"race_time_ms": ghost.race_time_ms,
                                                          "player": ghost.player})
    line = ReferenceLine.from_points(points, spacing_m=spacing_m, smooth=smooth,
                                     metadata=metadata, name=str(ghost.path))
    line.metadata.checkpoints_m = ghost_checkpoint_arcs(ghost, line)
    line.metadata.checkpoint_source = "ghost"
    return line


def ghost_checkpoint_arcs(ghost: Ghost, line: ReferenceLine) -> tuple[float, ...]:
    """Arc lengths on ``line`` where the ghost passed its checkpoints (the finish excluded).

    Each is the ghost's position at its checkpoint time, located on the line by walking
    the ghost along it (so a line that passes a place twice takes the right pass).
    """
    from tmstate.core.progress import ProgressConfig, ProgressTracker

    tracker = ProgressTracker(line, ProgressConfig(resync="off"))
    tracker.reset(ghost.positions[0])
    marks = []
    times = ghost.times_ms.tolist()
    i = 0
    for t in ghost.checkpoint_times_ms[:-1]:  # the last is the finish: the end of the line
        while i < len(times) and times[i] <= t:
            tracker.update(ghost.positions[i])
            i += 1
        at = ghost.position_at(t)
        loc = tracker.update(at)
        marks.append(round(loc.arc_length_m, 3))
    return tuple(marks)

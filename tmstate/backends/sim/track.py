"""Simulator tracks: pieces in 32 m blocks, the shipped tracks, and the corridor around a line.

A track is a list of :class:`Piece` — straights and arcs whose sizes are counted in TMNF
blocks (32 m) — laid end to end on flat ground from the origin, heading +z. Its centre
line becomes a :class:`~tmstate.core.reference.ReferenceLine` (0.5 m spacing) with metadata
``source="sim-generator"``, ``track_width_m`` and ``checkpoints_m``; the simulator drives a
corridor of that width around it. These are simulator tracks, not TMNF maps.

Coordinates follow TMNF: metres, y up, heading ``yaw`` with forward ``(sin yaw, cos yaw)``
in the (x, z) plane; the right-hand side of the direction of travel is
``(cos yaw, -sin yaw)``, so steering right increases yaw.

:class:`Corridor` answers "where along the line is each of N cars, and how far to the
side" for the car model and the renderer, with a windowed search from each car's
previous segment (a car moves at most a few 0.5 m segments per 10 ms tick).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tmstate.data import data_path
from tmstate.errors import ConfigError, ReferenceLineError
from tmstate.core.reference import LineMetadata, ReferenceLine

BLOCK_M = 32.0
"""One TMNF block, horizontally."""

SPACING_M = 0.5
"""Point spacing of generated centre lines."""

DEFAULT_WIDTH_M = 16.0
"""Corridor width used for a line that does not say its own (``track_width_m == 0``)."""

REFERENCE_DIR = data_path("reference_lines")
"""The shipped lines (package data; the top-level ``reference_lines/`` of a checkout)."""

USER_LINES_DIR = Path("reference_lines")
"""Where the tools save lines by default (``line-from-replay``, ``record-line``): relative to
the working directory, and searched first by name."""


@dataclass(frozen=True)
class Piece:
    """One piece of track.

    kind: ``"straight"`` (``blocks`` = length in blocks), ``"left"`` or ``"right"`` (an arc
    of radius ``blocks`` blocks turning ``angle_deg`` degrees).
    """

    kind: str
    blocks: float
    angle_deg: float = 90.0

    def length_m(self) -> float:
        if self.kind == "straight":
            return self.blocks * BLOCK_M
        return self.blocks * BLOCK_M * math.radians(self.angle_deg)


def straight(blocks: float) -> Piece:
    return Piece("straight", blocks)


def left(radius_blocks: float, angle_deg: float = 90.0) -> Piece:
    return Piece("left", radius_blocks, angle_deg)


def right(radius_blocks: float, angle_deg: float = 90.0) -> Piece:
    return Piece("right", radius_blocks, angle_deg)


@dataclass(frozen=True)
class TrackSpec:
    """A simulator track: its pieces, corridor width and checkpoints.

    ``checkpoints_after`` lists piece indices; a checkpoint stands at the end of each.
    The finish is the end of the last piece.
    """

    name: str
    pieces: tuple[Piece, ...]
    width_m: float = DEFAULT_WIDTH_M
    checkpoints_after: tuple[int, ...] = ()
    description: str = ""
    extra: dict = field(default_factory=dict)


SHIPPED_TRACKS: dict[str, TrackSpec] = {
    spec.name: spec
    for spec in (
        TrackSpec(
            "sim_easy",
            (straight(2), right(3, 90), straight(3)),
            width_m=24.0,
            checkpoints_after=(1,),
            description="short and gentle: a straight, one wide right-hander, a straight (~311 m)",
        ),
        TrackSpec(
            "sim_esses",
            (straight(2), left(2, 90), straight(1), right(2, 90), right(2, 90), straight(1),
             left(1.5, 90), straight(2)),
            width_m=18.0,
            checkpoints_after=(2, 5),
            description="left and right bends of 48-64 m radius (~569 m)",
        ),
        TrackSpec(
            "sim_hairpins",
            (straight(3), right(1, 180), straight(2), left(1, 180), straight(2), right(1.5, 90),
             straight(2)),
            width_m=16.0,
            checkpoints_after=(2, 4),
            description="two 32 m radius hairpins, then a 48 m radius bend (~565 m)",
        ),
    )
}
"""The tracks shipped in ``reference_lines/``, easiest first."""


def track_names() -> list[str]:
    """Names of the shipped simulator tracks, easiest first."""
    return list(SHIPPED_TRACKS)


def centre_line(spec: TrackSpec, spacing_m: float = SPACING_M) -> tuple[np.ndarray, np.ndarray]:
    """The (N, 3) centre line of ``spec`` and the point index where each piece ends.

    Evaluated analytically piece by piece (exact arcs), starting at the origin heading +z;
    each piece is cut into equal steps of at most ``spacing_m``, so every piece's end is a
    point of the line.
    """
    if not spec.pieces:
        raise ConfigError(f"track {spec.name!r} has no pieces; give it at least one straight")
    chunks = [np.zeros((1, 3))]
    ends = []
    x, z, yaw = 0.0, 0.0, 0.0
    for piece in spec.pieces:
        length = _checked(piece, spec.name).length_m()
        u = np.linspace(0.0, length, max(1, math.ceil(length / spacing_m - 1e-9)) + 1)[1:]
        out = np.zeros((len(u), 3))
        fx, fz = math.sin(yaw), math.cos(yaw)
        rx, rz = math.cos(yaw), -math.sin(yaw)
        if piece.kind == "straight":
            out[:, 0] = x + u * fx
            out[:, 2] = z + u * fz
        else:
            radius = piece.blocks * BLOCK_M
            sign = 1.0 if piece.kind == "right" else -1.0
            cx, cz = x + sign * radius * rx, z + sign * radius * rz
            phi = yaw + sign * u / radius
            out[:, 0] = cx - sign * radius * np.cos(phi)
            out[:, 2] = cz + sign * radius * np.sin(phi)
            yaw += sign * math.radians(piece.angle_deg)
        x, z = float(out[-1, 0]), float(out[-1, 2])
        chunks.append(out)
        ends.append(sum(len(c) for c in chunks) - 1)
    return np.vstack(chunks), np.asarray(ends)


def _checked(piece: Piece, track: str) -> Piece:
    if piece.kind not in ("straight", "left", "right"):
        raise ConfigError(f"track {track!r}: piece kind must be straight, left or right, got {piece.kind!r}")
    if not piece.blocks > 0 or (piece.kind != "straight" and not 0 < piece.angle_deg <= 360):
        raise ConfigError(f"track {track!r}: piece {piece} needs blocks > 0 and 0 < angle <= 360")
    return piece


def check_clearance(points: np.ndarray, width_m: float, name: str = "<track>") -> None:
    """Refuse a centre line whose corridor would overlap itself.

    Two points farther apart along the line than ``2 * width_m`` must be at least
    ``width_m`` apart in the (x, z) plane (scipy cKDTree pair query).
    """
    from scipy.spatial import cKDTree

    flat = points[:, [0, 2]]
    cumulative = np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))))
    pairs = cKDTree(flat).query_pairs(r=width_m, output_type="ndarray")
    if len(pairs):
        apart = np.abs(cumulative[pairs[:, 0]] - cumulative[pairs[:, 1]])
        bad = apart > 2.0 * width_m
        if bad.any():
            i = pairs[bad][0, 0]
            raise ConfigError(
                f"track {name!r}: the corridor overlaps itself near arc length {cumulative[i]:.0f} m; "
                "make a piece longer or a bend wider"
            )


def build_line(spec: TrackSpec) -> ReferenceLine:
    """The reference line of a simulator track, with its metadata."""
    points, ends = centre_line(spec)
    check_clearance(points, spec.width_m, spec.name)
    cumulative = np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))))
    for i in spec.checkpoints_after:
        if not 0 <= i < len(spec.pieces) - 1:
            raise ConfigError(f"track {spec.name!r}: checkpoint after piece {i} must be before the last piece")
    metadata = LineMetadata(
        map_name=spec.name,
        source="sim-generator",
        spacing_m=SPACING_M,
        checkpoints_m=tuple(float(cumulative[ends[i]]) for i in spec.checkpoints_after),
        checkpoint_source="sim",
        track_width_m=float(spec.width_m),
        extra={"description": spec.description,
               "pieces": [[p.kind, p.blocks, p.angle_deg] for p in spec.pieces]},
    )
    return ReferenceLine.from_points(points, spacing_m=None, metadata=metadata, name=spec.name)


def write_shipped_tracks(directory: str | Path = REFERENCE_DIR) -> list[Path]:
    """Generate every shipped track into ``directory`` as ``<name>.npz``; returns the paths."""
    directory = Path(directory)
    return [build_line(spec).save(directory / f"{name}.npz") for name, spec in SHIPPED_TRACKS.items()]


def load_track(name: str) -> ReferenceLine:
    """A shipped simulator track by name: ``reference_lines/<name>.npz``, or generated if absent."""
    if name not in SHIPPED_TRACKS:
        raise ConfigError(f"unknown simulator track {name!r}; shipped tracks: {', '.join(track_names())}")
    path = REFERENCE_DIR / f"{name}.npz"
    if path.is_file():
        return ReferenceLine.load(path)
    return build_line(SHIPPED_TRACKS[name])


def resolve_line(map_or_path: str) -> ReferenceLine:
    """A reference line from a shipped track name, a ``.npz``/``.npy`` path, a ``.Replay.Gbx``
    (the line is built from its ghost on the fly, as ``tmstate line-from-replay`` would), or a
    name in ``./reference_lines/`` (the user's lines) or among the shipped lines."""
    if map_or_path in SHIPPED_TRACKS:
        return load_track(map_or_path)
    path = Path(map_or_path)
    if path.suffix in (".npz", ".npy"):
        return ReferenceLine.load(path)
    if path.name.lower().endswith(".gbx"):
        return ghost_corridor_line(path)
    for folder in (USER_LINES_DIR, REFERENCE_DIR):
        for suffix in (".npz", ".npy"):
            candidate = folder / f"{map_or_path}{suffix}"
            if candidate.is_file():
                return ReferenceLine.load(candidate)
    raise ReferenceLineError(
        path, "no such reference line",
        f"give a .npz/.npy path, a .Replay.Gbx, a name in ./{USER_LINES_DIR} or {REFERENCE_DIR}, or a sim track "
        f"({', '.join(track_names())})",
    )


GHOST_TRACK_WIDTH_M = 24.0
"""Corridor width around a line built from a ghost (a Stadium road is about this wide)."""


def ghost_corridor_line(path: str | Path) -> ReferenceLine:
    """The reference line of a ``.Replay.Gbx`` ghost (as ``tmstate line-from-replay`` builds
    it, with its checkpoints), with a corridor width for the simulator.

    The simulator drives the line's horizontal projection: heights, ramps, loops, boosters
    and jumps are not simulated, and points where the ghost went straight up or down (no
    horizontal motion) are dropped so every segment has a direction.
    """
    from tmstate.formats.gbx import line_from_ghost, read_ghost

    line = line_from_ghost(read_ghost(path))
    points = line.points
    flat = np.linalg.norm(np.diff(points[:, [0, 2]], axis=0), axis=1)
    if (flat < 1e-3).any():
        keep = np.concatenate(([True], flat >= 1e-3))
        points = points[keep]
        line = ReferenceLine.from_points(points, spacing_m=None, metadata=line.metadata, name=line.name)
    line.metadata.track_width_m = GHOST_TRACK_WIDTH_M
    return line


def track_width(line: ReferenceLine, default_m: float = DEFAULT_WIDTH_M) -> float:
    """The corridor width of a line: its metadata's ``track_width_m``, else ``default_m``."""
    width = float(line.metadata.track_width_m or 0.0)
    return width if width > 0 else default_m


class Corridor:
    """A corridor of constant width around a reference line, seen from above (x, z).

    Precomputes the 2D segment arrays once; :meth:`project` locates N cars at a time with a
    windowed search around each car's previous segment index.
    """

    WINDOW = np.arange(-2, 7)
    """Segments searched around the previous one, every 10 ms tick (0.5 m segments: -1 m ..
    +3.5 m; at 550 km/h a car moves 1.5 m per tick)."""
    _window_back, _window_ahead = -int(WINDOW[0]), int(WINDOW[-1])

    def __init__(self, line: ReferenceLine, width_m: float | None = None) -> None:
        self.line = line
        self.width_m = float(width_m) if width_m else track_width(line)
        self.half_width_m = 0.5 * self.width_m
        p = line.points
        self.start = p[:-1, [0, 2]].copy()
        vec = np.diff(p[:, [0, 2]], axis=0)
        length2d = np.linalg.norm(vec, axis=1)
        if (length2d < 1e-9).any():
            raise ReferenceLineError(line.name, "a segment is vertical (no horizontal direction)",
                                     "the simulator needs a line that always moves horizontally")
        self.direction = vec / length2d[:, None]
        self.length2d = length2d
        self.normal = np.stack([self.direction[:, 1], -self.direction[:, 0]], axis=1)  # right-hand side
        self.normal_x, self.normal_z = self.normal[:, 0].copy(), self.normal[:, 1].copy()
        self.start_x, self.start_z = self.start[:, 0].copy(), self.start[:, 1].copy()
        self.direction_x, self.direction_z = self.direction[:, 0].copy(), self.direction[:, 1].copy()
        # project's segment arrays padded at both ends with copies (WINDOW reaches past them).
        back, ahead = self._window_back, self._window_ahead

        def padded(a: np.ndarray) -> np.ndarray:
            return np.concatenate([np.repeat(a[:1], back), a, np.repeat(a[-1:], ahead)])

        self._pad_sx, self._pad_sz, self._pad_dx, self._pad_dz, self._pad_length = (
            padded(a) for a in (self.start_x, self.start_z, self.direction_x, self.direction_z, length2d))
        self._window_padded = self.WINDOW + back
        self._row_starts = np.zeros(0, dtype=np.intp)
        # Python lists for the single-car path (project_one), where numpy calls cost more than they save.
        self.segment_list = list(zip(self.start_x.tolist(), self.start_z.tolist(), self.direction_x.tolist(), self.direction_z.tolist(),
                                      length2d.tolist()))
        self.normal_list = [tuple(n) for n in self.normal.tolist()]
        self.direction_list = [tuple(d) for d in self.direction.tolist()]
        self._cumulative_list = line.cumulative_m.tolist()
        self._length3d_list = line.segment_lengths.tolist()
        self.length2d_list = length2d.tolist()
        self.height_list = p[:, 1].tolist()
        self.last_length2d = float(length2d[-1])
        self.cumulative_m = line.cumulative_m
        self.length3d = line.segment_lengths
        self.segments = len(length2d)
        self.length_m = line.length_m
        self.checkpoints_m = np.asarray(sorted(line.metadata.checkpoints_m), dtype=np.float64)
        self.checkpoint_list = self.checkpoints_m.tolist()

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Left and right corridor edges, (N, 2) each in (x, z), offset along point normals."""
        t = self.line.tangents[:, [0, 2]]
        t = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
        n = np.stack([t[:, 1], -t[:, 0]], axis=1)
        c = self.line.points[:, [0, 2]]
        return c - self.half_width_m * n, c + self.half_width_m * n

    def start_pose(self) -> tuple[float, float, float]:
        """(x, z, yaw) at the start of the line, heading along it."""
        d = self.direction[0]
        return float(self.start[0, 0]), float(self.start[0, 1]), math.atan2(d[0], d[1])

    def project(self, x: np.ndarray, z: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest segment for each car, searched around ``index``.

        Returns (segment index, along_m, lateral_m): ``along_m`` is the distance along that
        segment from its start (not clamped: < 0 before the line's start, > the segment
        length past its end); ``lateral_m`` the signed offset, + = right of the direction of travel.
        """
        n = len(x)
        # The window's candidates in arrays padded with copies of the first and last segment,
        # so no clamping: position p of a padded array is segment clamp(p - back).
        cand = index[:, None] + self._window_padded
        dx = self._pad_dx.take(cand)
        dz = self._pad_dz.take(cand)
        px = x[:, None] - self._pad_sx.take(cand)
        pz = z[:, None] - self._pad_sz.take(cand)
        along = px * dx + pz * dz
        t = np.minimum(np.maximum(along, 0.0), self._pad_length.take(cand))
        ex = px - t * dx
        ez = pz - t * dz
        j = (ex * ex + ez * ez).argmin(axis=1)  # the first nearest, as over the clamped window
        starts = self._row_starts
        if len(starts) != n:
            starts = self._row_starts = np.arange(0, n * len(self.WINDOW), len(self.WINDOW))
        flat = j + starts  # each car's nearest candidate in the flattened (n, window) arrays
        best = np.minimum(np.maximum(cand.take(flat) - self._window_back, 0), self.segments - 1)
        lateral = px.take(flat) * dz.take(flat) - pz.take(flat) * dx.take(flat)
        return best, along.take(flat), lateral

    def project_one(self, x: float, z: float, index: int) -> tuple[int, float, float]:
        """:meth:`project` for one car in plain Python (same candidates, same tie-breaking).

        The window's clamped candidates repeat the first or last segment; a repeat never
        wins (the nearest is kept on a strict ``<``), so the distinct ones are scanned in order."""
        lo = index - self._window_back
        if lo < 0:
            lo = 0
        hi = index + self._window_ahead
        last = self.segments - 1
        if hi > last:
            hi = last
        best_d2 = math.inf
        best_j, best_along, best_lateral = 0, 0.0, 0.0
        j = lo
        for sx, sz, dx, dz, length in self.segment_list[lo:hi + 1]:
            px = x - sx
            pz = z - sz
            along = px * dx + pz * dz
            if along < 0.0:
                ex, ez = px, pz
            elif along > length:
                ex, ez = px - length * dx, pz - length * dz
            else:
                ex, ez = px - along * dx, pz - along * dz
            d2 = ex * ex + ez * ez
            if d2 < best_d2:
                best_d2, best_j, best_along, best_lateral = d2, j, along, px * dz - pz * dx
            j += 1
        return best_j, best_along, best_lateral

    def arc_length_one(self, index: int, along: float) -> float:
        """:meth:`arc_length` for one car."""
        frac = along / self.length2d_list[index]
        frac = 0.0 if frac < 0.0 else (1.0 if frac > 1.0 else frac)
        return self._cumulative_list[index] + frac * self._length3d_list[index]

    def arc_length(self, index: np.ndarray, along: np.ndarray) -> np.ndarray:
        """Arc length (of the 3D line) at ``along`` metres into segment ``index``, clamped to the line."""
        frac = np.clip(along / self.length2d[index], 0.0, 1.0)
        return self.cumulative_m[index] + frac * self.length3d[index]

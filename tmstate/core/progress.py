"""Progress along a reference line: where a position is, and how far the car has come.

:meth:`ProgressTracker.update` is on the env's hot path (every step), so it does not
search the whole line. The rules (also in docs/reward.md):

1. **Local walk.** From the segment found last time, scan the points the car can have
   reached (as far ahead as it moved, plus 1 m), then walk point by point (forward, else
   backward) while the distance to the car shrinks, at most ``window_m`` of line; then
   project the car onto the segments around the point found. This is O(1) amortised: the
   work grows with the metres moved per update, not with the length of the line. This
   step runs in C (``tmstate/core/_progress_kernel.c``) when the extension was built at install,
   with results identical to the Python code here, which is the fallback.
2. **Creditable window.** If the walk is not to be trusted — it ran out of window, ended
   farther than ``fallback_distance_m`` from the car, or the car moved more than
   ``trust_step_m`` since the last update (at speed, a curvy line can make the distance
   along the walk rise before it falls) — every segment within ``max_jump_m`` of arc of the
   credited progress is searched at once (numpy); the nearest of those wins.
3. **Global fallback.** If even that is farther than ``fallback_distance_m`` from the car,
   the whole line is searched with a k-d tree (``scipy.spatial.cKDTree``); a location there
   that is nearer but more than ``max_jump_m`` away is reported, not credited (rule 4).
   :meth:`reset` always searches globally: call it after a reset, respawn, rewind or teleport.
4. **Anti-shortcut.** A location more than ``max_jump_m`` of arc length away from the
   progress credited so far (forward *or* backward) is not credited: ``progress_m`` stays,
   the tracker keeps its old segment, and the returned :class:`Location` has
   ``credited=False``. Cutting across to a later part of the track therefore earns nothing
   until the car is back near where it left the line. A real respawn is a big backward
   jump too: the env calls :meth:`reset` then, which credits it.
5. Going backwards within ``max_jump_m`` is credited: progress decreases (the reward's
   progress term is negative).

Coordinates are TMNF's: metres, y up, left-handed — facing +z, +x is on the driver's
right. ``lateral_m`` is positive to the right of the line's direction of travel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tmstate.errors import ConfigError
from tmstate.core.reference import ReferenceLine

try:  # the local search compiled (tmstate/core/_progress_kernel.c); absent where no compiler was
    from tmstate.core import _progress_kernel  # found at install, and then the Python code runs
except ImportError:  # pragma: no cover - depends on the install
    _progress_kernel = None


class Location(NamedTuple):
    """Where a position is relative to the line.

    A NamedTuple rather than a frozen dataclass: it is built on every env step, and a
    NamedTuple builds three times faster (0.5 µs against 1.6 µs), a third of ``update()``.
    """

    arc_length_m: float  # along the line, clamped to [0, length]
    lateral_m: float  # signed horizontal offset, + = right of the direction of travel
    distance_m: float  # 3D distance to the line
    index: int  # segment index i (between points i and i+1)
    credited: bool = True  # False when the anti-shortcut rule refused this location


@dataclass
class ProgressConfig:
    """Tuning of :class:`ProgressTracker` (metres of line / of space)."""

    window_m: float = 60.0  # how far along the line the local walk may go from last time
    max_jump_m: float = 50.0  # anti-shortcut: largest arc-length change credited in one update
    fallback_distance_m: float = 10.0  # a result farther than this triggers the wider searches
    trust_step_m: float = 16.0  # a car that moved farther than this since the last update skips the walk
    global_candidates: int = 8  # nearest points the k-d tree returns for the global search

    def __post_init__(self) -> None:
        for name in ("window_m", "max_jump_m", "fallback_distance_m", "trust_step_m"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"ProgressConfig.{name} must be a positive number of metres, got {value!r}")
        if not (isinstance(self.global_candidates, int) and self.global_candidates >= 1):
            raise ConfigError(f"ProgressConfig.global_candidates must be an integer >= 1, got {self.global_candidates!r}")


class ProgressTracker:
    """Locates positions on a line and credits progress along it (rules in the module doc)."""

    def __init__(self, line: ReferenceLine, config: ProgressConfig | None = None) -> None:
        self.line = line
        self.config = config if config is not None else ProgressConfig()
        # The hot path works on Python tuples of floats: for the handful of points a step
        # touches, scalar Python is several times faster than numpy's per-call overhead.
        self._points = [tuple(p) for p in line.points.tolist()]
        vec = line.segment_vectors
        horizontal = np.hypot(vec[:, 0], vec[:, 2])
        safe = np.where(horizontal > 1e-12, horizontal, 1.0)
        # Driver's right in TMNF's left-handed frame (y up): facing +z, right is +x.
        right_x = np.where(horizontal > 1e-12, vec[:, 2] / safe, 0.0)
        right_z = np.where(horizontal > 1e-12, -vec[:, 0] / safe, 0.0)
        # Per segment: start, vector, 1/length^2, arc length at start, length, right (x, z).
        table = np.column_stack([
            line.points[:-1], vec, 1.0 / line.segment_lengths ** 2, line.cumulative_m[:-1],
            line.segment_lengths, right_x, right_z])
        self._segs = [tuple(row) for row in table.tolist()]
        self._kernel = _progress_kernel.local if _progress_kernel is not None else None
        # The kernel reads these two arrays by address: they live as long as the tracker.
        self._c_points = np.ascontiguousarray(line.points, dtype=np.float64)
        self._c_segs = np.ascontiguousarray(table, dtype=np.float64)
        self._c_line = (self._c_points.ctypes.data, len(self._c_points), self._c_segs.ctypes.data, len(self._c_segs))
        self._segments = len(self._segs)
        self._np_starts = line.points[:-1]
        self._np_vectors = vec
        self._np_len2 = line.segment_lengths ** 2
        self._trust2 = self.config.trust_step_m ** 2
        self._max_jump = float(self.config.max_jump_m)
        self._fallback = float(self.config.fallback_distance_m)
        self._last = (math.nan, math.nan, math.nan)
        self._per_metre = 1.0 / float(line.segment_lengths.mean())  # points per metre of line
        self._max_walk = max(2, int(math.ceil(self.config.window_m * self._per_metre)))
        self._tree = None  # built on first global search
        self._index = 0
        self._progress = 0.0
        self.refused = 0  # updates refused by the anti-shortcut rule since reset
        self.fallbacks = 0  # updates that needed a global search since reset

    # --- public API ---------------------------------------------------------------------

    @property
    def progress_m(self) -> float:
        """Progress credited so far (metres of line, after the anti-shortcut rule)."""
        return self._progress

    @property
    def index(self) -> int:
        """The segment the tracker is on."""
        return self._index

    def reset(self, position) -> Location:
        """Global search; credit the location found as the progress so far."""
        location = self.locate(position)
        self._last = _xyz(position)
        self._index = location.index
        self._progress = location.arc_length_m
        self.refused = 0
        self.fallbacks = 0
        return location

    def locate(self, position) -> Location:
        """Stateless global search: the nearest location on the whole line."""
        x, y, z = _xyz(position)
        return self._global(x, y, z)

    def update(self, position) -> Location:
        """Locate from the previous segment (wider searches when needed), apply the anti-shortcut rule."""
        if type(position) is np.ndarray:
            x, y, z = position.tolist()
        else:
            x, y, z = _xyz(position)
        lx, ly, lz = self._last
        moved2 = (x - lx) * (x - lx) + (y - ly) * (y - ly) + (z - lz) * (z - lz)
        self._last = (x, y, z)
        max_jump = self._max_jump
        if moved2 <= self._trust2:
            location, walked_out = self._local(x, y, z, math.sqrt(moved2))
            creditable = -max_jump <= location.arc_length_m - self._progress <= max_jump
            trusted = creditable and not walked_out and location.distance_m <= self._fallback
        else:  # a long move (or no reset yet): the walk is not to be trusted
            location, creditable, trusted = None, False, False
        if not trusted:
            self.fallbacks += 1
            found = self._window(x, y, z)
            if location is None or not creditable or found.distance_m < location.distance_m:
                location = found
            if location.distance_m > self._fallback:
                found = self._global(x, y, z)
                if found.distance_m < location.distance_m:
                    location = found
            creditable = abs(location.arc_length_m - self._progress) <= max_jump
        if not creditable:
            self.refused += 1
            return Location(location.arc_length_m, location.lateral_m, location.distance_m,
                            location.index, False)
        self._index = location.index
        self._progress = location.arc_length_m
        return location

    # --- search -------------------------------------------------------------------------

    def _local(self, x: float, y: float, z: float, moved_m: float) -> tuple[Location, bool]:
        """Scan the points the car can have reached, walk on downhill (bounded), then project.

        The points up to ``moved_m + 1`` m ahead of the last segment are all scanned, not
        just walked while the distance falls: on a sharply kinked line (tool-assisted
        ghosts) the distance can rise before it falls, which would stop a pure walk short.
        """
        if self._kernel is not None:
            arc, lateral, distance, index, walked_out = self._kernel(
                *self._c_line, self._index, self._max_walk, self._per_metre, moved_m, x, y, z)
            return Location(arc, lateral, distance, index), walked_out
        pts = self._points
        last = len(pts) - 1
        start = j = self._index
        qx, qy, qz = pts[j]
        best = (qx - x) * (qx - x) + (qy - y) * (qy - y) + (qz - z) * (qz - z)
        limit = min(last, start + self._max_walk)
        ahead = min(limit, start + int((moved_m + 1.0) * self._per_metre) + 1)
        k = start + 1
        while k <= ahead:  # scan
            qx, qy, qz = pts[k]
            d = (qx - x) * (qx - x) + (qy - y) * (qy - y) + (qz - z) * (qz - z)
            if d < best:
                best = d
                j = k
            k += 1
        if j > start:
            while j < limit:  # forward, downhill
                qx, qy, qz = pts[j + 1]
                d = (qx - x) * (qx - x) + (qy - y) * (qy - y) + (qz - z) * (qz - z)
                if d >= best:
                    break
                best = d
                j += 1
            walked_out = j == limit and limit < last
        else:
            floor = max(0, start - self._max_walk)
            while j > floor:  # backward, downhill
                qx, qy, qz = pts[j - 1]
                d = (qx - x) * (qx - x) + (qy - y) * (qy - y) + (qz - z) * (qz - z)
                if d >= best:
                    break
                best = d
                j -= 1
            walked_out = j == floor and floor > 0
        # Segments j-1..j+1 (points j-1..j+2): the nearest location is next to the nearest
        # point, one more segment absorbs ties on zigzagging lines (quantised to 0.1 m).
        return self._best_of(range(max(j - 1, 0), min(j + 2, self._segments)), x, y, z), walked_out

    def _window(self, x: float, y: float, z: float) -> Location:
        """Nearest location among the segments within ``max_jump_m`` of the credited progress."""
        cum = self.line.cumulative_m
        reach = self.config.max_jump_m
        lo = max(int(np.searchsorted(cum, self._progress - reach, side="right")) - 1, 0)
        hi = min(int(np.searchsorted(cum, self._progress + reach, side="left")) + 1, self._segments)
        rel = np.array((x, y, z)) - self._np_starts[lo:hi]
        vec = self._np_vectors[lo:hi]
        t = np.clip(np.einsum("ij,ij->i", rel, vec) / self._np_len2[lo:hi], 0.0, 1.0)
        err = rel - t[:, None] * vec
        k = lo + int(np.argmin(np.einsum("ij,ij->i", err, err)))
        return self._best_of((k,), x, y, z)

    def _global(self, x: float, y: float, z: float) -> Location:
        if self._tree is None:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(self.line.points)
        k = min(self.config.global_candidates, len(self._points))
        _, nearest = self._tree.query((x, y, z), k=k)
        nearest = np.atleast_1d(nearest).tolist()
        nearest = [j for j in nearest if j < len(self._points)]  # k > N pads with N
        candidates = set()
        for j in nearest:
            if j > 0:
                candidates.add(j - 1)
            if j < self._segments:
                candidates.add(j)
        return self._best_of(sorted(candidates), x, y, z)

    def _best_of(self, segments, x: float, y: float, z: float) -> Location:
        """Project onto each candidate segment and keep the nearest."""
        segs = self._segs
        best_d2 = math.inf
        best_k = 0
        best_t = 0.0
        for k in segments:
            ax, ay, az, dx, dy, dz, inv_len2, _, _, _, _ = segs[k]
            ex = x - ax
            ey = y - ay
            ez = z - az
            t = (ex * dx + ey * dy + ez * dz) * inv_len2
            if t < 0.0:
                t = 0.0
            elif t > 1.0:
                t = 1.0
            ex -= t * dx
            ey -= t * dy
            ez -= t * dz
            d2 = ex * ex + ey * ey + ez * ez
            if d2 < best_d2:
                best_d2 = d2
                best_k = k
                best_t = t
        ax, _, az, dx, _, dz, _, cum, length, rx, rz = segs[best_k]
        t = best_t
        lateral = (x - ax - t * dx) * rx + (z - az - t * dz) * rz
        return Location(cum + t * length, lateral, math.sqrt(best_d2), best_k)


def _xyz(position) -> tuple[float, float, float]:
    """Three Python floats from a (3,) array or sequence."""
    if isinstance(position, np.ndarray):
        x, y, z = position.tolist()
    else:
        x, y, z = position
    return float(x), float(y), float(z)

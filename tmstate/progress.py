"""Progress along a reference line: where a position is, and how far the car has come.

:meth:`ProgressTracker.update` is on the env's hot path (every step), so it does not
search the whole line. The rules (also in docs/reward.md):

1. **Local walk.** From the segment found last time, walk point by point along the line
   (forward, else backward) while the distance to the car shrinks, at most
   ``window_m`` of line; then project the car onto the segments around the point found.
   This is O(1) amortised: the walk moves as many points as the car moved metres / spacing.
2. **Global fallback.** If the walk ran out of window, or ended farther than
   ``fallback_distance_m`` from the car, search the whole line with a k-d tree
   (``scipy.spatial.cKDTree``) and keep whichever of the two is nearer. :meth:`reset`
   always searches globally: call it after a reset, respawn, rewind or teleport.
3. **Anti-shortcut.** If the location found is more than ``max_jump_m`` of arc length away
   from the progress credited so far (forward *or* backward), it is not credited:
   ``progress_m`` stays, the tracker keeps its old segment, and the returned
   :class:`Location` has ``credited=False``. Cutting across to a later part of the track
   therefore earns nothing until the car is back near where it left the line. A real
   respawn is a big backward jump too: the env calls :meth:`reset` then, which credits it.
4. Going backwards within ``max_jump_m`` is credited: progress decreases (the reward's
   progress term is negative).

Coordinates are TMNF's: metres, y up, left-handed — facing +z, +x is on the driver's
right. ``lateral_m`` is positive to the right of the line's direction of travel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tmstate.errors import ConfigError
from tmstate.reference import ReferenceLine


@dataclass(frozen=True, slots=True)
class Location:
    """Where a position is relative to the line."""

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
    fallback_distance_m: float = 10.0  # a local result farther than this triggers a global search
    global_candidates: int = 8  # nearest points the k-d tree returns for the global search

    def __post_init__(self) -> None:
        for name in ("window_m", "max_jump_m", "fallback_distance_m"):
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
        # The hot path works on Python lists of floats: for the handful of points a step
        # touches, scalar Python is several times faster than numpy's per-call overhead.
        self._px, self._py, self._pz = (line.points[:, k].tolist() for k in range(3))
        vec = line.segment_vectors
        self._dx, self._dy, self._dz = (vec[:, k].tolist() for k in range(3))
        self._len2 = (line.segment_lengths ** 2).tolist()
        self._len = line.segment_lengths.tolist()
        self._cum = line.cumulative_m.tolist()
        horizontal = np.hypot(vec[:, 0], vec[:, 2])
        safe = np.where(horizontal > 1e-12, horizontal, 1.0)
        # Driver's right in TMNF's left-handed frame (y up): facing +z, right is +x.
        self._rx = np.where(horizontal > 1e-12, vec[:, 2] / safe, 0.0).tolist()
        self._rz = np.where(horizontal > 1e-12, -vec[:, 0] / safe, 0.0).tolist()
        self._segments = len(self._len)
        self._max_walk = max(2, int(math.ceil(self.config.window_m / float(line.segment_lengths.min()))))
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
        """Locate from the previous segment (global fallback), apply the anti-shortcut rule."""
        x, y, z = _xyz(position)
        location, walked_out = self._local(x, y, z)
        if walked_out or location.distance_m > self.config.fallback_distance_m:
            self.fallbacks += 1
            found = self._global(x, y, z)
            if found.distance_m < location.distance_m:
                location = found
        if abs(location.arc_length_m - self._progress) > self.config.max_jump_m:
            self.refused += 1
            return Location(location.arc_length_m, location.lateral_m, location.distance_m,
                            location.index, False)
        self._index = location.index
        self._progress = location.arc_length_m
        return location

    # --- search -------------------------------------------------------------------------

    def _local(self, x: float, y: float, z: float) -> tuple[Location, bool]:
        """Walk from the last segment to the nearest point (bounded), then project."""
        px, py, pz = self._px, self._py, self._pz
        last = len(px) - 1
        j = self._index
        best = (px[j] - x) ** 2 + (py[j] - y) ** 2 + (pz[j] - z) ** 2
        steps = 0
        limit = self._max_walk
        moved = False
        while j < last and steps < limit:  # forward
            d = (px[j + 1] - x) ** 2 + (py[j + 1] - y) ** 2 + (pz[j + 1] - z) ** 2
            if d >= best:
                break
            best, j, steps, moved = d, j + 1, steps + 1, True
        if not moved:
            while j > 0 and steps < limit:  # backward
                d = (px[j - 1] - x) ** 2 + (py[j - 1] - y) ** 2 + (pz[j - 1] - z) ** 2
                if d >= best:
                    break
                best, j, steps = d, j - 1, steps + 1
        # Segments j-1..j+1 (points j-1..j+2) absorb a small non-monotonic wiggle that can
        # stop the walk one point early (e.g. on lines quantised to 0.1 m).
        lo = max(j - 1, 0)
        hi = min(j + 2, self._segments)
        return self._best_of(range(lo, hi), x, y, z), steps >= limit

    def _global(self, x: float, y: float, z: float) -> Location:
        if self._tree is None:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(self.line.points)
        k = min(self.config.global_candidates, len(self._px))
        _, nearest = self._tree.query((x, y, z), k=k)
        nearest = np.atleast_1d(nearest).tolist()
        candidates = set()
        for j in nearest:
            if j > 0:
                candidates.add(j - 1)
            if j < self._segments:
                candidates.add(j)
        return self._best_of(sorted(candidates), x, y, z)

    def _best_of(self, segments, x: float, y: float, z: float) -> Location:
        """Project onto each candidate segment and keep the nearest."""
        px, py, pz = self._px, self._py, self._pz
        dx, dy, dz, len2 = self._dx, self._dy, self._dz, self._len2
        best_d2 = math.inf
        best_k = 0
        best_t = 0.0
        for k in segments:
            ax, ay, az = px[k], py[k], pz[k]
            t = ((x - ax) * dx[k] + (y - ay) * dy[k] + (z - az) * dz[k]) / len2[k]
            if t < 0.0:
                t = 0.0
            elif t > 1.0:
                t = 1.0
            ex = x - ax - t * dx[k]
            ey = y - ay - t * dy[k]
            ez = z - az - t * dz[k]
            d2 = ex * ex + ey * ey + ez * ez
            if d2 < best_d2:
                best_d2, best_k, best_t = d2, k, t
        k, t = best_k, best_t
        ex = x - px[k] - t * dx[k]
        ez = z - pz[k] - t * dz[k]
        lateral = ex * self._rx[k] + ez * self._rz[k]
        return Location(self._cum[k] + t * self._len[k], lateral, math.sqrt(best_d2), k)


def _xyz(position) -> tuple[float, float, float]:
    """Three Python floats from a (3,) array or sequence."""
    if isinstance(position, np.ndarray):
        x, y, z = position.tolist()
    else:
        x, y, z = position
    return float(x), float(y), float(z)

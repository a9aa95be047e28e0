"""``tmstate bench progress``: µs per ProgressTracker.update()/locate() vs a full argmin.

On Linesight's 19,503-point map5 line (../shared/realdata/linesight/map5_0.5m_cl.npy) a
car drives the whole line at 2 m per step (144 km/h at a 50 ms action period) wandering
up to 3 m to either side; the same positions are located by

- ``update()`` — the tracker's windowed search (the env's hot path);
- ``locate()`` — its stateless global search (k-d tree);
- a full argmin over all points, ``np.argmin(np.linalg.norm(points - p, axis=1))``, the
  way trackmania-gym and tmrl find the nearest point (and its squared-distance variant).

All figures come from one run (each timing the best of three passes); ``speedup_*`` are
ratios of those timings. A second drive
at 14 m per step (~1000 km/h, TMNF's top speed) shows the cost of fast cars.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tmstate.errors import ReferenceLineError

LINE = Path(__file__).resolve().parents[4] / "shared" / "realdata" / "linesight" / "map5_0.5m_cl.npy"
BASELINE_SAMPLES = 300


def drive(line, step_m: float, count: int | None) -> np.ndarray:
    """Positions along the line every ``step_m``, wandering +-3 m sideways."""
    arcs = np.arange(0.0, line.length_m, step_m)
    if count is not None:
        arcs = arcs[:count]
    out = np.empty((len(arcs), 3))
    for i, s in enumerate(arcs):
        t = line.tangent_at(s)
        side = np.array([t[2], 0.0, -t[0]])
        side /= max(np.linalg.norm(side), 1e-9)
        out[i] = line.point_at(s) + 3.0 * np.sin(s / 40.0) * side
    return out


def _timed(fn, items, repeats: int = 3, before=None) -> float:
    """µs per call: the best of ``repeats`` passes (the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return best / len(items) * 1e6


def run(steps: int | None = None) -> dict:
    from tmstate.core.progress import ProgressTracker
    from tmstate.core.reference import ReferenceLine

    if not LINE.is_file():
        raise ReferenceLineError(LINE, "benchmark line not found",
                                 "the progress benchmark needs ../shared/realdata beside the checkout")
    line = ReferenceLine.load(LINE)
    points = line.points
    slow = drive(line, 2.0, steps)
    fast = drive(line, 14.0, steps)

    tracker = ProgressTracker(line)
    update_us = _timed(tracker.update, slow, before=lambda: tracker.reset(slow[0]))
    slow_fallbacks, slow_refused = tracker.fallbacks, tracker.refused
    update_fast_us = _timed(tracker.update, fast, before=lambda: tracker.reset(fast[0]))
    fast_fallbacks = tracker.fallbacks

    sample = slow[np.linspace(0, len(slow) - 1, min(BASELINE_SAMPLES, len(slow))).astype(int)]
    locate_us = _timed(tracker.locate, sample)
    argmin_us = _timed(lambda p: np.argmin(np.linalg.norm(points - p, axis=1)), sample)
    argmin_sq_us = _timed(lambda p: np.argmin(np.einsum("ij,ij->i", points - p, points - p)), sample)

    # Accuracy: the tracked arc length against the global search, at every position.
    oracle = ProgressTracker(line)
    tracker.reset(slow[0])
    worst = max(abs(tracker.update(p).arc_length_m - oracle.locate(p).arc_length_m) for p in slow)
    return {
        "line_points": len(points),
        "line_length_m": round(line.length_m, 1),
        "positions": len(slow),
        "step_m": 2.0,
        "update_us": round(update_us, 2),
        "update_fast_14m_us": round(update_fast_us, 2),
        "locate_us": round(locate_us, 2),
        "full_argmin_us": round(argmin_us, 2),
        "full_argmin_sqdist_us": round(argmin_sq_us, 2),
        "speedup_update": round(argmin_us / update_us, 1),
        "speedup_update_vs_sqdist": round(argmin_sq_us / update_us, 1),
        "speedup_locate": round(argmin_us / locate_us, 1),
        "max_error_m": round(worst, 6),
        "fallbacks": slow_fallbacks,
        "fallbacks_fast": fast_fallbacks,
        "refused": slow_refused,
    }

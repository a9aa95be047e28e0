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

``resync_cost_ratio``: ``update()`` fed the game's checkpoint count (a checkpoint every
400 m) with the checkpoint resync on, over the same with it off, timed in alternating
passes; the target is at most 1.2.
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


CHECKPOINT_EVERY_M = 400.0
"""Checkpoint spacing given to the benchmark line (map5's .npy line has none of its own)."""


RESYNC_PASSES = 15
"""Timed passes over the drive for each of resync on and off."""
RESYNC_BLOCK = 200
"""Updates per timed block of a pass (a block's best time over the passes counts)."""


def _checkpoint_cost(line, positions: np.ndarray) -> tuple[float, float, dict]:
    """(µs per update with resync on, with resync off, figures): both fed the same checkpoint counts.

    Timed in alternating passes (the order swapped every round), each pass in blocks of
    :data:`RESYNC_BLOCK` updates: a mode's time is the sum over blocks of its best time for
    that block in :data:`RESYNC_PASSES` passes, so a slower moment of the shared host (a
    preemption in one block of one pass) drops out of both instead of deciding the ratio.
    """
    from dataclasses import replace

    from tmstate.core.progress import ProgressConfig, ProgressTracker
    from tmstate.core.reference import ReferenceLine

    marks = tuple(np.arange(CHECKPOINT_EVERY_M, line.length_m - 1.0, CHECKPOINT_EVERY_M).tolist())
    marked = ReferenceLine(line.points, replace(line.metadata, checkpoints_m=marks, checkpoint_source="ghost"),
                           line.name)
    probe = ProgressTracker(marked)
    probe.reset(positions[0])
    arcs = np.array([probe.update(p).arc_length_m for p in positions])
    counts = np.searchsorted(np.asarray(marks), arcs, side="right").tolist()
    items = list(zip(positions, counts))
    on = ProgressTracker(marked, ProgressConfig(resync="checkpoint"))
    off = ProgressTracker(marked, ProgressConfig(resync="off"))
    blocks = [items[i:i + RESYNC_BLOCK] for i in range(0, len(items), RESYNC_BLOCK)]
    best = {"on": np.full(len(blocks), np.inf), "off": np.full(len(blocks), np.inf)}
    for round_ in range(RESYNC_PASSES):
        pair = (("on", on), ("off", off))
        for name, tracker in pair if round_ % 2 else pair[::-1]:
            tracker.reset(positions[0], 0)
            update = tracker.update
            for b, block in enumerate(blocks):
                start = time.perf_counter()
                for p, c in block:
                    update(p, c, False)
                best[name][b] = min(best[name][b], time.perf_counter() - start)
    per = 1e6 / len(items)
    figures = {"checkpoints": len(marks), "resyncs": on.resyncs,
               "progress_agrees": bool(abs(on.progress_m - off.progress_m) < 1e-9)}
    return float(best["on"].sum()) * per, float(best["off"].sum()) * per, figures


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

    # The checkpoint rules: the same drive with the game's checkpoint count passed (a
    # checkpoint every 400 m of this line), resync on against resync off.
    resync_on_us, resync_off_us, resync_figures = _checkpoint_cost(line, slow)

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
        "update_resync_on_us": round(resync_on_us, 2),
        "update_resync_off_us": round(resync_off_us, 2),
        "resync_cost_ratio": round(resync_on_us / resync_off_us, 3),
        **resync_figures,
        "max_error_m": round(worst, 6),
        "fallbacks": slow_fallbacks,
        "fallbacks_fast": fast_fallbacks,
        "refused": slow_refused,
    }

"""``tmstate plot-line``: a PNG top view of a reference line.

Top view in TMNF's frame: x to the right, z up the page (a true, unmirrored view from
above, since the world is left-handed with y up). The line is coloured by height; the start
(green) and finish (red) are marked, checkpoints known to the line (``checkpoints_m``) as
orange diamonds and those of a ``.Challenge.Gbx`` as squares. A ghost or an episode log can
be drawn over it.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from tmstate.files import atomic_write_bytes
from tmstate.core.reference import ReferenceLine


def save_figure(fig, path: str | Path) -> Path:
    """Save a matplotlib figure as PNG atomically."""
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def plot_line(line: ReferenceLine, output: str | Path, *, ghost_positions: np.ndarray | None = None,
              episode_positions: np.ndarray | None = None, markers: list | None = None,
              title: str = "") -> Path:
    """Draw the line (and overlays) and write the PNG; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    pts = line.points
    fig, ax = plt.subplots(figsize=(8, 8), dpi=100)
    segments = np.stack([pts[:-1][:, [0, 2]], pts[1:][:, [0, 2]]], axis=1)
    heights = 0.5 * (pts[:-1, 1] + pts[1:, 1])
    collection = LineCollection(list(segments), cmap="viridis", linewidths=2.5)
    collection.set_array(heights)
    ax.add_collection(collection)
    fig.colorbar(collection, ax=ax, shrink=0.7, label="height y (m)")
    if ghost_positions is not None and len(ghost_positions):
        ax.plot(ghost_positions[:, 0], ghost_positions[:, 2], color="black", linewidth=0.8,
                linestyle="--", label="ghost")
    if episode_positions is not None and len(episode_positions):
        ax.plot(episode_positions[:, 0], episode_positions[:, 2], color="tab:blue", linewidth=1.0,
                label="episode")
    for i, arc in enumerate(line.metadata.checkpoints_m):
        p = line.point_at(arc)
        ax.plot(p[0], p[2], marker="D", color="tab:orange", markersize=7,
                label="checkpoint (line)" if i == 0 else None)
    styles = {"start": ("tab:green", "start block"), "checkpoint": ("tab:orange", "checkpoint block"),
              "finish": ("tab:red", "finish block")}
    seen = set()
    for marker in markers or []:
        colour, label = styles[marker.kind]
        ax.plot(marker.position[0], marker.position[2], marker="s", markersize=11, markerfacecolor="none",
                markeredgecolor=colour, markeredgewidth=2, label=None if marker.kind in seen else label)
        seen.add(marker.kind)
    ax.plot(pts[0, 0], pts[0, 2], marker="o", color="tab:green", markersize=10, label="start")
    ax.plot(pts[-1, 0], pts[-1, 2], marker="X", color="tab:red", markersize=11, label="finish")
    ax.set_aspect("equal", adjustable="datalim")
    ax.autoscale_view()
    ax.set_xlabel("x (m)")
    ax.set_ylabel("z (m)")
    name = line.metadata.map_name or Path(line.name).stem
    ax.set_title(title or f"{name}: {line.length_m:.0f} m, {len(line)} points")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    out = save_figure(fig, output)
    plt.close(fig)
    return out


def plot_progress(states: list, line: ReferenceLine, output: str | Path, *, progress_config=None,
                  title: str = "") -> Path:
    """PNG: credited progress against race time along ``line``, resync on and off.

    Left: the line from above with the run drawn over it, red where the tracker refused it
    (off the credited part of the line). Right: progress with the checkpoint resync (as
    configured, default on) and with it off, the game's checkpoint count rising marked as
    vertical lines and each resync as a dot. Scored by the env's own
    :class:`~tmstate.core.scoring.Scorer`.
    """
    import dataclasses

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tmstate.core.progress import ProgressConfig
    from tmstate.core.scoring import Scorer

    config = progress_config if progress_config is not None else ProgressConfig()
    runs = {}
    for name, mode in (("resync on", "checkpoint"), ("resync off", "off")):
        scorer = Scorer(line, progress=dataclasses.replace(config, resync=mode))
        runs[name] = (scorer, scorer.run(states))
    times = np.array([s.race_time_ms for s in states[1:]]) / 1000.0
    steps = runs["resync on"][1]
    fig, (top, curve) = plt.subplots(1, 2, figsize=(13, 5.5), dpi=100, gridspec_kw={"width_ratios": [1, 1.25]})
    pts = line.points
    top.plot(pts[:, 0], pts[:, 2], color="grey", linewidth=3, alpha=0.5, label="reference line")
    path = np.array([s.position for s in states])
    refused = np.array([not s.location.credited for s in steps])
    top.plot(path[:, 0], path[:, 2], color="tab:blue", linewidth=1.0, label="run (credited)")
    top.scatter(path[1:][refused, 0], path[1:][refused, 2], s=6, color="tab:red", zorder=3, label="refused")
    for i, arc in enumerate(line.metadata.checkpoints_m):
        p = line.point_at(arc)
        top.plot(p[0], p[2], marker="D", color="tab:orange", markersize=7, label="checkpoint" if i == 0 else None)
    top.plot(pts[-1, 0], pts[-1, 2], marker="X", color="tab:red", markersize=10, label="finish")
    top.set_aspect("equal", adjustable="datalim")
    top.set_xlabel("x (m)")
    top.set_ylabel("z (m)")
    top.set_title("from above")
    top.legend(loc="best", fontsize=7)
    for name, style in (("resync on", "-"), ("resync off", "--")):
        scorer, scored = runs[name]
        curve.plot(times, [s.progress_m for s in scored], style, linewidth=1.6,
                   label=f"{name}: {scored[-1].progress_m / line.length_m:.0%} of the line, {scorer.resyncs} resync(s)")
    counts = [s.checkpoint_count for s in states]
    for i in range(1, len(counts)):
        if counts[i] > counts[i - 1]:
            curve.axvline(states[i].race_time_ms / 1000.0, color="tab:orange", linewidth=0.8, alpha=0.7)
    hits = [(t, s.progress_m) for t, s in zip(times, steps) if s.resynced]
    if hits:
        curve.scatter(*zip(*hits), color="black", zorder=3, label="resync (checkpoint confirmed)")
    curve.axhline(line.length_m, color="grey", linewidth=0.8)
    curve.set_xlabel("race time (s)  — orange: the game's checkpoint count rises")
    curve.set_ylabel("credited progress (m)")
    curve.set_title("progress along the line")
    curve.legend(loc="upper left", fontsize=8)
    name = line.metadata.map_name or Path(line.name).stem
    fig.suptitle(title or f"{name}: a run on another route, {line.length_m:.0f} m line")
    fig.tight_layout()
    out = save_figure(fig, output)
    plt.close(fig)
    return out

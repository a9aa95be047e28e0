"""Reference lines from ghosts, and how well a run follows a line.

- :func:`line_from_ghost` — the line a ghost drove, with the arc lengths of its checkpoints;
  :func:`challenge_checkpoint_arcs` — checkpoints from a map's blocks instead;
- :func:`check_line` — a ghost's states scored along a line by the env's own scoring path
  (:class:`~tmstate.core.scoring.Scorer`): the figures ``tmstate line-from-replay --check`` prints;
- :func:`line_from_replay` — what ``tmstate line-from-replay`` does with a ghost, as data.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tmstate.core.reference import ReferenceLine
from tmstate.core.state import GameState
from tmstate.errors import ConfigError, ReplayFileError
# line_from_ghost and ghost_checkpoint_arcs live in formats.gbx (the simulator, below the
# tools, builds a ghost's line for map=...); re-exported here for the tools and the tests.
from tmstate.formats.gbx import (Ghost, ghost_checkpoint_arcs, ghost_metadata, line_from_ghost,  # noqa: F401
                                 read_challenge_markers, read_ghost)


CHALLENGE_MATCH_M = 32.0
"""A checkpoint block whose centre is farther than this (one block) from the line is not on its route."""


def challenge_checkpoint_arcs(path: str | Path, line: ReferenceLine) -> tuple[float, ...]:
    """Arc lengths on ``line`` of the checkpoint blocks of a ``.Challenge.Gbx``, in line order.

    Each block's centre (raised 1 m, about where a car passes) is located on the line; a
    block is a 32 m square, so these sit within about half a block of where a car crosses
    the gate (measured on A01 and B13: 2-11 m from the arcs a ghost's checkpoint times give).
    Good for the resync rule; for the anti-cut rule use a margin of 16 m or a ghost's line.
    ReplayFileError when a checkpoint block is farther than a block from the line (the line
    does not follow this map).
    """
    from tmstate.core.progress import ProgressTracker

    _, markers = read_challenge_markers(path)
    tracker = ProgressTracker(line)
    arcs = []
    for marker in markers:
        if marker.kind != "checkpoint":
            continue
        loc = tracker.locate(marker.position + np.array([0.0, 1.0, 0.0]))
        if loc.distance_m > CHALLENGE_MATCH_M:
            raise ReplayFileError(Path(path), f"checkpoint block {marker.block} at {marker.position.round(1).tolist()} "
                                  f"is {loc.distance_m:.0f} m from the line", "is the line from this map?")
        arcs.append(round(loc.arc_length_m, 3))
    return tuple(sorted(arcs))


def score_states(states: list[GameState], line: ReferenceLine, progress_config=None, reward_config=None):
    """(scorer, scored steps): ``states`` scored along ``line`` by the env's own
    :class:`~tmstate.core.scoring.Scorer` (termination not applied)."""
    from tmstate.core.scoring import Scorer

    scorer = Scorer(line, reward_config, progress=progress_config)
    return scorer, scorer.run(states)


def check_line(ghost: Ghost, line: ReferenceLine, progress_config=None, reward_config=None) -> dict:
    """Replay the ghost's states through the scoring path; figures for a person or a test.

    ``max_backward_m`` is the largest drop of credited progress below its running maximum.
    """
    scorer, steps = score_states(ghost.states(), line, progress_config, reward_config)
    tracker = scorer.tracker
    peak = steps[0].progress_m - steps[0].progress_delta_m if steps else tracker.progress_m
    max_backward = worst_distance = ret = 0.0
    for step in steps:
        ret += step.reward
        peak = max(peak, step.progress_m)
        max_backward = max(max_backward, peak - step.progress_m)
        worst_distance = max(worst_distance, step.location.distance_m)
    return {
        "replay": ghost.path.name,
        "map_name": ghost.map_name,
        "map_uid": ghost.map_uid,
        "race_time_ms": ghost.race_time_ms,
        "sample_period_ms": ghost.sample_period_ms,
        "samples": len(steps) + 1,
        "line_points": len(line),
        "line_length_m": round(line.length_m, 3),
        "final_progress_m": round(tracker.progress_m, 3),
        "final_progress_fraction": round(tracker.progress_m / line.length_m, 6),
        "max_backward_m": round(max_backward, 3),
        "max_distance_m": round(worst_distance, 3),
        "refused_updates": tracker.refused,
        "resyncs": scorer.resyncs,
        "resync_m": round(scorer.resync_m, 3),
        "return": round(ret, 6),
    }


def default_line_path(ghost: Ghost) -> Path:
    """``reference_lines/<map name>.npz`` (the file stem when the map name is unknown)."""
    name = ghost.map_name or ghost.path.name.split(".")[0]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "line"
    return Path("reference_lines") / f"{safe}.npz"


def line_from_replay(replay: str | Path, *, output: str | Path | None = None, spacing_m: float = 0.5,
                     smooth: float = 0.0, check: bool = False, other_line: str | Path | None = None,
                     log_path: str | Path | None = None) -> dict:
    """``tmstate line-from-replay GHOST``: build the ghost's line and save it (``output``, else
    :func:`default_line_path`); with ``check`` also the :func:`check_line` figures; with
    ``other_line`` (needs ``check``) score the ghost along that line instead, writing nothing;
    ``log_path`` also writes the ghost as a states-only episode log. Returns what to report:
    the check figures, else the line's size; ``output`` names the line used either way.
    Every output is checked (:func:`tmstate.files.check_output`) before the work starts."""
    from tmstate.files import check_output

    if log_path:
        check_output(log_path, "log file")
    if output:
        check_output(output, "line file")
    ghost = read_ghost(replay)
    if other_line:
        if not check:
            raise ConfigError("--line OTHER.npz scores the ghost along another line: add --check")
        if output:
            raise ConfigError("--line and -o do not go together: with --line no line is written")
        path = Path(other_line)
        line = ReferenceLine.load(path)
    else:
        line = line_from_ghost(ghost, spacing_m=spacing_m, smooth=smooth)
        path = Path(output) if output else default_line_path(ghost)
        line.save(path)
    if log_path:
        from tmstate.formats.log import write_states_log

        write_states_log(ghost.states(), Path(log_path), ghost_metadata(ghost, path))
    if check:
        return {**check_line(ghost, line), "output": str(path)}
    return {"output": str(path), "line_length_m": round(line.length_m, 3), "line_points": len(line),
            "race_time_ms": ghost.race_time_ms, "replay": ghost.path.name}


def line_checkpoints(line_path: str | Path, challenge: str | Path, output: str | Path | None = None) -> dict:
    """``tmstate line-checkpoints``: give a line (e.g. a Linesight ``.npy``) the checkpoints of its
    map's ``.Challenge.Gbx`` (:func:`challenge_checkpoint_arcs`, ``checkpoint_source``
    "challenge"), saved to ``output`` (default: the line's path as ``.npz``); what to report."""
    from dataclasses import replace

    line = ReferenceLine.load(line_path)
    arcs = challenge_checkpoint_arcs(challenge, line)
    line.metadata = replace(line.metadata, checkpoints_m=arcs, checkpoint_source="challenge")
    path = Path(output) if output else Path(line_path).with_suffix(".npz")
    line.save(path)
    return {"output": str(path), "checkpoints_m": list(arcs), "line_length_m": round(line.length_m, 3)}

"""Progress tracking: projection, lateral sign, windowed search, fallback, anti-shortcut."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from tmstate.errors import ConfigError
from tmstate.core.progress import ProgressConfig, ProgressTracker
from tmstate.core.reference import ReferenceLine


def straight(length: float = 100.0) -> ReferenceLine:
    return ReferenceLine.from_points([[0, 0, 0], [0, 0, length]], spacing_m=0.5)


def hairpin() -> ReferenceLine:
    """Up +z for 100 m, a half circle of radius 10 m, back down -z: legs 20 m apart."""
    up = np.stack([np.zeros(101), np.zeros(101), np.linspace(0, 100, 101)], axis=1)
    t = np.linspace(0, np.pi, 60)[1:-1]
    turn = np.stack([10 - 10 * np.cos(t), np.zeros_like(t), 100 + 10 * np.sin(t)], axis=1)
    down = np.stack([np.full(101, 20.0), np.zeros(101), np.linspace(100, 0, 101)], axis=1)
    return ReferenceLine.from_points(np.concatenate([up, turn, down]), spacing_m=0.5)


def brute_force(line: ReferenceLine, p: np.ndarray) -> tuple[float, float]:
    """(distance, arc length) of the nearest point on any segment, by full numpy search."""
    a, d = line.points[:-1], line.segment_vectors
    t = np.clip(np.einsum("ij,ij->i", p - a, d) / line.segment_lengths**2, 0, 1)
    q = a + t[:, None] * d
    dist = np.linalg.norm(q - p, axis=1)
    k = int(np.argmin(dist))
    return float(dist[k]), float(line.cumulative_m[k] + t[k] * line.segment_lengths[k])


def test_locate_on_a_straight_line_and_lateral_sign():
    tracker = ProgressTracker(straight())
    loc = tracker.locate(np.array([3.0, 4.0, 42.0]))
    assert loc.arc_length_m == pytest.approx(42.0)
    assert loc.distance_m == pytest.approx(5.0)
    # Facing +z in TMNF's left-handed frame, +x is the driver's right.
    assert loc.lateral_m == pytest.approx(3.0)
    assert tracker.locate([-2.0, 0.0, 10.0]).lateral_m == pytest.approx(-2.0)
    assert tracker.locate([0.0, 0.0, -7.0]).arc_length_m == 0.0  # clamped before the start
    assert tracker.locate([0.0, 0.0, 130.0]).arc_length_m == pytest.approx(100.0)


def test_update_follows_forward_and_backward_motion():
    tracker = ProgressTracker(straight())
    tracker.reset([0.0, 0.0, 0.0])
    for z in np.arange(0.3, 60, 1.7):
        loc = tracker.update([1.0, 0.0, z])
        assert loc.credited and loc.arc_length_m == pytest.approx(z)
    assert tracker.progress_m == pytest.approx(59.8)
    loc = tracker.update([1.0, 0.0, 55.0])  # reversing 4.8 m is credited as negative progress
    assert tracker.progress_m == pytest.approx(55.0) and loc.credited
    assert tracker.fallbacks == 0


def test_shortcut_across_the_hairpin_is_not_credited():
    line = hairpin()
    tracker = ProgressTracker(line)
    tracker.reset([0.0, 0.0, 0.0])
    for z in np.arange(1, 61, 2.0):
        tracker.update([0.0, 0.0, z])
    before = tracker.progress_m
    loc = tracker.update([20.0, 0.0, 60.0])  # jump to the other leg: ~100 m further along
    assert not loc.credited
    assert loc.arc_length_m > before + 50  # the location is reported...
    assert tracker.progress_m == before  # ...but not credited
    assert tracker.refused == 1
    # Back on the first leg, progress goes on from where it was.
    loc = tracker.update([0.0, 0.0, 62.0])
    assert loc.credited and tracker.progress_m == pytest.approx(62.0)
    # A reset (the env's answer to a respawn or teleport) credits the new place.
    assert tracker.reset([20.0, 0.0, 60.0]).arc_length_m == pytest.approx(tracker.progress_m)
    assert tracker.progress_m > 150


def test_teleport_within_the_jump_limit_uses_the_global_fallback():
    line = hairpin()
    tracker = ProgressTracker(line, ProgressConfig(window_m=5.0, max_jump_m=200.0))
    tracker.reset([0.0, 0.0, 0.0])
    loc = tracker.update([20.0, 0.5, 90.0])  # far beyond the 5 m window
    assert tracker.fallbacks == 1 and loc.credited
    assert loc.arc_length_m == pytest.approx(brute_force(line, np.array([20.0, 0.5, 90.0]))[1])


def test_bad_config_is_refused():
    with pytest.raises(ConfigError, match="max_jump_m"):
        ProgressConfig(max_jump_m=-1)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    x=st.floats(-30, 60), y=st.floats(-5, 5), z=st.floats(-30, 140),
)
def test_locate_matches_brute_force(seed, x, y, z):
    rng = np.random.default_rng(seed)
    pts = np.cumsum(rng.normal(0, 4, size=(30, 3)) + [0, 0, 4], axis=0)
    pts[:, 1] *= 0.2
    line = ReferenceLine.from_points(pts, spacing_m=0.5)
    p = np.array([x, y, z])
    loc = ProgressTracker(line).locate(p)
    dist, _ = brute_force(line, p)
    assert loc.distance_m == pytest.approx(dist, abs=1e-6)


def offset_samples(line: ReferenceLine, rng: np.random.Generator, count: int):
    """Points on the line's horizontal normal, 0-5 m to either side, where the answer is unique.

    Kept only where the line is locally straight enough (heading change < 25 degrees over
    +-8 m) and no other part of the line (more than 15 m of arc away) comes within the
    offset + 2 m — there the nearest line point is genuinely elsewhere.
    """
    pts, cum = line.points, line.cumulative_m
    tree = cKDTree(pts)
    out = []
    while len(out) < count:
        i = int(rng.integers(20, len(pts) - 20))
        chord = pts[i + 8] - pts[i - 8]  # a 8 m chord: immune to the 0.1 m quantisation
        tangent = chord / np.linalg.norm(chord)
        before, after = pts[i] - pts[i - 16], pts[i + 16] - pts[i]
        cos_turn = np.dot(before[[0, 2]], after[[0, 2]]) / (np.linalg.norm(before[[0, 2]]) * np.linalg.norm(after[[0, 2]]))
        if cos_turn < np.cos(np.radians(25)):
            continue
        normal = np.array([tangent[2], 0.0, -tangent[0]])
        normal /= np.linalg.norm(normal)
        offset = float(rng.uniform(0, 5)) * (1 if rng.random() < 0.5 else -1)
        p = pts[i] + offset * normal
        near = tree.query_ball_point(p, abs(offset) + 2.0)
        if any(abs(cum[j] - cum[i]) > 15.0 for j in near):
            continue
        out.append((i, p, offset))
    return out


@pytest.mark.parametrize("name", ["map5_0.5m_cl.npy", "ESL-Hockolicious_0.5m_cl2.npy"])
def test_linesight_offsets_locate_within_half_a_metre(realdata, name):
    # These lines are quantised to 0.1 m: smoothing over ~1 m removes the point-to-point
    # zigzag that otherwise shifts far-off positions by up to one segment (0.54 m).
    line = ReferenceLine.load(realdata / "linesight" / name, spacing_m=0.5, smooth=1.0)
    rng = np.random.default_rng(5)
    samples = offset_samples(line, rng, 300)
    tracker = ProgressTracker(line)
    for i, p, offset in samples:
        loc = tracker.locate(p)
        assert abs(loc.arc_length_m - line.cumulative_m[i]) < 0.5, (i, offset, loc)
        assert abs(loc.lateral_m - offset) < 0.5
    # The windowed update gives the same answers along a drive with sideways wander.
    s = np.arange(10.0, line.length_m - 10.0, 2.3)
    wander = 4.0 * np.sin(s / 37.0)
    tracker.reset(line.point_at(s[0]))
    oracle = ProgressTracker(line)
    worst = 0.0
    for arc, w in zip(s, wander):
        p = line.point_at(arc) + w * np.array([line.tangent_at(arc)[2], 0.0, -line.tangent_at(arc)[0]])
        loc = tracker.update(p)
        expected = oracle.locate(p)
        worst = max(worst, abs(loc.arc_length_m - expected.arc_length_m))
        assert loc.credited
    assert worst < 1e-9
    assert tracker.refused == 0


def test_bench_progress_reports_its_figures(realdata):
    """The benchmark runs on map5 and agrees with the global search (timings are not asserted)."""
    from tmstate.tools.bench.progress import run

    figures = run(200)
    assert figures["line_points"] == 19503 and figures["positions"] == 200
    # the reported speed-up is the ratio of the two reported timings (no timing is asserted)
    ratio = figures["full_argmin_us"] / figures["update_us"]  # both rounded to 0.01 us
    assert figures["speedup_update"] == pytest.approx(ratio, rel=0.01, abs=0.06)
    assert figures["refused"] == 0 and figures["fallbacks"] == 0
    # The checkpoint-rule comparison ran the same drive both ways with the same result.
    assert figures["checkpoints"] == 24 and figures["resyncs"] == 0 and figures["progress_agrees"]
    assert figures["resync_cost_ratio"] == pytest.approx(figures["update_resync_on_us"] / figures["update_resync_off_us"], abs=0.01)
    assert figures["max_error_m"] < 0.6  # at most about one segment of the 0.1 m-quantised line


# --- checkpoint rules: resync (on by default) and anti-cut (off by default) --------------


def hairpin_with_checkpoints(*marks: float) -> ReferenceLine:
    """:func:`hairpin` whose metadata lists checkpoints at ``marks`` (arc lengths)."""
    line = hairpin()
    line.metadata.checkpoints_m = tuple(marks)
    line.metadata.checkpoint_source = "ghost"
    return line


def down_leg(line: ReferenceLine, z: float) -> np.ndarray:
    """A point on the hairpin's second leg (x = 20, going -z) at height ``z``."""
    return np.array([20.0, 0.0, z])


def test_checkpoint_resync_credits_the_skipped_metres_once_and_the_finish_the_rest():
    line = hairpin_with_checkpoints(60.0, 190.0)
    apex = 100.0 + 10.0 * np.pi  # arc length where the second leg starts
    tracker = ProgressTracker(line)
    assert tracker.config.resync == "checkpoint"  # the default
    tracker.reset([0.0, 0.0, 0.0], 0)
    for z in np.arange(1, 71, 2.0):
        tracker.update([0.0, 0.0, z], 1 if z >= 60 else 0)
    assert tracker.progress_m == pytest.approx(69.0) and tracker.resyncs == 0
    # Across to the second leg, ~110 m of arc ahead, before its checkpoint (190 m): refused.
    for z in (75.0, 70.0, 65.0, 62.0):
        loc = tracker.update(down_leg(line, z), 1)
        assert not loc.credited and tracker.progress_m == pytest.approx(69.0)
    # The game confirms checkpoint 2 (190 m, at z = 100 - (190 - apex) on the second leg).
    z2 = 100.0 - (190.0 - apex)
    loc = tracker.update(down_leg(line, z2 - 1.0), 2)
    assert loc.credited and tracker.resyncs == 1
    assert tracker.progress_m == pytest.approx(191.0, abs=0.05)
    assert tracker.resync_m == pytest.approx(191.0 - 69.0, abs=0.05)
    for z in np.arange(z2 - 3.0, 20.0, -2.0):  # on along the leg: the ordinary rules again
        assert tracker.update(down_leg(line, z), 2).credited
    assert tracker.resyncs == 1
    # Finished 19 m before the line's end (another way into the finish): the rest is credited,
    # an ordinary finish (the tracker was on the line), not a resync.
    tracker.update(down_leg(line, 19.0), 3, True)
    assert tracker.progress_m == pytest.approx(line.length_m) and tracker.resyncs == 1
    tracker.update(down_leg(line, 19.0), 3, True)  # credited once
    assert tracker.resyncs == 1 and tracker.progress_m == pytest.approx(line.length_m)


def test_a_finish_far_from_the_credited_progress_is_a_resync():
    line = hairpin_with_checkpoints(60.0, 190.0)
    tracker = ProgressTracker(line)
    tracker.reset([0.0, 0.0, 0.0], 0)
    for z in np.arange(1, 71, 2.0):
        tracker.update([0.0, 0.0, z], 1 if z >= 60 else 0)
    tracker.update(down_leg(line, 1.0), 3, True)  # both checkpoints and the finish in one step
    assert tracker.progress_m == pytest.approx(line.length_m)
    assert tracker.resyncs == 1 and tracker.resync_m == pytest.approx(line.length_m - 69.0)


def test_resync_off_and_lines_without_checkpoints_keep_the_anti_shortcut_rule_alone():
    marked = hairpin_with_checkpoints(60.0, 190.0)
    unknown = hairpin()  # no checkpoint_source: the line does not know its checkpoints
    for line, config in ((marked, ProgressConfig(resync="off")), (unknown, ProgressConfig())):
        tracker = ProgressTracker(line, config)
        tracker.reset([0.0, 0.0, 0.0], 0)
        for z in np.arange(1, 71, 2.0):
            tracker.update([0.0, 0.0, z], 1 if z >= 60 else 0)
        tracker.update(down_leg(line, 60.0), 2)
        assert tracker.progress_m == pytest.approx(69.0) and tracker.resyncs == 0
    with pytest.raises(ConfigError, match="resync"):
        ProgressConfig(resync="always")


def test_a_checkpoint_far_from_the_line_does_not_resync():
    line = hairpin_with_checkpoints(120.0, 190.0)
    tracker = ProgressTracker(line)
    tracker.reset([0.0, 0.0, 0.0], 0)
    for z in np.arange(1, 51, 2.0):
        tracker.update([0.0, 0.0, z], 0)
    tracker.update([-120.0, 0.0, 120.0], 1)  # the game says checkpoint 1; the car is 130 m away
    assert tracker.resyncs == 0 and tracker.resync_refused == 1 and tracker.progress_m == pytest.approx(49.0)


def test_reverse_loops_and_a_100_m_jump_still_earn_nothing_with_resync_on():
    line = hairpin_with_checkpoints(60.0, 190.0)
    tracker = ProgressTracker(line)
    tracker.reset([0.0, 0.0, 0.0], 0)
    for z in np.arange(1, 41, 2.0):
        tracker.update([0.0, 0.0, z], 0)
    start = tracker.progress_m
    for _ in range(5):  # 20 m backwards and forwards again, five times: net 0
        for z in list(np.arange(start - 2, start - 21, -2.0)) + list(np.arange(start - 18, start + 1, 2.0)):
            tracker.update([0.0, 0.0, z], 0)
        assert tracker.progress_m == pytest.approx(start)
    loc = tracker.update(down_leg(line, 40.0), 0)  # across the gap: ~150 m further along
    assert not loc.credited and tracker.progress_m == pytest.approx(start)


def test_anti_cut_closes_a_40_m_cut_that_the_jump_limit_lets_through():
    """A 20 m hop between the hairpin's legs skips 41 m of arc (under max_jump_m = 50) and
    the checkpoint at the apex; with ``anticut`` nothing past that checkpoint is credited."""
    apex = 100.0 + 5.0 * np.pi  # the checkpoint, half-way round the turn
    results = {}
    for anticut in (False, True):
        line = hairpin_with_checkpoints(apex)
        tracker = ProgressTracker(line, ProgressConfig(anticut=anticut))
        tracker.reset([0.0, 0.0, 0.0], 0)
        for z in np.arange(1, 96, 2.0):
            tracker.update([0.0, 0.0, z], 0)
        before = tracker.progress_m  # 95 m
        tracker.update(down_leg(line, 95.0), 0)  # the cut: 41 m of arc in one hop
        for z in np.arange(93.0, 0.0, -2.0):  # and on down the leg; the game never counted the checkpoint
            tracker.update(down_leg(line, z), 0)
        results[anticut] = (before, tracker.progress_m)
    before, after = results[False]
    assert after == pytest.approx(hairpin().length_m - 1.0, abs=0.5)  # the cut paid, and everything after it
    before, after = results[True]
    assert after <= apex + ProgressConfig().anticut_margin_m  # no more than driving to the checkpoint
    assert after - before < 30.0


def test_anti_cut_lets_a_confirmed_checkpoint_through():
    apex = 100.0 + 5.0 * np.pi
    line = hairpin_with_checkpoints(apex)
    tracker = ProgressTracker(line, ProgressConfig(anticut=True))
    tracker.reset([0.0, 0.0, 0.0], 0)
    for arc in np.arange(1.0, line.length_m, 1.5):
        tracker.update(line.point_at(arc), 1 if arc >= apex else 0)
    assert tracker.progress_m == pytest.approx(line.length_m - 0.5, abs=1.0)
    assert tracker.refused == 0 and tracker.resyncs == 0


def test_reset_with_a_checkpoint_count_picks_the_right_leg():
    """Legs 4 m apart: the global search alone would take the nearer, wrong one."""
    up = np.stack([np.zeros(201), np.zeros(201), np.linspace(0, 200, 201)], axis=1)
    t = np.linspace(0, np.pi, 20)[1:-1]
    turn = np.stack([2 - 2 * np.cos(t), np.zeros_like(t), 200 + 2 * np.sin(t)], axis=1)
    down = np.stack([np.full(201, 4.0), np.zeros(201), np.linspace(200, 0, 201)], axis=1)
    line = ReferenceLine.from_points(np.concatenate([up, turn, down]), spacing_m=0.5)
    line.metadata.checkpoints_m, line.metadata.checkpoint_source = (203.0,), "ghost"
    tracker = ProgressTracker(line)
    assert tracker.reset([2.5, 0.0, 20.0]).arc_length_m > 300  # nearest: the second leg
    assert tracker.reset([2.5, 0.0, 20.0], 0).arc_length_m == pytest.approx(20.0, abs=0.1)
    assert tracker.reset([2.5, 0.0, 20.0], 1).arc_length_m > 300

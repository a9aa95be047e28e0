"""Ghosts from real .Replay.Gbx files: race time, cut at the finish, lines, conventions, errors."""

from __future__ import annotations

from tmstate.tools.lines import line_from_ghost

import json
import math
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from tmstate import cli
from tmstate.errors import ReplayFileError
from tmstate.formats.gbx import read_challenge_markers, read_ghost
from tmstate.tools.lines import challenge_checkpoint_arcs, check_line
from tmstate.core.progress import ProgressConfig, ProgressTracker
from tmstate.core.reference import ReferenceLine
from tmstate.core.state import forward_vector


def time_in_name(path: Path) -> int:
    """``A01-Race_TAS_00_17_61`` -> 17610 ms (minutes, seconds, centiseconds)."""
    m = re.search(r"_(\d\d)_(\d\d)_(\d\d)\.Replay\.Gbx$", path.name)
    assert m, path.name
    minutes, seconds, centis = (int(g) for g in m.groups())
    return (minutes * 60 + seconds) * 1000 + centis * 10


@pytest.fixture(scope="module")
def ghosts(replays):
    return {path: read_ghost(path) for path in replays}


def test_race_time_matches_the_file_name(ghosts):
    named = {p: g for p, g in ghosts.items() if "_TAS_" in p.name}
    assert len(named) == 30
    wrong = {p.name: (g.race_time_ms, time_in_name(p)) for p, g in named.items() if g.race_time_ms != time_in_name(p)}
    assert not wrong


def test_every_ghost_replays_through_its_own_line(ghosts):
    """100 % of the line at the race time, never a metre backwards, no update refused and no
    checkpoint resync needed (the checkpoint rules change nothing for a ghost on its own line),
    with the anti-cut rule on as well."""
    assert len(ghosts) == 32
    failures = {}
    for path, ghost in ghosts.items():
        line = line_from_ghost(ghost)
        for config in (None, ProgressConfig(anticut=True)):
            figures = check_line(ghost, line, config)
            assert figures["race_time_ms"] == ghost.race_time_ms
            if (figures["max_backward_m"] > 0.0 or figures["final_progress_fraction"] < 0.99999
                    or figures["resyncs"] or figures["refused_updates"]):
                failures[path.name] = figures
    assert not failures


def track_cross_line(ghost, line) -> tuple[ProgressTracker, list[tuple[int, int, float]]]:
    """The ghost's states through a tracker on ``line``: (race time, checkpoint count, progress) per state."""
    states = ghost.states()
    tracker = ProgressTracker(line)
    tracker.reset(states[0].position, states[0].checkpoint_count)
    trace = []
    for state in states[1:]:
        before = tracker.progress_m
        loc = tracker.update(state.position, state.checkpoint_count, state.finished)
        trace.append((state.race_time_ms, state.checkpoint_count, before, tracker.progress_m, loc.credited))
    return tracker, trace


@pytest.mark.parametrize("ghost_name, line_name", [
    ("user_B13-Obstacle.Replay.Gbx", "B13-Obstacle_TAS_00_19_26.Replay.Gbx"),
    ("B13-Obstacle_TAS_00_19_26.Replay.Gbx", "Gosu_B13-Obstacle_WR.Replay.Gbx"),
])
def test_another_route_is_credited_once_the_game_confirms_the_next_checkpoint(realdata, ghost_name, line_name):
    """The B13 TAS run and the human runs take different routes between checkpoints. Along
    the other's line each is refused where it diverges (nothing credited: progress never
    rises above where it left the line) until the game's checkpoint count rises; then the
    skipped metres are credited at once, and by the finish the whole line is (>= 99 %)."""
    ghost = read_ghost(realdata / "replays" / ghost_name)
    line = line_from_ghost(read_ghost(realdata / "replays" / line_name))
    tracker, trace = track_cross_line(ghost, line)
    assert tracker.progress_m >= 0.99 * line.length_m
    assert tracker.resyncs >= 2 and tracker.resync_refused == 0
    divergences = 0
    left_at = None  # progress where the car left the credited line, while it is off it
    count = 0
    for time_ms, checkpoints, before, after, credited in trace:
        if checkpoints != count:  # the game confirms a checkpoint (or the finish)
            count, left_at = checkpoints, None
            continue
        if left_at is None and not credited:
            left_at, divergences = before, divergences + 1
        if left_at is not None:
            assert after <= left_at + 1e-9, (time_ms, left_at, after)  # nothing credited before the game confirms
    assert divergences >= 2
    # Without the resync (the old behaviour) the same run earns about a quarter of the line.
    off = check_line(ghost, line, ProgressConfig(resync="off"))
    assert off["final_progress_fraction"] < 0.3
    on = check_line(ghost, line)
    assert on["final_progress_fraction"] >= 0.99 and on["resyncs"] == tracker.resyncs
    assert on["resync_m"] == pytest.approx(tracker.resync_m, abs=1e-3)


def test_cli_check_along_another_line(realdata, tmp_path, capsys):
    """``line-from-replay GHOST --check --line OTHER.npz --json``: the same keys as --check."""
    replays = realdata / "replays"
    wr_line = tmp_path / "wr.npz"
    assert cli.main(["line-from-replay", str(replays / "Gosu_B13-Obstacle_WR.Replay.Gbx"), "-o", str(wr_line)]) == 0
    capsys.readouterr()
    tas = str(replays / "B13-Obstacle_TAS_00_19_26.Replay.Gbx")
    assert cli.main(["line-from-replay", tas, "-o", str(tmp_path / "tas.npz"), "--check", "--json"]) == 0
    own = json.loads(capsys.readouterr().out)
    assert cli.main(["line-from-replay", tas, "--check", "--line", str(wr_line), "--json"]) == 0
    other = json.loads(capsys.readouterr().out)
    assert set(other) == set(own)
    assert other["output"] == str(wr_line) and other["line_length_m"] == pytest.approx(2434.6, abs=0.1)
    assert other["final_progress_fraction"] >= 0.99 and other["resyncs"] == 3
    assert own["resyncs"] == 0 and own["final_progress_fraction"] == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tas.npz", "wr.npz"]  # --line wrote nothing
    assert cli.main(["line-from-replay", tas, "--line", str(wr_line)]) == 2  # --line needs --check


def test_checkpoints_from_the_map_file_match_the_ghosts(realdata):
    """The .Challenge.Gbx checkpoint blocks located on a ghost's line sit within half a block
    of where the ghost's checkpoint times put them."""
    for replay, challenge in (("A01-Race_TAS_00_17_61.Replay.Gbx", "A01-Race.Challenge.Gbx"),
                              ("Gosu_B13-Obstacle_WR.Replay.Gbx", "B13-Obstacle.Challenge.Gbx"),
                              ("B13-Obstacle_TAS_00_19_26.Replay.Gbx", "B13-Obstacle.Challenge.Gbx")):
        line = line_from_ghost(read_ghost(realdata / "replays" / replay))
        arcs = challenge_checkpoint_arcs(realdata / "challenges" / challenge, line)
        assert len(arcs) == len(line.metadata.checkpoints_m)
        assert np.allclose(arcs, line.metadata.checkpoints_m, atol=16.0)
    a01 = line_from_ghost(read_ghost(realdata / "replays" / "A01-Race_TAS_00_17_61.Replay.Gbx"))
    with pytest.raises(ReplayFileError, match="from the line"):
        challenge_checkpoint_arcs(realdata / "challenges" / "B13-Obstacle.Challenge.Gbx", a01)


def test_samples_are_cut_at_the_race_time(ghosts):
    for ghost in ghosts.values():
        states = ghost.states()
        assert states[-1].race_time_ms == ghost.race_time_ms
        assert states[-1].finished and not any(s.finished for s in states[:-1])
        assert all(s.race_time_ms < ghost.race_time_ms for s in states[:-1])
        assert states[-1].checkpoint_count == states[-1].checkpoint_target == len(ghost.checkpoint_times_ms)
        assert ghost.checkpoint_times_ms[-1] == ghost.race_time_ms
        assert np.all(np.diff([s.race_time_ms for s in states]) > 0)


def test_conventions_on_human_ghosts(realdata):
    """Forward = (sin yaw, 0, cos yaw) follows the velocity; steer right turns yaw up (+x is right)."""
    for name in ("Gosu_B13-Obstacle_WR.Replay.Gbx", "user_B13-Obstacle.Replay.Gbx"):
        ghost = read_ghost(realdata / "replays" / name)
        assert ghost.map_name == "B13-Obstacle"
        states = ghost.states()
        moving = [s for s in states if s.speed > 10]
        cos = [float(np.dot(forward_vector(s.yaw, s.pitch), s.velocity)) / s.speed for s in moving]
        assert np.median(cos) > 0.99
        upright = [s for s in moving if abs(s.pitch) < 0.3 and abs(s.roll) < 0.3 and abs(s.steer) > 0.2]
        agree = np.mean([math.copysign(1, s.steer) == math.copysign(1, s.angular_velocity[1]) for s in upright])
        assert len(upright) > 30 and agree > 0.9
        assert 0 <= min(s.gas for s in states) and max(s.gas for s in states) == pytest.approx(1.0)


def test_line_metadata_and_checkpoints(ghosts, realdata, tmp_path):
    path = realdata / "replays" / "A01-Race_TAS_00_17_61.Replay.Gbx"
    ghost = ghosts[path]
    line = line_from_ghost(ghost)
    assert line.metadata.map_name == "A01-Race" and line.metadata.map_uid == "BeySZdnfuSh4nHY5xztiXLmlrXe"
    assert line.metadata.source == "replay:A01-Race_TAS_00_17_61.Replay.Gbx"
    # Two checkpoints; the third checkpoint time is the finish, which is the line's end.
    assert len(line.metadata.checkpoints_m) == 2 and line.metadata.checkpoint_source == "ghost"
    assert np.all(np.diff(line.metadata.checkpoints_m) > 0) and line.metadata.checkpoints_m[-1] < line.length_m - 100
    # The map's checkpoint blocks are where the ghost passed its checkpoints (within a block).
    name, markers = read_challenge_markers(realdata / "challenges" / "A01-Race.Challenge.Gbx")
    assert name == "A01-Race"
    blocks = [m.position[[0, 2]] for m in markers if m.kind in ("checkpoint", "finish")]
    for arc in line.metadata.checkpoints_m:
        p = line.point_at(arc)[[0, 2]]
        assert min(np.linalg.norm(b - p) for b in blocks) < 32.0
    start = [m.position[[0, 2]] for m in markers if m.kind == "start"]
    assert np.linalg.norm(start[0] - line.points[0, [0, 2]]) < 16.0


def test_cli_check_json_and_default_output(realdata, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    replay = realdata / "replays" / "A04-Acrobatic_TAS_00_05_73.Replay.Gbx"
    assert cli.main(["line-from-replay", str(replay), "--check", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["race_time_ms"] == 5730
    assert figures["final_progress_m"] == pytest.approx(figures["line_length_m"], rel=0.01)
    assert figures["max_backward_m"] <= 1.0
    written = tmp_path / "reference_lines" / "A04-Acrobatic.npz"
    assert figures["output"] == "reference_lines/A04-Acrobatic.npz" and written.is_file()
    line = ReferenceLine.load(written)
    assert line.length_m == pytest.approx(figures["line_length_m"], abs=1e-3)
    assert cli.main(["line-from-replay", str(replay), "-o", str(tmp_path / "x.npz"), "--spacing", "2"]) == 0
    assert 1.9 < ReferenceLine.load(tmp_path / "x.npz").metadata.spacing_m < 2.1


def nan_replay(source: Path, target: Path) -> None:
    """Copy a replay with one ghost sample's x position set to NaN (body re-compressed)."""
    import gbx
    from gbx.Lzo.Lzo import LZO

    reader = gbx.GbxReader(str(source))
    reader.readAll(stop_after_decompression=True)
    raw = source.read_bytes()
    body = bytearray(reader.data)
    at = body.find(struct.pack("<I", 0x0303F005))  # CGameGhost 005: sizes, then zlib data
    size, packed = struct.unpack_from("<II", body, at + 4)
    samples = bytearray(zlib.decompress(bytes(body[at + 12: at + 12 + packed])))
    struct.pack_into("<f", samples, 24 + 5 * 61, math.nan)  # 24-byte header, 61-byte samples
    repacked = zlib.compress(bytes(samples), 9)
    body = body[: at + 4] + struct.pack("<II", size, len(repacked)) + repacked + body[at + 12 + packed:]
    lzo = LZO().compress(bytes(body))
    target.write_bytes(raw[: reader.header_size] + struct.pack("<II", len(body), len(lzo)) + lzo)


def test_bad_replays_give_typed_errors_with_the_path(realdata, tmp_path):
    source = realdata / "replays" / "A04-Acrobatic_TAS_00_05_73.Replay.Gbx"
    cases = {}
    cases["missing"] = tmp_path / "missing.Replay.Gbx"
    cases["empty"] = tmp_path / "empty.Replay.Gbx"
    cases["empty"].write_bytes(b"")
    cases["truncated"] = tmp_path / "truncated.Replay.Gbx"
    cases["truncated"].write_bytes(source.read_bytes()[:3000])
    cases["garbage"] = tmp_path / "garbage.Replay.Gbx"
    cases["garbage"].write_bytes(bytes(range(256)) * 20)
    cases["map"] = realdata / "challenges" / "A01-Race.Challenge.Gbx"
    cases["nan"] = tmp_path / "nan.Replay.Gbx"
    nan_replay(source, cases["nan"])
    for kind, path in cases.items():
        with pytest.raises(ReplayFileError) as info:
            read_ghost(path)
        assert str(path) in str(info.value), kind
    with pytest.raises(ReplayFileError, match="NaN"):
        read_ghost(cases["nan"])
    with pytest.raises(ReplayFileError, match=r"not a Gbx file \(it does not start with GBX\)"):
        read_ghost(cases["garbage"])


def test_ghost_log_and_plot_line(realdata, tmp_path):
    """--log writes a states-only log naming the line; plot-line draws line, ghost and map."""
    from tmstate.formats.log import read_episode

    replay = realdata / "replays" / "A01-Race_TAS_00_17_61.Replay.Gbx"
    line_path, log_path = tmp_path / "A01.npz", tmp_path / "ghost.npz"
    assert cli.main(["line-from-replay", str(replay), "-o", str(line_path), "--log", str(log_path)]) == 0
    log = read_episode(log_path)
    ghost = read_ghost(replay)
    assert log.metadata["kind"] == "ghost" and log.metadata["line"] == str(line_path)
    assert log.steps == len(ghost.times_ms) - 1 and log.states[-1].race_time_ms == 17610
    assert np.allclose(log.arrays["state.position"], ghost.positions)
    png = tmp_path / "A01.png"
    assert cli.main(["plot-line", str(line_path), "-o", str(png), "--ghost", str(replay),
                     "--episode", str(log_path), "--challenge", str(realdata / "challenges" / "A01-Race.Challenge.Gbx")]) == 0
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.shape[:2] == (800, 800)
    # Not a blank canvas: the coloured line and markers cover a good number of pixels.
    coloured = np.abs(image[..., 0] - image[..., 1]) + np.abs(image[..., 1] - image[..., 2]) > 0.2
    assert coloured.sum() > 2000


def test_plot_progress_draws_a_resync(realdata, tmp_path):
    """``tmstate plot-progress``: the PNG of docs/reward.md, not a blank canvas."""
    replays = realdata / "replays"
    line = line_from_ghost(read_ghost(replays / "Gosu_B13-Obstacle_WR.Replay.Gbx")).save(tmp_path / "wr.npz")
    png = tmp_path / "resync.png"
    assert cli.main(["plot-progress", str(replays / "B13-Obstacle_TAS_00_19_26.Replay.Gbx"), "--line", str(line),
                     "-o", str(png)]) == 0
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.shape[:2] == (550, 1300)
    coloured = np.abs(image[..., 0] - image[..., 1]) + np.abs(image[..., 1] - image[..., 2]) > 0.2
    assert coloured.sum() > 5000


def test_line_checkpoints_gives_a_linesight_line_its_maps_checkpoints(realdata, tmp_path, capsys):
    """``tmstate line-checkpoints`` on Linesight's ESL-Hockolicious line (a .npy, no checkpoints):
    the map's 13 checkpoint blocks, in order along the line, saved as a .npz the tracker uses."""
    source = tmp_path / "esl.npy"
    source.write_bytes((realdata / "linesight" / "ESL-Hockolicious_0.5m_cl2.npy").read_bytes())
    challenge = realdata / "challenges" / "ESL-Hockolicious.Challenge.Gbx"
    assert not ReferenceLine.load(source).metadata.checkpoints_known
    assert cli.main(["line-checkpoints", str(source), "--challenge", str(challenge)]) == 0
    assert "13 checkpoint(s)" in capsys.readouterr().out
    line = ReferenceLine.load(tmp_path / "esl.npz")
    marks = line.metadata.checkpoints_m
    assert line.metadata.checkpoint_source == "challenge" and len(marks) == 13
    assert np.all(np.diff(marks) > 50.0) and 0 < marks[0] and marks[-1] < line.length_m
    assert ProgressTracker(line).checkpoints_m == marks
    _, blocks = read_challenge_markers(challenge)
    for arc in marks:  # each mark is next to one of the map's checkpoint blocks
        p = line.point_at(arc)
        assert min(np.linalg.norm(b.position - p) for b in blocks if b.kind == "checkpoint") < 32.0

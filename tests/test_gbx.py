"""Ghosts from real .Replay.Gbx files: race time, cut at the finish, lines, conventions, errors."""

from __future__ import annotations

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
from tmstate.formats.gbx import check_line, read_challenge_markers, read_ghost
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
    """Never backwards by more than 1 m; >= 99 % of the line at the race time."""
    failures = {}
    for path, ghost in ghosts.items():
        line = ghost.line()
        figures = check_line(ghost, line)
        assert figures["race_time_ms"] == ghost.race_time_ms
        if figures["max_backward_m"] > 1.0 or figures["final_progress_m"] < 0.99 * figures["line_length_m"]:
            failures[path.name] = figures
    assert not failures


def test_samples_are_cut_at_the_race_time(ghosts):
    for path, ghost in ghosts.items():
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
    line = ghost.line()
    assert line.metadata.map_name == "A01-Race" and line.metadata.map_uid == "BeySZdnfuSh4nHY5xztiXLmlrXe"
    assert line.metadata.source == "replay:A01-Race_TAS_00_17_61.Replay.Gbx"
    assert len(line.metadata.checkpoints_m) == 3
    assert line.metadata.checkpoints_m[-1] == pytest.approx(line.length_m, abs=0.01)
    assert np.all(np.diff(line.metadata.checkpoints_m) > 0)
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

"""Reference lines: construction, resampling, smoothing, save/load, validation errors."""

from __future__ import annotations

import numpy as np
import pytest

from tmstate.errors import ReferenceLineError
from tmstate.core.reference import LineMetadata, ReferenceLine


def arc_points(radius: float = 50.0, angle: float = np.pi, count: int = 40) -> np.ndarray:
    t = np.linspace(0.0, angle, count)
    return np.stack([radius * np.sin(t), np.full_like(t, 10.0), radius * (1 - np.cos(t))], axis=1)


def test_straight_line_arc_length_tangents_and_queries():
    line = ReferenceLine.from_points([[0, 0, 0], [0, 0, 10]], spacing_m=0.5)
    assert len(line) == 21
    assert line.length_m == pytest.approx(10.0)
    assert np.allclose(np.diff(line.cumulative_m), 0.5)
    assert np.allclose(line.tangents, [0, 0, 1])
    assert np.allclose(line.point_at(3.25), [0, 0, 3.25])
    assert np.allclose(line.point_at(-5), [0, 0, 0]) and np.allclose(line.point_at(99), [0, 0, 10])
    assert np.allclose(line.tangent_at(7.0), [0, 0, 1])


def test_resampling_keeps_ends_and_spacing_on_a_curve():
    raw = arc_points()
    line = ReferenceLine.from_points(raw, spacing_m=0.5)
    steps = np.linalg.norm(np.diff(line.points, axis=0), axis=1)
    assert np.allclose(line.points[0], raw[0]) and np.allclose(line.points[-1], raw[-1])
    assert steps.max() - steps.min() < 0.01
    assert abs(steps.mean() - 0.5) < 0.01
    # Resampled points stay on the circle the raw polyline approximates (chord sag ~0.5 m max).
    radius = np.hypot(line.points[:, 0], line.points[:, 2] - 50.0)
    assert np.all(np.abs(radius - 50.0) < 0.6)
    # Tangent of a circle is perpendicular to the radius.
    radial = np.stack([line.points[:, 0], np.zeros(len(line)), line.points[:, 2] - 50.0], axis=1)
    radial /= np.linalg.norm(radial, axis=1)[:, None]
    assert np.abs(np.sum(radial * line.tangents, axis=1)).max() < 0.05


def test_smoothing_reduces_noise():
    rng = np.random.default_rng(1)
    raw = np.stack([np.zeros(400), np.zeros(400), np.linspace(0, 200, 400)], axis=1)
    raw[:, 0] += rng.normal(0, 0.3, 400)
    rough = ReferenceLine.from_points(raw, spacing_m=0.5)
    smooth = ReferenceLine.from_points(raw, spacing_m=0.5, smooth=3.0)
    assert np.std(smooth.points[:, 0]) < 0.5 * np.std(rough.points[:, 0])
    assert np.allclose(smooth.points[0], raw[0]) and np.allclose(smooth.points[-1], raw[-1])


def test_save_load_round_trip_with_metadata(tmp_path):
    meta = LineMetadata(map_name="A01-Race", map_uid="uid", source="replay:x.Replay.Gbx",
                        checkpoints_m=(10.0, 20.5), track_width_m=12.0)
    line = ReferenceLine.from_points(arc_points(), spacing_m=0.5, metadata=meta)
    path = line.save(tmp_path / "sub" / "A01.npz")
    back = ReferenceLine.load(path)
    assert np.array_equal(back.points, line.points)
    assert back.metadata.map_name == "A01-Race" and back.metadata.checkpoints_m == (10.0, 20.5)
    assert back.metadata.track_width_m == 12.0 and back.metadata.created == line.metadata.created
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temp file left behind
    data = np.load(path, allow_pickle=False)  # readable without pickle
    assert data["points"].shape == line.points.shape


def test_plain_npy_loads_as_given(tmp_path):
    raw = arc_points()
    np.save(tmp_path / "line.npy", raw)
    line = ReferenceLine.load(tmp_path / "line.npy")
    assert np.array_equal(line.points, raw)
    assert line.metadata.source == "npy" and line.metadata.map_name == "line"


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "empty"),
        (b"this is not numpy", "not a readable"),
        (None, "not found"),
    ],
)
def test_unreadable_files_name_the_path(tmp_path, content, problem):
    path = tmp_path / "bad.npy"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ReferenceLineError, match=problem) as info:
        ReferenceLine.load(path)
    assert info.value.path == path and str(path) in str(info.value)


@pytest.mark.parametrize(
    "array, problem",
    [
        (np.array([[0.0, 0.0, 0.0], [np.nan, 0.0, 1.0], [0.0, 0.0, 2.0]]), "NaN"),
        (np.zeros((1, 3)), "at least 2"),
        (np.zeros((5, 2)), "shape"),
        (np.array([[0.0, 0, 0], [0.0, 0, 1], [0.0, 0, 1], [0.0, 0, 2]]), "duplicate"),
    ],
)
def test_invalid_points_in_files_name_the_path(tmp_path, array, problem):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(ReferenceLineError, match=problem) as info:
        ReferenceLine.load(path)
    assert str(path) in str(info.value)


def test_corrupt_npz_names_the_path(tmp_path):
    good = ReferenceLine.from_points(arc_points()).save(tmp_path / "good.npz")
    data = good.read_bytes()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReferenceLineError) as info:
        ReferenceLine.load(bad)
    assert str(bad) in str(info.value)
    np.savez(tmp_path / "other.npz", xyz=np.zeros((3, 3)))
    with pytest.raises(ReferenceLineError, match="no 'points'"):
        ReferenceLine.load(tmp_path / "other.npz")


def test_linesight_lines_load(realdata):
    for name, count in [("map5_0.5m_cl.npy", 19503), ("ESL-Hockolicious_0.5m_cl2.npy", 8062)]:
        line = ReferenceLine.load(realdata / "linesight" / name)
        assert line.points.shape == (count, 3)
        assert 0.45 < line.metadata.spacing_m < 0.55
    assert ReferenceLine.load(realdata / "linesight" / "map5_0.5m_cl.npy").length_m == pytest.approx(9873, abs=5)


def test_a_file_of_another_kind_says_what_it_is_not(tmp_path):
    png = tmp_path / "line.npz"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(ReferenceLineError, match=r"line\.npz: not a readable \.npy/\.npz file \(it does not start like one\)") as info:
        ReferenceLine.load(png)
    assert "pickle" not in str(info.value)


def write_line_file(path, points, metadata: dict, version: int | None) -> None:
    """A line .npz as an older tmstate wrote it (``version`` None: no format_version at all)."""
    import json

    arrays = {"points": np.asarray(points, dtype=np.float64), "metadata": np.array(json.dumps(metadata))}
    if version is not None:
        arrays["format_version"] = np.array(version, dtype=np.int64)
    np.savez_compressed(path, **arrays)


def test_format_1_lines_still_load_with_their_checkpoints_in_format_2_terms(tmp_path):
    """Version 1 listed the finish as the last checkpoint of ghost and recorded lines; version 2
    lists checkpoints only and says where they came from (``checkpoint_source``)."""
    from tmstate.core.reference import FORMAT_VERSION

    assert FORMAT_VERSION == 2
    points = [[0, 0, 0], [0, 0, 100]]
    cases = {
        "replay:x.Replay.Gbx": ((30.0, 60.0, 100.0), (30.0, 60.0), "ghost"),
        "recorded": ((40.0, 99.8), (40.0,), "recorded"),
        "sim-generator": ((50.0,), (50.0,), "sim"),
        "npy": ((), (), ""),
    }
    for version in (1, None):
        for source, (stored, expected, origin) in cases.items():
            path = tmp_path / f"{source.split(':')[0]}-{version}.npz"
            write_line_file(path, points, {"source": source, "checkpoints_m": list(stored)}, version)
            line = ReferenceLine.load(path)
            assert line.metadata.checkpoints_m == expected, (source, version)
            assert line.metadata.checkpoint_source == origin
            assert line.metadata.checkpoints_known == bool(origin)
    # Version 2 keeps what it says: a checkpoint right at the end is a checkpoint.
    line = ReferenceLine.from_points(points, metadata=LineMetadata(source="recorded", checkpoints_m=(99.9,),
                                                                   checkpoint_source="recorded"))
    back = ReferenceLine.load(line.save(tmp_path / "v2.npz"))
    assert back.metadata.checkpoints_m == (99.9,) and back.metadata.checkpoint_source == "recorded"
    assert int(np.load(tmp_path / "v2.npz")["format_version"]) == 2

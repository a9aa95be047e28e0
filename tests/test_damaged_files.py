"""Damaged logs and reference lines give the project's own typed errors naming the file and
the field (issue 10, defects 6, 7, 11), whatever is wrong inside them."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tmstate.core.reference import ReferenceLine
from tmstate.errors import LogFileError, ReferenceLineError
from tmstate.formats.log import read_episode
from test_log import write_episode


@pytest.fixture
def log_arrays(tmp_path):
    _, path, _ = write_episode(tmp_path / "ok")
    with np.load(path, allow_pickle=False) as raw:
        return {k: raw[k] for k in raw.files}


def save(tmp_path, arrays, name="bad.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


LOG_DAMAGE = [
    ("format_version", lambda a: np.array("abc")),
    ("format_version", lambda a: np.array([1, 1])),
    ("metadata", lambda a: np.array([1.0, 2.0])),
    ("state.race_time_ms", lambda a: np.array(5)),
    ("state.position", lambda a: a["state.position"].astype(str)),
    ("state.gear", lambda a: a["state.gear"].astype(str)),
    ("state.rpm", lambda a: np.where(np.arange(len(a["state.rpm"])) == 2, np.nan, a["state.rpm"])),
    ("state.steer", lambda a: np.full_like(a["state.steer"], np.inf)),
    ("state.race_time_ms", lambda a: a["state.race_time_ms"].astype(np.float64)),
    ("state.checkpoint_count", lambda a: np.full(a["state.checkpoint_count"].shape, 2**40)),
    ("action.steer", lambda a: np.full_like(a["action.steer"], np.nan)),
    ("action.brake", lambda a: a["action.brake"].astype(str)),
    ("step.reason", lambda a: np.zeros(a["step.reason"].shape)),
    ("step.terminated", lambda a: a["step.terminated"].astype(str)),
    ("reward.progress", lambda a: a["reward.progress"].astype(str)),
]


@pytest.mark.parametrize("field,damage", LOG_DAMAGE, ids=[f"{f}-{i}" for i, (f, _) in enumerate(LOG_DAMAGE)])
def test_a_damaged_log_field_is_a_log_file_error_naming_file_and_field(tmp_path, log_arrays, field, damage):
    arrays = dict(log_arrays)
    arrays[field] = damage(arrays)
    path = save(tmp_path, arrays)
    with pytest.raises(LogFileError) as caught:
        read_episode(path)
    message = str(caught.value)
    assert str(path) in message and field in message and "\n" not in message


def test_nan_rpm_never_replays_as_nan_observations(tmp_path, log_arrays):
    """Defect 7: a log with NaN rpm replayed 50 NaN observations outside the observation space."""
    from tmstate.env.env import TMNFEnv

    arrays = dict(log_arrays)
    arrays["state.rpm"] = np.full_like(arrays["state.rpm"], np.nan)
    path = save(tmp_path, arrays)
    with pytest.raises(LogFileError, match="state.rpm"):
        TMNFEnv(backend="replay", map="sim_easy", backend_options={"log_path": str(path)})


def test_a_bad_log_in_the_replay_env_is_reported_as_a_bad_log(tmp_path, log_arrays):
    from tmstate.env.env import TMNFEnv

    arrays = dict(log_arrays)
    arrays["state.race_time_ms"] = np.array(5)
    path = save(tmp_path, arrays)
    with pytest.raises(LogFileError) as caught:
        TMNFEnv(backend="replay", map="sim_easy", backend_options={"log_path": str(path)})
    assert "backend_options" not in str(caught.value)


def zip_looking(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"PK\x03\x04" + b"not really a zip archive at all" * 20)
    return path


def test_a_zip_looking_file_that_is_not_a_zip_has_no_numpy_pickle_hint(tmp_path):
    with pytest.raises(LogFileError) as caught:
        read_episode(zip_looking(tmp_path, "log.npz"))
    assert "pickle" not in str(caught.value)
    with pytest.raises(ReferenceLineError) as caught:
        ReferenceLine.load(zip_looking(tmp_path, "line.npz"))
    assert "pickle" not in str(caught.value)


def test_an_archive_holding_python_objects_is_refused_without_the_numpy_hint(tmp_path, log_arrays):
    arrays = dict(log_arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **{**arrays, "state.gear": np.array([object()] * len(arrays["state.gear"]), dtype=object)})
    path = tmp_path / "objects.npz"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(LogFileError) as caught:
        read_episode(path)
    assert "allow_pickle" not in str(caught.value) and "state.gear" in str(caught.value)


def line_archive(tmp_path, **overrides):
    arrays = {
        "points": np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 10.0], [0.0, 0.0, 20.0]]),
        "metadata": np.array(json.dumps({"map_name": "x"})),
        "format_version": np.array(1, dtype=np.int64),
    }
    arrays.update(overrides)
    path = tmp_path / "line.npz"
    np.savez(path, **arrays)
    return path


LINE_DAMAGE = [
    ("format_version", {"format_version": np.array([1, 1])}),
    ("format_version", {"format_version": np.array("abc")}),
    ("track_width_m", {"metadata": np.array(json.dumps({"track_width_m": "wide"}))}),
    ("checkpoints_m", {"metadata": np.array(json.dumps({"checkpoints_m": ["a"]}))}),
    ("checkpoints_m", {"metadata": np.array(json.dumps({"checkpoints_m": 5}))}),
    ("map_name", {"metadata": np.array(json.dumps({"map_name": 5}))}),
    ("metadata", {"metadata": np.array([1, 2])}),
    ("points", {"points": np.array([["a", "b", "c"], ["d", "e", "f"]])}),
]


@pytest.mark.parametrize("field,override", LINE_DAMAGE, ids=[f"{f}-{i}" for i, (f, _) in enumerate(LINE_DAMAGE)])
def test_a_damaged_line_field_is_a_reference_line_error_naming_file_and_field(tmp_path, field, override):
    path = line_archive(tmp_path, **override)
    with pytest.raises(ReferenceLineError) as caught:
        ReferenceLine.load(path)
    assert str(path) in str(caught.value) and field in str(caught.value)


@pytest.mark.parametrize("points", [
    [[0.0, 0.0, 0.0], [1e308, 0.0, 0.0], [-1e308, 0.0, 0.0]],
    [[-1e308, 0.0, 0.0], [1e308, 0.0, 0.0]],
    [[0.0, 0.0, 0.0], [1e200, 1e200, 1e200], [0.0, 0.0, 1.0]],
])
def test_overflowing_lines_are_refused_at_load(tmp_path, points):
    """Defect 11: points of +-1e308 loaded with an infinite length and NaN tangents."""
    path = tmp_path / "huge.npy"
    np.save(path, np.array(points))
    with pytest.raises(ReferenceLineError, match="huge.npy") as caught:
        ReferenceLine.load(path)
    assert "finite" in str(caught.value) or "metres" in str(caught.value)
    with pytest.raises(ReferenceLineError):
        ReferenceLine.from_points(points, spacing_m=None)

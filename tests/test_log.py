"""Episode logs: round trip, schema coverage, atomic files, states-only logs, corrupt files."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from tmstate.core.state import Action
from tmstate.errors import LogFileError, TmstateError
from tmstate.formats.log import STATE_FIELDS, EpisodeLogWriter, read_episode, write_states_log
from tmstate.core.reward import RewardConfig
from tmstate.core.state import GameState


def make_state(i: int, finished: bool = False) -> GameState:
    return GameState(
        race_time_ms=50 * i, position=np.array([1.0 * i, 2.0, 3.0 + i]), velocity=np.array([0.5, 0.0, 20.0]),
        yaw=0.1 * i, pitch=-0.01, roll=0.02, angular_velocity=np.array([0.0, 0.3, 0.0]),
        display_speed_kmh=72 + i, checkpoint_count=i // 3, checkpoint_target=4, lap_count=0,
        finished=finished, gear=2, rpm=5000.5, wheel_contact=(True, True, False, True),
        wheel_material=(16, 16, 2, 16), steer=-0.25, gas=1.0, brake=0.0, respawn_count=0, in_race=True,
    )


def write_episode(directory, steps: int = 6) -> tuple:
    writer = EpisodeLogWriter(directory, metadata={"map": "A01-Race", "backend": "sim", "action_period_ms": 50,
                                                   "reward": RewardConfig()})
    writer.begin(make_state(0))
    expected = []
    for i in range(1, steps + 1):
        terms = {"progress": 0.01 * i, "time": -0.005, "finish": 1.0 if i == steps else 0.0}
        writer.add(Action(steer=0.1 * (i % 3) - 0.1, gas=0.5, brake=i % 2 == 0), make_state(i, i == steps),
                   terms, terminated=i == steps, truncated=False, reason="finished" if i == steps else "")
        expected.append(terms)
    return writer, writer.end(), expected


def test_schema_covers_every_gamestate_field():
    assert set(STATE_FIELDS) == {f.name for f in dataclasses.fields(GameState)}


def test_round_trip(tmp_path):
    writer, path, expected = write_episode(tmp_path)
    assert path.parent == tmp_path and path.suffix == ".npz"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left
    log = read_episode(path)
    assert log.steps == 6 and len(log.actions) == 6
    for i, state in enumerate(log.states):
        ref = make_state(i, i == 6)
        for name in STATE_FIELDS:
            got, want = getattr(state, name), getattr(ref, name)
            assert np.array_equal(np.asarray(got), np.asarray(want)), name
    assert log.actions[1] == Action(steer=0.1 * 2 - 0.1, gas=0.5, brake=True)
    assert log.actions[2] == Action(steer=-0.1, gas=0.5, brake=False)
    assert np.allclose(log.reward_terms["progress"], [0.01 * i for i in range(1, 7)])
    assert log.terminated.tolist() == [False] * 5 + [True] and not log.truncated.any()
    assert log.reasons[-1] == "finished"
    assert log.total_return == pytest.approx(sum(sum(t.values()) for t in expected))
    assert log.metadata["map"] == "A01-Race" and log.metadata["reward"]["time"] == RewardConfig().time
    assert log.metadata["kind"] == "episode" and log.metadata["steps"] == 6
    assert log.metadata["return"] == pytest.approx(log.total_return)
    # An open format: plain numpy without pickle.
    with np.load(path, allow_pickle=False) as raw:
        assert raw["state.position"].shape == (7, 3)
        assert json.loads(str(raw["metadata"][()]))["episode"] == 0


def test_writer_flushes_an_open_episode_on_begin_and_numbers_files(tmp_path):
    writer, first, _ = write_episode(tmp_path, steps=2)
    writer.begin(make_state(0))
    writer.add(Action(), make_state(1), {"progress": 1.0}, False, False)
    writer.begin(make_state(0))  # reset mid-episode: the open one is written first
    assert writer.episodes_written == 2
    files = sorted(tmp_path.iterdir())
    assert len(files) == 2 and read_episode(files[1]).steps == 1
    with pytest.raises(TmstateError, match="reward terms changed"):
        writer.add(Action(), make_state(1), {"progress": 1.0}, False, False)
        writer.add(Action(), make_state(2), {"time": 1.0}, False, False)


def test_states_only_log(tmp_path):
    states = [make_state(i) for i in range(4)]
    path = write_states_log(states, tmp_path / "ghost.npz", {"source": "replay:x"})
    log = read_episode(path)
    assert log.metadata["kind"] == "ghost" and log.steps == 3
    assert log.actions == [] and log.reward_terms == {} and len(log.terminated) == 0
    assert np.array_equal(log.arrays["state.position"], np.array([s.position for s in states]))


def test_corrupt_empty_and_nan_logs(tmp_path):
    _, good, _ = write_episode(tmp_path / "ok")
    data = good.read_bytes()
    cases = {
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "garbage": b"PK\x03\x04" + bytes(200),
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(content)
        with pytest.raises(LogFileError) as info:
            read_episode(path)
        assert str(path) in str(info.value), name
    with pytest.raises(LogFileError, match="not found"):
        read_episode(tmp_path / "nothing.npz")
    # NaN in a state.
    with np.load(good, allow_pickle=False) as raw:
        arrays = {k: raw[k] for k in raw.files}
    arrays["state.position"] = arrays["state.position"].copy()
    arrays["state.position"][3, 1] = np.nan
    bad = tmp_path / "nan.npz"
    np.savez(bad, **arrays)
    with pytest.raises(LogFileError, match=r"state.position is NaN.*row 3") as info:
        read_episode(bad)
    assert str(bad) in str(info.value)
    # A per-step array of the wrong length.
    arrays["state.position"][3, 1] = 0.0
    arrays["reward.progress"] = arrays["reward.progress"][:-1]
    short = tmp_path / "short.npz"
    np.savez(short, **arrays)
    with pytest.raises(LogFileError, match="reward.progress"):
        read_episode(short)
    # Something that is not a log at all.
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(LogFileError, match="format_version"):
        read_episode(tmp_path / "other.npz")


def test_unserialisable_metadata_is_refused_early(tmp_path):
    with pytest.raises(TmstateError, match="JSON"):
        EpisodeLogWriter(tmp_path, metadata={"bad": object()})


def test_files_of_another_kind_say_what_they_are_not(tmp_path):
    png = tmp_path / "picture.npz"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(LogFileError, match=r"picture\.npz: not an \.npz archive") as info:
        read_episode(png)
    assert "pickle" not in str(info.value)  # numpy's hint about unpickling does not apply
    array = tmp_path / "array.npy"
    np.save(array, np.zeros((4, 3)))
    with pytest.raises(LogFileError, match=r"array\.npy: a plain \.npy array, not an episode log"):
        read_episode(array)

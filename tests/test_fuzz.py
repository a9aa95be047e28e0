"""A seeded fuzz run (issue 10): thousands of generated bad configs, reference lines and
episode logs through ``load_config``, ``ReferenceLine.load`` and ``read_episode``. Each may
load or be refused, but only with the project's own error types (``TmstateError``), never
a KeyError, TypeError, numpy or zipfile error. Deterministic (fixed seeds) and fast."""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tmstate.errors import TmstateError

CASES_PER_KIND = 800  # x 3 kinds = 2,400 generated inputs

TOML_VALUES = [
    "5", "-1", "0", "9999999999999999", "-9223372036854775808", "1.5", "-0.0", "1e308", "inf", "-inf", "nan",
    "true", "false", '"x"', '""', '"frames"', '"dict"', '"sim"', '"tminterface"', '"replay"', '"discrete"',
    '"sim_easy"', '"/nonexistent/line.npz"', "[]", "[1, 2]", '["a", 1]', "[[1, 2], [3]]", "{}", "{a = 1}",
    '{type = "frames"}', "{time = -1}", "{port = 70000}", '{port = "abc"}', "{seed = -1}", "1979-05-27T07:32:00Z",
    "{log_path = 5}", '{car = {top_speed_mps = "x"}}', "[1.0, 2.0, 3.0]",
]
ENV_KEYS = ["backend", "map", "action_period_ms", "game_speed", "action", "brake_threshold", "observation",
            "reward", "termination", "progress", "log_dir", "render_width", "render_height", "backend_options",
            "unknown_key", "seed"]
SUB_TABLES = {
    "observation": ["type", "width", "height", "grayscale", "stack", "frame_source", "camera", "lookahead_points",
                    "lookahead_spacing_m", "window_title", "window_pid"],
    "reward": ["progress", "time", "finish", "speed", "lateral", "nope"],
    "termination": ["no_progress_s", "min_progress_m", "max_distance_m", "time_limit_s"],
    "progress": ["window_m", "max_jump_m", "fallback_distance_m", "trust_step_m", "global_candidates"],
}


def toml_case(rng: random.Random) -> bytes:
    """A TOML file that is mostly well-formed with values of random types, sometimes broken."""
    lines = []
    top = rng.random()
    if top < 0.05:
        lines.append(f"env = {rng.choice(TOML_VALUES)}")
    else:
        if top > 0.1:
            lines.append("[env]")
        for key in rng.sample(ENV_KEYS, rng.randint(0, 4)):
            lines.append(f"{key} = {rng.choice(TOML_VALUES)}")
        for table in rng.sample(list(SUB_TABLES), rng.randint(0, 2)):
            lines.append(f"[env.{table}]" if top > 0.1 else f"[{table}]")
            for key in rng.sample(SUB_TABLES[table], rng.randint(1, 3)):
                lines.append(f"{key} = {rng.choice(TOML_VALUES)}")
    data = "\n".join(lines).encode()
    mutation = rng.random()
    if mutation < 0.1 and data:
        i = rng.randrange(len(data))
        data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
    elif mutation < 0.15:
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
    return data


def line_arrays(rng: random.Random) -> dict[str, np.ndarray]:
    n = rng.choice([0, 1, 2, 3, 10])
    cols = rng.choice([3, 3, 3, 2, 4])
    points = np.cumsum(np.random.default_rng(rng.randrange(2**32)).normal(size=(n, cols)), axis=0)
    choice = rng.random()
    if choice < 0.15 and points.size:
        points.flat[rng.randrange(points.size)] = rng.choice([np.nan, np.inf, -np.inf, 1e308, -1e308, 1e200])
    elif choice < 0.25:
        points = points.astype(rng.choice([np.int64, np.bool_, np.float32, str, np.uint8]))
    elif choice < 0.3 and n > 1:
        points[1] = points[0]
    elif choice < 0.35:
        points = points.reshape(-1)
    arrays: dict[str, np.ndarray] = {"points": points}
    if rng.random() < 0.8:
        meta = {"map_name": "m", "spacing_m": 0.5, "checkpoints_m": [1.0], "track_width_m": 12.0, "extra": {}}
        for key in rng.sample(list(meta) + ["source", "created", "new_key"], rng.randint(0, 3)):
            meta[key] = rng.choice([5, -1.5, "wide", None, [1, "a"], {"a": 1}, True, [], 1e308, "2024"])
        text = json.dumps(meta) if rng.random() < 0.9 else rng.choice(["[1, 2]", "{", "null", "5", '"text"'])
        arrays["metadata"] = np.array(text) if rng.random() < 0.9 else np.array([1, 2])
    if rng.random() < 0.8:
        arrays["format_version"] = rng.choice([np.array(1), np.array(2), np.array("abc"), np.array([1, 1]),
                                               np.array(1.5), np.array(True), np.array(-1)])
    return arrays


def log_mutation(rng: random.Random, base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    arrays = dict(base)
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(sorted(arrays))
        array = arrays[key]
        how = rng.randrange(9)
        if how == 0:
            del arrays[key]
        elif how == 1:
            arrays[key] = array.astype(str)
        elif how == 2 and array.ndim:
            arrays[key] = array[: rng.randint(0, len(array))]
        elif how == 3:
            arrays[key] = np.array(rng.choice([5, "x", 1.5, True]))
        elif how == 4 and array.size and array.dtype.kind in "fiu":
            array = array.astype(np.float64)
            array.flat[rng.randrange(array.size)] = rng.choice([np.nan, np.inf, -np.inf, 1e308])
            arrays[key] = array
        elif how == 5 and array.size and array.dtype.kind in "iu":
            arrays[key] = np.full(array.shape, rng.choice([2**40, -2**40, 2**63 - 1]), dtype=np.int64)
        elif how == 6:
            arrays[key] = array.reshape(-1) if array.ndim > 1 else array.reshape(array.shape + (1,))
        elif how == 7 and array.dtype.kind in "fiub":
            arrays[key] = array.astype(rng.choice([np.float32, np.int8, np.bool_, np.uint64, np.complex64]))
        else:
            arrays[f"extra.{rng.randrange(9)}"] = np.zeros(rng.randint(0, 3))
    if rng.random() < 0.15:
        arrays["metadata"] = np.array(rng.choice(["[1]", "{", "null", json.dumps({"steps": "x"})]))
    return arrays


def archive_bytes(rng: random.Random, arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if rng.random() < 0.5 else np.savez)(buffer, **arrays)
    data = buffer.getvalue()
    damage = rng.random()
    if damage < 0.1:
        data = data[: rng.randrange(len(data))]
    elif damage < 0.2:
        i = rng.randrange(len(data))
        data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
    elif damage < 0.23:
        data = b"PK\x03\x04" + bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
    return data


def run(cases: int, load, make, tmp_path: Path, suffix: str) -> Counter:
    """Feed ``cases`` generated files to ``load``; count outcomes; fail on any foreign exception."""
    outcomes: Counter = Counter()
    for i in range(cases):
        path = tmp_path / f"case{i}{suffix}"
        path.write_bytes(make(i))
        try:
            load(path)
            outcomes["loaded"] += 1
        except TmstateError as exc:
            assert "\n" not in str(exc), (i, str(exc))
            outcomes[type(exc).__name__] += 1
        except Exception as exc:  # noqa: BLE001 - the point of the fuzz run
            pytest.fail(f"case {i} ({path.name}) raised {type(exc).__name__}: {exc}")
        path.unlink()
    print(f"fuzz {suffix}: {dict(outcomes)}")
    return outcomes


def test_fuzz_configs(tmp_path):
    from tmstate.env.env import load_config

    outcomes = run(CASES_PER_KIND, load_config, lambda i: toml_case(random.Random(1000 + i)), tmp_path, ".toml")
    assert sum(outcomes.values()) == CASES_PER_KIND
    assert outcomes["ConfigError"] > CASES_PER_KIND // 3 and outcomes["loaded"] > 20, outcomes


def test_fuzz_reference_lines(tmp_path):
    from tmstate.core.reference import ReferenceLine

    def make(i: int) -> bytes:
        rng = random.Random(2000 + i)
        arrays = line_arrays(rng)
        if rng.random() < 0.2:  # a plain .npy
            buffer = io.BytesIO()
            np.save(buffer, arrays["points"])
            return buffer.getvalue()
        return archive_bytes(rng, arrays)

    outcomes = run(CASES_PER_KIND, ReferenceLine.load, make, tmp_path, ".npz")
    assert outcomes["ReferenceLineError"] > CASES_PER_KIND // 3 and outcomes["loaded"] > 20, outcomes


def test_fuzz_episode_logs(tmp_path):
    from test_log import write_episode

    from tmstate.formats.log import read_episode

    _, good, _ = write_episode(tmp_path / "good", steps=5)
    with np.load(good, allow_pickle=False) as raw:
        base = {k: raw[k] for k in raw.files}

    def load(path: Path) -> None:
        log = read_episode(path)
        for state in log.states:  # whatever loads is finite, as observations need it
            assert np.isfinite(state.position).all() and np.isfinite(state.rpm)

    outcomes = run(CASES_PER_KIND, load, lambda i: archive_bytes(random.Random(3000 + i), log_mutation(random.Random(3000 + i), base)),
                   tmp_path, ".npz")
    assert outcomes["LogFileError"] > CASES_PER_KIND // 2 and outcomes["loaded"] > 5, outcomes

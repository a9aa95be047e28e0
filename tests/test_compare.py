"""Time-penalty comparison on ghost logs: the table's numbers, the plot, configs, errors."""

from __future__ import annotations

from tmstate.tools.lines import line_from_ghost

import json

import numpy as np
import pytest

from tmstate import cli
from tmstate.errors import LogFileError
from tmstate.formats.gbx import ghost_metadata, read_ghost
from tmstate.formats.log import EpisodeLogWriter, write_states_log
from tmstate.core.state import GameState

NAMES = ("A04-Acrobatic_TAS_00_05_73", "A10-Acrobatic_TAS_00_08_71", "B04-Acrobatic_TAS_00_05_50")
PENALTIES = [0.0, 0.0005, 0.001, 0.002]


@pytest.fixture(scope="module")
def ghost_logs(realdata, tmp_path_factory):
    """Three ghosts as states-only logs, each naming its line; plus their race times and lengths."""
    folder = tmp_path_factory.mktemp("logs")
    facts = {}
    for name in NAMES:
        ghost = read_ghost(realdata / "replays" / f"{name}.Replay.Gbx")
        line_path = line_from_ghost(ghost).save(folder / "lines" / f"{name}.npz")
        write_states_log(ghost.states(), folder / f"{name}.npz", ghost_metadata(ghost, line_path))
        facts[f"{name}.npz"] = (ghost.race_time_ms, line_from_ghost(ghost).length_m)
    return folder, facts


def run_compare(capsys, *args) -> dict:
    assert cli.main(["rewards", "compare", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_returns_per_episode_and_penalty(ghost_logs, tmp_path, capsys):
    folder, facts = ghost_logs
    png = tmp_path / "compare.png"
    result = run_compare(capsys, str(folder), "--time-penalty", ",".join(map(str, PENALTIES)), "-o", str(png))
    assert result["penalties"] == PENALTIES
    assert sorted(r["name"] for r in result["episodes"]) == sorted(facts)
    for row in result["episodes"]:
        race_ms, length = facts[row["name"]]
        returns = row["returns"]
        assert row["finished"] and row["race_time_ms"] == race_ms
        # No time penalty: all of the line (0.01 per m) plus the finish bonus (1.0).
        assert returns[0] == pytest.approx(0.01 * length + 1.0, rel=1e-6)
        # A larger penalty never raises a return; each costs exactly w * race time.
        assert all(b <= a for a, b in zip(returns, returns[1:]))
        for w, r in zip(PENALTIES, returns):
            assert r == pytest.approx(returns[0] - w * race_ms, abs=1e-9)
    # The plot is a real PNG of the default size (800 x 500).
    import matplotlib.image

    assert matplotlib.image.imread(png).shape[:2] == (500, 800)


def test_config_weights_and_ghosts_directly(ghost_logs, realdata, tmp_path, capsys):
    folder, facts = ghost_logs
    config = tmp_path / "reward.toml"
    config.write_text("[reward]\nprogress = 0.02\nfinish = 0.0\n[progress]\nmax_jump_m = 60.0\n")
    replay = realdata / "replays" / f"{NAMES[0]}.Replay.Gbx"
    result = run_compare(capsys, str(replay), "--time-penalty", "0,0.001", "--config", str(config),
                         "-o", str(tmp_path / "c.png"))
    (row,) = result["episodes"]
    race_ms, length = facts[f"{NAMES[0]}.npz"]
    assert row["returns"][0] == pytest.approx(0.02 * length, rel=1e-6)
    assert row["returns"][1] == pytest.approx(0.02 * length - 0.001 * race_ms, rel=1e-6)


def test_table_output(ghost_logs, tmp_path, capsys):
    folder, facts = ghost_logs
    assert cli.main(["rewards", "compare", str(folder), "--time-penalty", "0,0.001", "-o", str(tmp_path / "t.png")]) == 0
    out = capsys.readouterr().out
    for name, (race_ms, length) in facts.items():
        line = next(x for x in out.splitlines() if x.startswith(name))
        assert f"{0.01 * length + 1.0:.4f}" in line
        assert f"{0.01 * length + 1.0 - 0.001 * race_ms:.4f}" in line


def test_episode_log_without_a_line_is_refused(tmp_path, capsys):
    writer = EpisodeLogWriter(tmp_path, metadata={"backend": "sim"})
    writer.begin(GameState())
    path = writer.end()
    assert cli.main(["rewards", "compare", str(path), "-o", str(tmp_path / "x.png")]) == 2
    assert "pass --line" in capsys.readouterr().err
    with pytest.raises(LogFileError):
        from tmstate.tools.compare import load_episodes

        load_episodes([str(path)])


def test_config_file_errors(tmp_path):
    from tmstate.tools.compare import load_configs
    from tmstate.errors import ConfigError

    with pytest.raises(ConfigError, match=r"missing\.toml: config file not found — check the path"):
        load_configs(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[reward\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_configs(str(bad))
    typo = tmp_path / "typo.toml"
    typo.write_text("[reward]\nprogres = 0.02\n")
    with pytest.raises(ConfigError, match=r"typo\.toml\[reward\]: unknown key\(s\) progres"):
        load_configs(str(typo))
    reward, progress = load_configs(None)
    assert reward.progress == 0.01 and progress.max_jump_m == 50.0


def test_resyncs_are_reported_per_log(realdata, tmp_path, capsys):
    """The B13 TAS ghost along the world record's line: 3 checkpoint-confirmed resyncs bring it
    to the whole line; the WR ghost along its own line needs none. Same in the table."""
    replays = realdata / "replays"
    wr = read_ghost(replays / "Gosu_B13-Obstacle_WR.Replay.Gbx")
    line = line_from_ghost(wr).save(tmp_path / "wr.npz")
    tas, own = replays / "B13-Obstacle_TAS_00_19_26.Replay.Gbx", replays / "Gosu_B13-Obstacle_WR.Replay.Gbx"
    result = run_compare(capsys, str(tas), str(own), "--line", str(line), "--time-penalty", "0",
                         "-o", str(tmp_path / "r.png"))
    rows = {r["name"]: r for r in result["episodes"]}
    other, same = rows[tas.name], rows[own.name]
    assert other["resyncs"] == 3 and other["resync_m"] > 2000
    assert other["progress_m"] == pytest.approx(other["line_length_m"])
    assert same["resyncs"] == 0 and same["resync_m"] == 0.0
    config = tmp_path / "off.toml"
    config.write_text('[progress]\nresync = "off"\n')
    off = run_compare(capsys, str(tas), "--line", str(line), "--time-penalty", "0", "--config", str(config),
                      "-o", str(tmp_path / "o.png"))["episodes"][0]
    assert off["resyncs"] == 0 and off["progress_m"] < 0.3 * off["line_length_m"]
    assert cli.main(["rewards", "compare", str(tas), "--line", str(line), "--time-penalty", "0",
                     "-o", str(tmp_path / "t.png")]) == 0
    row = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(tas.name))
    assert f"3 ({other['resync_m']:.1f})" in row


def test_a_folder_of_vector_env_logs_is_searched_and_rows_are_labelled_by_run(tmp_path, capsys):
    """It looked only at the folder itself (a vector env logs to env<i>/) and showed long file names."""
    from tmstate.vector.make import make_vector_env

    env = make_vector_env(2, maps=["sim_easy", "sim_esses"], log_dir=str(tmp_path / "logs"),
                          termination={"no_progress_s": 1.0})
    env.reset(seed=0)
    for _ in range(60):
        env.step(np.tile([0.0, 0.0], (2, 1)).astype(np.float32))  # standing still: episodes end on no progress
    env.close()
    result = run_compare(capsys, str(tmp_path / "logs"), "--time-penalty", "0,0.001", "-o", str(tmp_path / "c.png"))
    names = [r["name"] for r in result["episodes"]]
    assert names and all(n.split(" ")[0] in ("env0", "env1") and n.split(" ")[1].startswith("#") for n in names)
    assert {n.split(" ")[0] for n in names} == {"env0", "env1"}

"""Smoke tests of the training entry point and the experiments built on it (a few hundred steps)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3", reason="training needs the [train] extra (stable-baselines3, torch)")

from tmstate.errors import ConfigError
from tmstate.env.env import TMNFEnv
from tmstate.tools.experiments import time_penalty_experiment
from tmstate.tools.train import TrainConfig, train

SMALL = dict(timesteps=256, envs=2, n_steps=64, batch_size=64, eval_every=128, eval_episodes=1,
             checkpoint_every=128, progress_bar=False)


def test_a_short_ppo_run_writes_its_curve_checkpoints_and_a_loadable_model(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    out = tmp_path / "run"
    summary = train(TrainConfig(out=str(out), **SMALL))
    curve = json.loads((out / "curve.json").read_text())
    assert [p["timesteps"] for p in curve] == sorted(p["timesteps"] for p in curve)
    assert curve[-1]["timesteps"] == summary["timesteps"] >= 256
    assert all(0.0 <= p["finish_rate"] <= 1.0 and p["mean_progress_m"] >= 0.0 for p in curve)
    assert summary["time_penalty"] == pytest.approx(TrainConfig().env_config().reward.time)
    assert list((out / "checkpoints").glob("ppo_*_steps.zip"))
    model = PPO.load(out / "model.zip", device="cpu")
    env = TMNFEnv(TrainConfig(out=str(out), **SMALL).env_config())
    assert model.observation_space == env.observation_space  # the model was trained on this env
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)
    env.close()
    assert any((out / "tb").rglob("events.out.tfevents.*"))


def test_the_experiment_trains_one_agent_per_weight_and_seed_and_reports_the_spread(tmp_path: Path) -> None:
    results = time_penalty_experiment([0.0, 0.002], "sim_easy", 128, tmp_path / "exp", seeds=[0, 1],
                                      base=TrainConfig(**{**SMALL, "timesteps": 128, "eval_every": 128}))
    saved = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert [(r["weight"], r["seed"]) for r in saved["runs"]] == [(0.0, 0), (0.0, 1), (0.002, 0), (0.002, 1)]
    assert [r["summary"]["time_penalty"] for r in saved["runs"]] == [0.0, 0.0, 0.002, 0.002]
    for key, weight in (("0", 0.0), ("0.002", 0.002)):
        rates = [r["summary"]["final"]["finish_rate"] for r in saved["runs"] if r["weight"] == weight]
        figure = saved["per_weight"][key]["finish_rate"]
        assert figure["n"] == 2 and figure["mean"] == pytest.approx(sum(rates) / 2)
    config = json.loads((tmp_path / "exp" / "w0.002-s1" / "config.json").read_text())
    assert config["seed"] == 1  # each seed is its own run
    assert (tmp_path / "exp" / "time_penalty.png").is_file()


def test_spread_is_mean_std_min_max_and_empty_is_none() -> None:
    from tmstate.tools.experiments import spread

    assert spread([1.0, 3.0]) == {"n": 2, "mean": 2.0, "std": 1.0, "min": 1.0, "max": 3.0}
    assert spread([])["mean"] is None


def test_the_tracks_experiment_writes_a_row_per_track_over_its_seeds(tmp_path: Path) -> None:
    from tmstate.tools.experiments import tracks_experiment

    results = tracks_experiment(["sim_easy", "sim_esses"], [0, 1], 128, tmp_path / "tracks",
                                base=TrainConfig(**{**SMALL, "timesteps": 128, "eval_every": 128}))
    assert [(r["track"], r["seed"]) for r in results["runs"]] == [("sim_easy", 0), ("sim_easy", 1),
                                                                   ("sim_esses", 0), ("sim_esses", 1)]
    assert list(results["per_track"]) == ["sim_easy", "sim_esses"]
    assert all(f["runs"] == 2 for f in results["per_track"].values())
    table = (tmp_path / "tracks" / "table.md").read_text().splitlines()
    assert [row.split("|")[1].strip() for row in table[2:]] == ["sim_easy", "sim_esses"]
    assert (tmp_path / "tracks" / "tracks.png").is_file()
    config = json.loads((tmp_path / "tracks" / "sim_esses-s1" / "config.json").read_text())
    assert (config["track"], config["seed"]) == ("sim_esses", 1)


def test_the_tracks_experiment_reads_every_map_before_it_trains(tmp_path: Path) -> None:
    from tmstate.errors import TmstateError
    from tmstate.tools.experiments import tracks_experiment

    with pytest.raises(TmstateError, match="nosuchtrack"):
        tracks_experiment(["sim_easy", "nosuchtrack"], [0], 128, tmp_path / "t",
                          base=TrainConfig(**{**SMALL, "timesteps": 128, "eval_every": 128}))
    assert not (tmp_path / "t" / "sim_easy-s0").exists()  # nothing trained on the first map


def test_a_ghost_file_names_its_track_without_the_suffix() -> None:
    from tmstate.tools.experiments import track_name

    assert track_name("../shared/realdata/replays/A01-Race_TAS_00_17_61.Replay.Gbx") == "A01-Race_TAS_00_17_61"
    assert track_name("lines/a01.npz") == "a01"
    assert track_name("sim_easy") == "sim_easy"


@pytest.mark.parametrize("bad", [{"algo": "dqn"}, {"timesteps": 0}, {"envs": 0}, {"obs": "pixels"},
                                 {"backend": "tminterface", "ports": [8477], "envs": 2},
                                 {"backend": "tminterface", "ports": [8477], "envs": 1, "eval_port": 8477},
                                 {"ports": [8477], "envs": 1}])
def test_bad_training_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ConfigError):
        TrainConfig(**bad)


def test_negative_time_penalty_weights_and_seeds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="finite and >= 0"):
        time_penalty_experiment([-0.001], "sim_easy", 128, tmp_path)
    with pytest.raises(ConfigError, match="--seeds"):
        time_penalty_experiment([0.0], "sim_easy", 128, tmp_path, seeds=[-1])


def test_the_progress_bar_stops_at_its_total(tmp_path: Path, capsys) -> None:
    """SB3 learns in whole rollouts (256 steps here for 200 asked): the bar said 256/200."""
    train(TrainConfig(out=str(tmp_path / "run"), **{**SMALL, "timesteps": 200, "progress_bar": True}))
    err = capsys.readouterr().err
    assert "200/200" in err and "256/200" not in err


def test_the_random_start_experiment_trains_both_modes_and_evaluates_from_the_start_line(tmp_path: Path) -> None:
    from tmstate.tools.experiments import start_spread_experiment

    results = start_spread_experiment("sim_easy", 128, [0, 1], tmp_path / "starts",
                                      base=TrainConfig(**{**SMALL, "timesteps": 128, "eval_every": 128}))
    assert [(r["mode"], r["seed"]) for r in results["runs"]] == [("line_start", 0), ("line_start", 1),
                                                                   ("uniform", 0), ("uniform", 1)]
    config = json.loads((tmp_path / "starts" / "uniform-s0" / "config.json").read_text())
    assert config["env"]["start"]["mode"] == "uniform"  # the runs trained with spread starts
    config = json.loads((tmp_path / "starts" / "line_start-s0" / "config.json").read_text())
    assert config["env"]["start"]["mode"] == "line_start"  # and these not, whatever "auto" means
    assert (tmp_path / "starts" / "starts.png").is_file()



def test_training_starts_spread_along_the_track_on_the_sim_unless_told_otherwise() -> None:
    from tmstate.env.env import EnvConfig, make_config

    assert TrainConfig().env_config().start.mode == "uniform"
    assert TrainConfig(start="line_start").env_config().start.mode == "line_start"
    assert TrainConfig(env=make_config(EnvConfig(), start={"mode": "ended"})).env_config().start.mode == "ended"
    game = TrainConfig(backend="tminterface", ports=[8477, 8478, 8479, 8480])
    assert game.env_config().start.mode == "line_start"  # the game needs a start bank first
    with pytest.raises(ConfigError, match="start must be one of"):
        TrainConfig(start="random")


def test_evaluation_starts_at_the_start_line_when_training_starts_spread_along_the_track() -> None:
    """The curve of a run with spread starts came from episodes that started along the track
    too (the eval env had the training env's start), so its finishes were partial laps."""
    from tmstate.tools.train import make_eval_env

    config = TrainConfig(start="uniform", **SMALL)
    training = config.env_config()
    assert training.start.mode == "uniform"
    eval_env = make_eval_env(config, training)
    try:
        env = eval_env.venv.envs[0].unwrapped
        assert env.config.start.mode == "line_start"
        for seed in range(5):
            eval_env.seed(seed)
            eval_env.reset()
            line_start = np.asarray(env.line.points[0])[[0, 2]]
            assert np.linalg.norm(np.asarray(env.state.position)[[0, 2]] - line_start) < 2.0
    finally:
        eval_env.close()


def test_an_experiment_reuses_finished_runs_of_the_same_settings(tmp_path: Path) -> None:
    from tmstate.tools.experiments import tracks_experiment

    base = TrainConfig(**{**SMALL, "timesteps": 128, "eval_every": 128})
    tracks_experiment(["sim_easy"], [0], 128, tmp_path / "t", base=base)
    model = tmp_path / "t" / "sim_easy-s0" / "model.zip"
    trained_at = model.stat().st_mtime_ns
    tracks_experiment(["sim_easy"], [0, 1], 128, tmp_path / "t", base=base)  # one more seed
    assert model.stat().st_mtime_ns == trained_at  # seed 0 was not trained again
    assert (tmp_path / "t" / "sim_easy-s1" / "model.zip").is_file()
    (tmp_path / "t" / "sim_easy-s1" / "summary.json").unlink()  # as if stopped mid-training
    tracks_experiment(["sim_easy"], [0, 1], 128, tmp_path / "t", base=base)
    assert (tmp_path / "t" / "sim_easy-s1" / "summary.json").is_file()
    with pytest.raises(ConfigError):  # other settings in the same folder: refused, nothing lost
        tracks_experiment(["sim_easy"], [0], 256, tmp_path / "t", base=base)
    assert model.stat().st_mtime_ns == trained_at

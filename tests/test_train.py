"""Smoke tests of the training entry point and the time-penalty experiment (a few hundred steps)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3", reason="training needs the [train] extra (stable-baselines3, torch)")

from tmstate.errors import ConfigError
from tmstate.env.env import TMNFEnv
from tmstate.tools.train import TrainConfig, time_penalty_experiment, train

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


def test_the_experiment_trains_one_agent_per_weight_and_reports_each(tmp_path: Path) -> None:
    results = time_penalty_experiment([0.0, 0.002], "sim_easy", 128, tmp_path / "exp",
                                      base=TrainConfig(**{**SMALL, "timesteps": 128, "eval_every": 128}))
    saved = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert [r["weight"] for r in saved["runs"]] == [0.0, 0.002]
    assert [r["summary"]["time_penalty"] for r in saved["runs"]] == [0.0, 0.002]
    for run in saved["runs"]:
        assert 0.0 <= run["summary"]["final"]["finish_rate"] <= 1.0


@pytest.mark.parametrize("bad", [{"algo": "dqn"}, {"timesteps": 0}, {"envs": 0}, {"obs": "pixels"},
                                 {"backend": "tminterface", "ports": [8477], "envs": 2},
                                 {"backend": "tminterface", "ports": [8477], "envs": 1, "eval_port": 8477},
                                 {"ports": [8477], "envs": 1}])
def test_bad_training_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ConfigError):
        TrainConfig(**bad)


def test_negative_time_penalty_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="finite and >= 0"):
        time_penalty_experiment([-0.001], "sim_easy", 128, tmp_path)


def test_the_progress_bar_stops_at_its_total(tmp_path: Path, capsys) -> None:
    """SB3 learns in whole rollouts (256 steps here for 200 asked): the bar said 256/200."""
    train(TrainConfig(out=str(tmp_path / "run"), **{**SMALL, "timesteps": 200, "progress_bar": True}))
    err = capsys.readouterr().err
    assert "200/200" in err and "256/200" not in err


def test_the_random_start_experiment_trains_both_modes_and_evaluates_from_the_start_line(tmp_path: Path) -> None:
    from tmstate.env.env import EnvConfig
    from tmstate.tools.train import evaluate, start_spread_experiment

    results = start_spread_experiment("sim_easy", 128, [0, 1], tmp_path / "starts",
                                      base=TrainConfig(**{**SMALL, "timesteps": 128, "eval_every": 128}))
    assert [(r["mode"], r["seed"]) for r in results["runs"]] == [("line_start", 0), ("line_start", 1),
                                                                   ("uniform", 0), ("uniform", 1)]
    config = json.loads((tmp_path / "starts" / "uniform-s0" / "config.json").read_text())
    assert config["env"]["start"]["mode"] == "uniform"  # the runs trained with spread starts
    assert (tmp_path / "starts" / "starts.png").is_file()

    class Still:
        """A policy that never moves: an evaluation from the start line then makes no progress."""

        def predict(self, obs, deterministic=True):
            import numpy as np

            return np.array([0.0, 0.0], dtype=np.float32), None

    figures = evaluate(Still(), EnvConfig(map="sim_easy", start={"mode": "uniform"}), 2)
    assert figures["mean_progress_m"] == pytest.approx(0.0, abs=0.5)  # not the spread start's arc length

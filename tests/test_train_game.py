"""``tmstate train`` on the real-game path, end to end: the unmodified plugin in harness
processes started by the launcher (a fake wine runs the harness), training through the
recovering vector env with ``to_sb3``, evaluation on a game of its own, and one training
game killed midway: it is restarted and training goes on to the end. Also the run folder
rules (--force, --resume), --config, --obs frames, and the help text's defaults."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakes import harness_wine

pytest.importorskip("stable_baselines3", reason="training needs the [train] extra (stable-baselines3, torch)")

from tmstate.cli import build_parser, main
from tmstate.errors import ConfigError
from tmstate.tools.train import CLI_FIELDS, TrainConfig, load_train_config, merged_config

ROOT = Path(__file__).resolve().parents[1]


SMALL = ["--timesteps", "256", "--envs", "2", "--n-steps", "64", "--batch-size", "64", "--eval-every", "128",
         "--eval-episodes", "1", "--checkpoint-every", "128", "--no-progress-bar", "--no-tensorboard"]


@pytest.mark.harness
def test_train_on_two_harness_games_goes_on_when_one_is_killed_midway(tmp_path, requires_harness):
    from stable_baselines3 import PPO

    from tmstate.ops import launch
    from tmstate.vector.instances import harness_line

    wine, tmloader = harness_wine(tmp_path)
    base = random.randint(20000, 50000)
    settings = dict(wine=str(wine), tmloader=str(tmloader), base_port=base,
                    run_dir=str(tmp_path / "launch"), handshake_timeout_s=30.0, stop_grace_s=1.0,
                    start_prefix=False, wine_prefix=str(tmp_path / "prefix"))
    config = launch.LaunchConfig(**settings)
    launch_toml = tmp_path / "launch.toml"
    launch_toml.write_text("[launch]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))
    line = harness_line().save(tmp_path / "harness_line.npz")
    run_toml = tmp_path / "run.toml"  # env settings in the run config: a lost game is noticed in about a second
    run_toml.write_text("[env.backend_options]\ntimeout_s = 1.0\nconnect_retries = 50\nretry_delay_s = 0.05\n")
    launcher = launch.Launcher(config, 3)  # as `tmstate launch -n 3` would: two to train on, one to evaluate on
    launcher.start_all(progress=False)
    out = tmp_path / "run"
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "tmstate.cli", "train", "--backend", "tminterface", "--ports", f"{base},{base + 1}",
             "--eval-port", str(base + 2), "--launch-config", str(launch_toml), "--config", str(run_toml),
             "--track", str(line), "--out", str(out), *SMALL, "--timesteps", "640"],
            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 240
        while not list((out / "checkpoints").glob("*.zip")) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process.poll() is None, process.communicate()[1]
        marker = launch.read_pid_file(config.pid_file)[0]["marker"]
        killed = launch.pids_with_marker(marker + ".game")
        assert killed
        for pid in killed:
            os.kill(pid, signal.SIGKILL)  # training game 0 crashes mid-training
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        launch.stop_from_pid_file(config.pid_file, grace_s=1)
        launcher.stop_all()
    assert process.returncode == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["timesteps"] >= 640
    assert summary["restarts"][0] >= 1 and summary["restarts"][1] == 0  # the killed game came back; the other went on
    curve = json.loads((out / "curve.json").read_text())
    assert len(curve) >= 3 and curve[-1]["timesteps"] == summary["timesteps"]  # evaluations on the eval game
    assert "games restarted" in stdout
    model = PPO.load(out / "model.zip", device="cpu")
    assert model.num_timesteps == summary["timesteps"]


def test_a_run_folder_is_not_overwritten_without_force_and_resume_continues_it(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "--out", out, *SMALL]) == 0
    first = json.loads(Path(out, "summary.json").read_text())
    assert main(["train", "--out", out, *SMALL]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "--out", out, *SMALL, "--resume", "--timesteps", "512"]) == 0
    resumed = json.loads(Path(out, "summary.json").read_text())
    assert first["timesteps"] < resumed["timesteps"] and resumed["timesteps"] >= 512
    curve = json.loads(Path(out, "curve.json").read_text())
    assert curve[0]["timesteps"] <= first["timesteps"] < curve[-1]["timesteps"]  # the old curve kept, continued
    assert main(["train", "--out", out, *SMALL, "--force"]) == 0
    assert json.loads(Path(out, "summary.json").read_text())["timesteps"] == first["timesteps"]


def test_a_run_config_sets_env_and_algorithm_and_options_override_it(tmp_path):
    run = tmp_path / "run.toml"
    run.write_text('[train]\nalgo = "ppo"\ntimesteps = 1000\nn_steps = 128\n[train.hyper]\nent_coef = 0.01\n'
                   '[env]\naction_period_ms = 100\n[env.reward]\ntime = 0.0002\n')
    config = load_train_config(run)
    assert (config.timesteps, config.n_steps, config.hyper, config.env.action_period_ms) == (1000, 128, {"ent_coef": 0.01}, 100)
    merged = merged_config(str(run), {"timesteps": 64, "obs": "frames", "seed": 3}, ["clip_range=0.1"])
    assert (merged.timesteps, merged.n_steps, merged.seed, merged.policy) == (64, 128, 3, "CnnPolicy")
    assert merged.algo_kwargs()["ent_coef"] == 0.01 and merged.algo_kwargs()["clip_range"] == 0.1
    assert merged.env_config().reward.time == 0.0002 and merged.env_config().observation.type == "frames"
    run.write_text("[trian]\nalgo = 'ppo'\n")
    with pytest.raises(ConfigError, match="unknown table"):
        load_train_config(run)


def test_frames_train_with_a_cnn_policy(tmp_path):
    from stable_baselines3 import PPO

    out = tmp_path / "frames"
    assert main(["train", "--obs", "frames", "--out", str(out), *SMALL, "--timesteps", "128", "--envs", "1",
                 "--n-steps", "128"]) == 0
    model = PPO.load(out / "model.zip", device="cpu")
    assert type(model.policy).__name__ == "ActorCriticCnnPolicy"
    assert model.observation_space.shape == (4, 64, 64)  # SB3 puts an image's channels first


def test_every_train_option_has_help_with_the_configs_default():
    parser = build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    defaults = TrainConfig()
    for action in train._actions:
        if action.dest in ("help",):
            continue
        assert action.help, f"--{action.dest} has no help"
        if action.dest in CLI_FIELDS:
            value = getattr(defaults, action.dest)
            assert "(default: " in action.help, f"--{action.dest}: help does not say its default"
            shown = action.help.split("(default: ", 1)[1].rstrip(")")
            words = {"ports": "the launch config's base_port + i", "launch_config": "tmstate launch's defaults",
                     "time_penalty": "the env's"}
            if action.dest in words:
                assert shown == words[action.dest]
            elif isinstance(value, (int, float)):
                assert float(shown.split()[0]) == value, f"--{action.dest}: help says {shown}, TrainConfig {value}"
            else:
                assert shown == str(value), f"--{action.dest}: help says {shown}, TrainConfig {value}"
    assert {f.name for f in dataclasses.fields(TrainConfig)} - set(CLI_FIELDS) == {"tensorboard", "progress_bar", "env", "hyper"}

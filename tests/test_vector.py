"""The vector env: parallel stepping, autoreset, crash/hang recovery, stable-baselines3.

Two kinds of tests: fast ones over tiny in-process fake games (each can be told to
"crash" at a given step), which pin down autoreset and recovery exactly; and real ones
over plugin-harness processes (the AngelScript plugin in its C++ host) that are killed
with SIGKILL or frozen with SIGSTOP mid-episode.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from tmstate.errors import BridgeTimeoutError, ConfigError, DisconnectedError, GameLostError, PluginError
from tmstate.vector.env import TMNFVectorEnv, VectorConfig
from tmstate.vector.instances import FunctionInstance, harness_line
from tmstate.vector.make import make_vector_env
from tmstate.vector.sb3 import to_sb3

from fakes import harness_wine

# --- fake games -------------------------------------------------------------------------


class FakeGame:
    """Stands in for a game process: ``alive`` flips off to simulate a crash."""

    def __init__(self) -> None:
        self.alive = True
        self.generation = 0
        self.fail_restarts = 0  # how many of the next restarts fail

    def restart(self) -> None:
        if self.fail_restarts > 0:
            self.fail_restarts -= 1
            raise DisconnectedError("fake game failed to come back")
        self.alive = True
        self.generation += 1


class CountEnv(gym.Env):
    """obs = [step in episode, generation of the game]; episodes end after ``length`` steps."""

    def __init__(self, game: FakeGame, length: int = 5, error: type[Exception] = DisconnectedError) -> None:
        self.game = game
        self.length = length
        self.error = error
        self.t = 0
        self.observation_space = gym.spaces.Box(0, 1000, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1, 1, shape=(1,), dtype=np.float32)
        self.closed = False

    def _obs(self) -> np.ndarray:
        return np.array([self.t, self.game.generation], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if not self.game.alive:
            raise self.error("game gone during reset")
        self.t = 0
        return self._obs(), {"seed": -1 if seed is None else seed}

    def step(self, action):
        if not self.game.alive:
            raise self.error("game gone")
        self.t += 1
        return self._obs(), 1.0, self.t >= self.length, False, {"t": self.t}

    def close(self):
        self.closed = True


def fake_vector(n: int = 3, length: int = 5, mode: str = "next_step", parallel: bool = True, **kw):
    games = [FakeGame() for _ in range(n)]
    instances = [
        FunctionInstance(lambda g=g: CountEnv(g, length, **kw), recover=g.restart, name=f"fake{i}")
        for i, g in enumerate(games)
    ]
    config = VectorConfig(autoreset_mode=mode, restart_delay_s=0.0, parallel=parallel)
    return TMNFVectorEnv(instances, config), games


# --- autoreset and recovery on fake games ------------------------------------------------


@pytest.mark.parametrize("parallel", [True, False])
def test_next_step_autoreset(parallel):
    env, _ = fake_vector(2, length=3, parallel=parallel)
    obs, info = env.reset(seed=10)
    assert obs.shape == (2, 2) and list(info["seed"]) == [10, 11]
    actions = np.zeros((2, 1), dtype=np.float32)
    for expected_t in (1, 2, 3):
        obs, reward, terminated, truncated, info = env.step(actions)
        assert list(obs[:, 0]) == [expected_t, expected_t]
    assert terminated.all() and not truncated.any()
    obs, reward, terminated, truncated, info = env.step(actions)  # the reset step
    assert list(obs[:, 0]) == [0, 0] and list(reward) == [0, 0] and not terminated.any()
    env.close()


def test_same_step_autoreset_puts_the_last_observation_in_final_obs():
    env, _ = fake_vector(2, length=2, mode="same_step")
    env.reset()
    actions = np.zeros((2, 1), dtype=np.float32)
    env.step(actions)
    obs, reward, terminated, truncated, info = env.step(actions)
    assert terminated.all() and list(obs[:, 0]) == [0, 0]
    assert [o[0] for o in info["final_obs"]] == [2, 2]
    assert list(info["final_info"]["t"]) == [2, 2]
    env.close()


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_a_lost_game_truncates_its_episode_restarts_and_the_others_go_on(mode):
    env, games = fake_vector(3, length=100, mode=mode)
    env.reset()
    actions = np.zeros((3, 1), dtype=np.float32)
    for _ in range(4):
        env.step(actions)
    old_env = env.envs[1]
    games[1].alive = False  # instance 1 crashes
    obs, reward, terminated, truncated, info = env.step(actions)
    assert list(truncated) == [False, True, False] and not terminated.any()
    assert info["game_lost"][1] and info["_game_lost"].tolist() == [False, True, False]
    assert "DisconnectedError" in info["game_error"][1]
    assert reward[1] == 0.0 and list(obs[[0, 2], 0]) == [5, 5]  # the others kept their episodes
    assert old_env.closed and env.restarts == [0, 1, 0] and games[1].generation == 1
    if mode == "same_step":
        assert obs[1].tolist() == [0, 1]  # already the new game's start
        assert info["final_obs"][1].tolist() == [4, 0]  # the last observation before the loss
    else:
        assert obs[1].tolist() == [4, 0]  # the last observation before the loss
        obs, reward, terminated, truncated, info = env.step(actions)  # the autoreset step
        assert obs[1].tolist() == [0, 1] and reward[1] == 0
    obs, *_ = env.step(actions)
    assert obs[1, 0] == 1 and obs[0, 0] == (6 if mode == "same_step" else 7)
    env.close()


def test_a_dropped_connection_to_a_live_game_is_reconnected_not_restarted():
    game = FakeGame()
    made = []

    def make():
        made.append(CountEnv(game, 100))
        return made[-1]

    instance = FunctionInstance(make, recover=game.restart, alive=lambda: True)
    env = TMNFVectorEnv([instance], VectorConfig(restart_delay_s=0.0))
    env.reset()
    env.step(np.zeros((1, 1), dtype=np.float32))
    made[0].step = lambda action: (_ for _ in ()).throw(DisconnectedError("plugin dropped us"))
    *_, truncated, info = env.step(np.zeros((1, 1), dtype=np.float32))
    assert truncated[0] and info["game_lost"][0]
    assert len(made) == 2 and env.restarts == [0] and game.generation == 0  # same game, new connection
    env.close()


def test_a_lost_game_during_reset_is_restarted_too():
    env, games = fake_vector(2)
    games[0].alive = False
    obs, info = env.reset()
    assert info["game_lost"][0] and obs[0].tolist() == [0, 1]
    assert info["game_error"][0].startswith("DisconnectedError: ")  # as a loss during a step says it
    env.close()


def test_bounded_restarts_then_one_clear_error():
    env, games = fake_vector(2)
    env.reset()
    games[0].alive = False
    games[0].fail_restarts = 2  # two failures, then it comes back: within 3 attempts
    env.step(np.zeros((2, 1), dtype=np.float32))
    assert env.restarts[0] == 1 and games[0].generation == 1
    games[1].alive = False
    games[1].fail_restarts = 99
    with pytest.raises(GameLostError, match=r"game instance 1 \(fake1\).*after 3 attempt"):
        env.step(np.zeros((2, 1), dtype=np.float32))
    env.close()


def test_hang_timeouts_count_as_lost_but_other_errors_are_raised():
    env, games = fake_vector(2, error=BridgeTimeoutError)
    env.reset()
    games[0].alive = False
    *_, truncated, info = env.step(np.zeros((2, 1), dtype=np.float32))
    assert truncated[0] and info["game_lost"][0]
    env.close()
    env, games = fake_vector(2, error=lambda msg: PluginError(3, 2, msg))
    env.reset()
    games[0].alive = False
    with pytest.raises(PluginError):
        env.step(np.zeros((2, 1), dtype=np.float32))
    env.close()


def test_bad_configs_are_refused():
    with pytest.raises(ConfigError):
        VectorConfig(autoreset_mode="sometimes")
    with pytest.raises(ConfigError):
        TMNFVectorEnv([])
    game = FakeGame()
    other = FunctionInstance(lambda: gym.make("CartPole-v1"))
    with pytest.raises(ConfigError, match="other spaces"):
        TMNFVectorEnv([FunctionInstance(lambda: CountEnv(game)), other])


def test_sb3_adapter_contract_on_fake_games():
    from stable_baselines3.common.vec_env import VecMonitor

    env, games = fake_vector(2, length=3)
    venv = VecMonitor(to_sb3(env))
    obs = venv.reset()
    assert obs.shape == (2, 2)
    actions = np.zeros((2, 1), dtype=np.float32)
    for _ in range(2):
        venv.step(actions)
    obs, rewards, dones, infos = venv.step(actions)
    assert dones.all() and obs[:, 0].tolist() == [0, 0]
    assert infos[0]["terminal_observation"][0] == 3 and infos[0]["TimeLimit.truncated"] is False
    assert infos[0]["episode"]["l"] == 3  # VecMonitor saw a whole episode
    games[0].alive = False
    obs, rewards, dones, infos = venv.step(actions)
    assert dones[0] and infos[0]["game_lost"] and infos[0]["TimeLimit.truncated"] is True
    assert obs[0].tolist() == [0, 1] and infos[0]["terminal_observation"][0] == 0
    assert venv.get_attr("length") == [3, 3]
    venv.close()


def test_gymnasium_vector_wrappers_take_it():
    from gymnasium.wrappers.vector import RecordEpisodeStatistics

    env, _ = fake_vector(2, length=3)
    env = RecordEpisodeStatistics(env)
    env.reset(seed=0)
    actions = np.zeros((2, 1), dtype=np.float32)
    for _ in range(3):
        *_, info = env.step(actions)
    assert info["episode"]["l"].tolist() == [3, 3] and info["episode"]["r"].tolist() == [3.0, 3.0]
    env.close()


def test_sim_vector_env_spreads_maps_and_log_dirs(tmp_path):
    env = make_vector_env(3, maps=["sim_easy", "sim_esses"], log_dir=str(tmp_path))
    try:
        assert [e.config.map for e in env.envs] == ["sim_easy", "sim_esses", "sim_easy"]
        assert [e.config.log_dir for e in env.envs] == [str(tmp_path / f"env{i}") for i in range(3)]
        assert env._pool is None  # in-process simulator: stepped in turn, no threads
        obs, _ = env.reset(seed=1)
        assert obs.shape == (3, *env.single_observation_space.shape)
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert np.isfinite(reward).all() and list(info["race_time_ms"]) == [50, 50, 50]
    finally:
        env.close()
    with pytest.raises(ConfigError):
        make_vector_env(2, backend="wine")


# --- real plugin-harness processes ------------------------------------------------------


def open_fds() -> int:
    import os

    return len(os.listdir("/proc/self/fd"))


def weave(num_envs: int, k: int) -> np.ndarray:
    steer = 0.3 * np.sin(0.05 * k + np.arange(num_envs))
    return np.stack([steer, np.ones(num_envs)], axis=1).astype(np.float32)


# A short client timeout so a frozen harness is noticed in about a second (the plugins keep
# the vector env's long plugin timeout, so the others wait out a sibling's restart).
FAST_LOSS = {"timeout_s": 1.0, "connect_retries": 50, "retry_delay_s": 0.05}


@pytest.mark.harness
def test_four_harnesses_10k_steps_survive_a_kill_and_a_freeze(tmp_path, requires_harness):
    import os
    import signal
    import time

    n = 4
    env = make_vector_env(
        n, backend="harness", backend_options=FAST_LOSS, log_dir=str(tmp_path / "logs"),
        vector=VectorConfig(restart_delay_s=0.1),
    )
    try:
        env.reset(seed=0)
        total = 0
        race_time = np.zeros(n, dtype=np.int64)
        prev_done = np.zeros(n, dtype=bool)
        lost_at: dict[int, int] = {}
        pids = [inst.harness.pid for inst in env.instances]
        for k in range(2500):
            if k == 50:
                fds_warm = open_fds()
            if k == 400:
                os.kill(env.instances[1].harness.pid, signal.SIGKILL)  # a crash
            if k == 900:
                os.kill(env.instances[2].harness.pid, signal.SIGSTOP)  # a hang
                frozen_at = time.monotonic()
            obs, reward, terminated, truncated, info = env.step(weave(n, k))
            total += n
            if "game_lost" in info:
                for i in np.flatnonzero(info["_game_lost"]):
                    assert truncated[i] and not terminated[i] and reward[i] == 0.0
                    lost_at[int(i)] = k
                    if i == 2:
                        assert time.monotonic() - frozen_at >= 0.9  # noticed by the bridge timeout
            # Episodes went on across the others' losses: race time grows by one period a step,
            # back to 0 only on the autoreset step after an episode's end.
            has = info["_race_time_ms"]
            for i in np.flatnonzero(has):
                now = int(info["race_time_ms"][i])
                assert now == 0 if prev_done[i] else 0 < now - race_time[i] <= 50
                race_time[i] = now
            prev_done = terminated | truncated
        assert total == 10_000
        assert sorted(lost_at) == [1, 2] and lost_at[1] == 400 and lost_at[2] == 900
        assert env.restarts == [0, 1, 1, 0]
        new_pids = [inst.harness.pid for inst in env.instances]
        assert new_pids[0] == pids[0] and new_pids[3] == pids[3]
        assert new_pids[1] != pids[1] and new_pids[2] != pids[2]
        # Restarts replaced sockets and pipes one for one: no descriptor leaked.
        assert open_fds() == fds_warm
    finally:
        env.close()
    # Every episode log is intact and readable, including the ones cut short by a loss.
    from tmstate.formats.log import find_logs, read_episode

    for i in range(n):
        logs = [read_episode(path) for path in find_logs([tmp_path / "logs" / f"env{i}"])]
        assert logs and all(log.steps > 0 for log in logs)
        lost = [log for log in logs if log.reasons[-1] == "game_lost"]
        if i in (1, 2):  # the episode cut by the loss says so: last step truncated, reason game_lost
            assert len(lost) == 1 and lost[0].truncated[-1] and not lost[0].terminated[-1]
            assert lost[0].metadata["reason"] == "game_lost"
        else:
            assert not lost


@pytest.mark.harness
def test_harness_vector_env_trains_with_sb3_for_a_few_steps(requires_harness):
    from stable_baselines3 import PPO

    venv = to_sb3(make_vector_env(2, backend="harness"))
    try:
        model = PPO("MlpPolicy", venv, n_steps=32, batch_size=32, n_epochs=1, verbose=0)
        model.learn(64)
        assert model.num_timesteps >= 64
    finally:
        venv.close()




@pytest.mark.harness
def test_launched_instances_are_restarted_through_the_launcher(tmp_path, requires_harness):
    """The real-game path: launcher (fake wine running the harness), adopt, kill, restart."""
    import os
    import random
    import signal

    from tmstate.ops import launch

    wine, tmloader = harness_wine(tmp_path)
    config = launch.LaunchConfig(
        wine=str(wine), tmloader=str(tmloader), base_port=random.randint(20000, 50000),
        run_dir=str(tmp_path / "run"), handshake_timeout_s=20, stop_grace_s=1, start_prefix=False,
        wine_prefix=str(tmp_path / "prefix"),
    )
    line_path = harness_line().save(tmp_path / "harness_line.npz")
    # As `tmstate launch -n 2` would: start the games and leave them running.
    launcher = launch.Launcher(config, 2)
    launcher.start_all(progress=False)
    try:
        env = make_vector_env(2, backend="tminterface", map=str(line_path), backend_options=FAST_LOSS,
                                     launch=config, vector=VectorConfig(restart_delay_s=0.1))
        adopted = env.instances[0].launcher
        assert adopted is not launcher and adopted.ports == launcher.ports
        env.reset(seed=0)
        for k in range(60):
            env.step(weave(2, k))
        old_marker = adopted.instances[0].marker
        for pid in launch.pids_with_marker(old_marker + ".game"):
            os.kill(pid, signal.SIGKILL)
        lost = False
        for k in range(60, 200):
            *_, truncated, info = env.step(weave(2, k))
            lost = lost or bool(info.get("_game_lost", np.zeros(2, bool))[0])
        assert lost and env.restarts == [1, 0]
        new_marker = adopted.instances[0].marker
        assert new_marker != old_marker and launch.pids_with_marker(new_marker + ".game")
        records = launch.read_pid_file(config.pid_file)
        assert [r["marker"] for r in records][0] == new_marker  # `tmstate launch --stop` ends the new game
        env.close()
        assert launch.pids_with_marker(new_marker + ".game")  # adopted games outlive the vector env
    finally:
        launch.stop_from_pid_file(config.pid_file, grace_s=1)
        launcher.stop_all()
    assert not launch.pids_with_marker(new_marker + ".game")


def test_the_repr_names_every_map():
    env = make_vector_env(3, maps=["sim_easy", "sim_esses"])
    try:
        assert repr(env) == "TMNFVectorEnv(sim sim_easy, sim sim_esses, sim sim_easy, NextStep)"
    finally:
        env.close()
    same = make_vector_env(2)
    try:
        assert repr(same) == "TMNFVectorEnv(2 x sim sim_easy, NextStep)"
    finally:
        same.close()


def test_a_vector_env_that_cannot_be_made_has_closed_its_instances_and_finalizers():
    """The env owns what it is given from the start: its makers need no clean-up of their own."""
    closed: list[str] = []
    with pytest.raises(ConfigError):
        TMNFVectorEnv([], on_close=[lambda: closed.append("empty")])
    game = FakeGame()
    other = FunctionInstance(lambda: gym.make("CartPole-v1"))
    with pytest.raises(ConfigError, match="other spaces"):
        TMNFVectorEnv([FunctionInstance(lambda: CountEnv(game)), other], on_close=[lambda: closed.append("spaces")])
    assert closed == ["empty", "spaces"]  # each once

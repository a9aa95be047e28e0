"""TMNFEnv: Gymnasium and stable-baselines3 conformance, config, registration, episodes."""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from tmstate.core.state import GameState
from tmstate.env.env import EnvConfig, TMNFEnv, load_config, make_config
from tmstate.env.registry import ENV_ID
from tmstate.errors import ActionError, ConfigError, TmstateError

OBS_TYPES = ["telemetry", "frames", "dict"]
SMALL_FRAMES = {"width": 48, "height": 48, "stack": 2}


def check_both(env: gym.Env) -> None:
    """Gymnasium's env checker, then stable-baselines3's (its warnings are failures too)."""
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*alternative render modes.*")  # no spec on direct construction
        check_env(env, skip_render_check=False)
        sb3_check_env(env, warn=True)


@pytest.mark.parametrize("obs_type", OBS_TYPES)
def test_checkers_pass_on_the_sim(obs_type):
    env = TMNFEnv(backend="sim", observation={"type": obs_type, **SMALL_FRAMES}, render_mode="rgb_array")
    check_both(env)
    env.close()


def test_checkers_pass_with_discrete_actions():
    check_both(TMNFEnv(backend="sim", action="discrete"))


def test_gymnasium_make_after_import_and_through_the_entry_point():
    import importlib
    import tomllib

    env = gym.make(ENV_ID, map="sim_esses", backend="sim", render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert env.unwrapped.line.metadata.map_name == "sim_esses"
    assert env.observation_space.contains(obs)
    assert env.render().shape == (240, 320, 3)
    env.close()
    # The entry point as pyproject declares it (the installed metadata may be another checkout's).
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    target = project["project"]["entry-points"]["gymnasium.envs"]["tmstate"]
    module, _, function = target.partition(":")
    del gym.registry[ENV_ID]
    getattr(importlib.import_module(module), function)()
    assert ENV_ID in gym.registry
    gym.make("tmstate.env.env:" + ENV_ID).close()


def test_config_from_toml_with_nested_tables(tmp_path):
    path = tmp_path / "env.toml"
    path.write_text(
        '[env]\nmap = "sim_hairpins"\naction_period_ms = 100\naction = "discrete"\n'
        '[env.reward]\ntime = 0.002\n[env.observation]\ntype = "frames"\nstack = 3\n'
        '[env.backend_options.car]\npreset = "previous"\n[env.backend_options.car.params]\nengine_mps2 = 10.0\n'
    )
    config = load_config(path)
    assert config.map == "sim_hairpins" and config.action_period_ms == 100
    assert config.reward.time == 0.002 and config.reward.progress == EnvConfig().reward.progress
    assert config.observation.type == "frames" and config.observation.stack == 3
    env = TMNFEnv(config, observation={"width": 32, "height": 32})
    assert env.observation_space.shape == (32, 32, 3)
    assert env.backend.cars.model.engine_mps2 == 10.0
    env.reset()
    env.step(0)
    assert env.state.race_time_ms == 100
    path.write_text('[env]\nmapp = "x"\n')
    with pytest.raises(ConfigError, match="mapp"):
        load_config(path)


def test_overrides_merge_and_bad_values_are_config_errors():
    config = make_config(EnvConfig(map="sim_esses"), reward={"time": 0.5})
    assert config.map == "sim_esses"
    assert config.reward.time == 0.5 and config.reward.finish == EnvConfig().reward.finish
    with pytest.raises(ConfigError, match="backend"):
        TMNFEnv(backend="xbox")
    with pytest.raises(ConfigError, match="multiple of 10"):
        TMNFEnv(action_period_ms=15)
    with pytest.raises(ConfigError, match="observation type"):
        TMNFEnv(observation={"type": "sonar"})


@pytest.mark.parametrize("period", [0, 15, 100_010, True, 50.0])
def test_every_taker_of_an_action_period_refuses_the_same_values(period, tmp_path):
    """One rule (core.state.check_action_period_ms): env config, sim and game backends, replay, bridge."""
    from tmstate.backends.replay import ReplayBackend
    from tmstate.backends.sim.backend import SimBackend
    from tmstate.backends.tminterface import GameConfig
    from tmstate.formats.log import write_states_log
    from tmstate.link.bridge import Bridge

    log = write_states_log([GameState(), GameState(race_time_ms=50)], tmp_path / "two.npz", {})
    takers = [lambda: EnvConfig(action_period_ms=period), lambda: SimBackend(action_period_ms=period),
              lambda: GameConfig(action_period_ms=period), lambda: ReplayBackend(log, action_period_ms=period),
              lambda: Bridge().set_action_period(period)]
    for make in takers:
        with pytest.raises(ConfigError, match=r"multiple of 10 in 10\.\.100000 ms"):
            make()
    assert EnvConfig(action_period_ms=100_000).action_period_ms == 100_000


def test_episode_info_reward_terms_and_time_limit():
    env = TMNFEnv(backend="sim", termination={"time_limit_s": 2.0})
    obs, info = env.reset(seed=0)
    assert info["race_time_ms"] == 0 and info["termination_reason"] == ""
    total, steps = 0.0, 0
    while True:
        obs, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0], np.float32))
        steps += 1
        assert set(info) >= {"reward_terms", "race_time_ms", "progress_m", "lateral_m", "termination_reason", "finished"}
        assert reward == pytest.approx(sum(info["reward_terms"].values()))
        assert info["reward_terms"]["time"] == pytest.approx(-env.config.reward.time * 50)
        total += reward
        if terminated or truncated:
            break
    assert truncated and not terminated and info["termination_reason"] == "time_limit"
    assert steps == 40 and info["race_time_ms"] == 2000
    assert info["progress_m"] > 10.0
    with pytest.raises(TmstateError, match="reset"):
        env.step(np.array([0.0, 1.0], np.float32))
    env.reset()
    assert env.state.race_time_ms == 0 and env.tracker.progress_m == pytest.approx(0.0, abs=1e-6)


def test_bad_actions_raise_action_errors():
    env = TMNFEnv(backend="sim")
    env.reset()
    with pytest.raises(ActionError):
        env.step(np.array([np.nan, 1.0]))
    with pytest.raises(ActionError):
        env.step(np.array([0.0, 2.0]))


def test_stuck_car_terminates_for_no_progress():
    env = TMNFEnv(backend="sim", termination={"no_progress_s": 2.0})
    env.reset()
    for _ in range(100):
        _, _, terminated, truncated, info = env.step(np.array([0.0, 0.0], np.float32))  # never moves
        if terminated or truncated:
            break
    assert terminated and info["termination_reason"] == "no_progress"


def test_controller_finishes_through_the_env():
    from tmstate.tools.demo import LineFollower

    env = TMNFEnv(backend="sim", map="sim_easy")
    env.reset(seed=0)
    controller = LineFollower(env.line)
    ret = 0.0
    while True:
        _, reward, terminated, truncated, info = env.step(controller.act(env.state, env.location))
        ret += reward
        if terminated or truncated:
            break
    assert terminated and info["finished"] and info["termination_reason"] == "finished"
    assert info["reward_terms"]["finish"] == env.config.reward.finish
    assert info["progress_m"] == pytest.approx(env.line.length_m, abs=1.0)
    c = env.config.reward
    expected = c.progress * info["progress_m"] - c.time * info["race_time_ms"] + c.finish
    assert ret == pytest.approx(expected, abs=1e-6)


def test_injected_backend_and_line():
    from tmstate.backends.sim.backend import SimBackend
    from tmstate.backends.sim.track import load_track

    line = load_track("sim_esses")
    backend = SimBackend(line, action_period_ms=20)
    env = TMNFEnv(backend=backend, line=line, action_period_ms=20)
    env.reset()
    env.step(np.array([0.0, 1.0], np.float32))
    assert env.backend is backend and env.state.race_time_ms == 20
    env.close()


# --- logs and the replay backend ------------------------------------------------------


@pytest.fixture(scope="module")
def driven_log(tmp_path_factory):
    """One finished sim episode on sim_easy, logged; with the rewards the env returned."""
    from tmstate.tools.demo import LineFollower

    log_dir = tmp_path_factory.mktemp("logs")
    env = TMNFEnv(backend="sim", map="sim_easy", log_dir=str(log_dir))
    env.reset(seed=0)
    controller = LineFollower(env.line)
    rewards, infos = [], []
    while True:
        _, reward, terminated, truncated, info = env.step(controller.act(env.state, env.location))
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            break
    env.close()
    return Path(info["log_path"]), np.array(rewards), infos


def test_every_episode_is_logged(driven_log):
    from tmstate.formats.log import read_episode

    path, rewards, infos = driven_log
    log = read_episode(path)
    assert log.steps == len(rewards) and len(log.states) == len(rewards) + 1
    assert log.metadata["map"] == "sim_easy" and log.metadata["backend"] == "sim"
    assert log.metadata["action_period_ms"] == 50
    np.testing.assert_allclose(sum(log.reward_terms.values()), rewards)
    assert log.states[-1].finished and log.terminated[-1] and log.metadata["reason"] == "finished"
    assert [s.race_time_ms for s in log.states[1:]] == [i["race_time_ms"] for i in infos]


def test_replay_of_a_log_gives_the_same_rewards(driven_log):
    path, rewards, _ = driven_log
    env = TMNFEnv(backend="replay", map="", backend_options={"log_path": str(path)})
    assert env.line.metadata.map_name == "sim_easy"
    env.reset()
    replayed = []
    while True:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())  # actions are ignored
        replayed.append(reward)
        if terminated or truncated:
            break
    assert info["termination_reason"] == "finished"
    np.testing.assert_allclose(replayed, rewards, rtol=0, atol=1e-9)


@pytest.mark.parametrize("obs_type", OBS_TYPES)
def test_checkers_pass_on_the_replay_backend(driven_log, obs_type):
    path, _, _ = driven_log
    env = TMNFEnv(backend="replay", map="sim_easy", backend_options={"log_path": str(path)},
                  observation={"type": obs_type, **SMALL_FRAMES}, render_mode="rgb_array")
    check_both(env)
    obs, _ = env.reset()
    if obs_type != "telemetry":
        frames = obs["frames"] if obs_type == "dict" else obs
        assert frames.std() > 0  # the replay has no frames of its own: rendered views stand in


@pytest.fixture(scope="module")
def hairpins_log(tmp_path_factory):
    """A finished sim_hairpins episode, logged, and its rewards."""
    from tmstate.tools.demo import LineFollower

    env = TMNFEnv(backend="sim", map="sim_hairpins", log_dir=str(tmp_path_factory.mktemp("hairpins")))
    env.reset(seed=0)
    controller = LineFollower(env.line)
    rewards = []
    while True:
        _, reward, terminated, truncated, info = env.step(controller.act(env.state, env.location))
        rewards.append(reward)
        if terminated or truncated:
            break
    env.close()
    assert info["finished"]
    return Path(info["log_path"]), np.array(rewards)


def test_replay_takes_the_line_from_the_log_by_default(hairpins_log):
    """Without map, a replay runs on the line its log names (it used to take sim_easy's and
    end off_line after a third of the run)."""
    path, rewards = hairpins_log
    env = TMNFEnv(backend="replay", backend_options={"log_path": str(path)})
    assert env.line.metadata.map_name == "sim_hairpins"
    env.reset()
    replayed = []
    while True:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        replayed.append(reward)
        if terminated or truncated:
            break
    env.close()
    assert info["termination_reason"] == "finished" and len(replayed) == len(rewards)
    np.testing.assert_allclose(replayed, rewards, rtol=0, atol=1e-9)
    same = TMNFEnv(backend="replay", map="reference_lines/sim_hairpins.npz", backend_options={"log_path": str(path)})
    assert same.line.metadata.map_name == "sim_hairpins"  # the same line by another name is fine
    same.close()


def test_replay_with_another_line_than_the_logs_is_an_error_naming_both(hairpins_log):
    path, _ = hairpins_log
    with pytest.raises(ConfigError, match=r"map 'sim_easy' is not the line the log was driven on \('sim_hairpins'\)"):
        TMNFEnv(backend="replay", map="sim_easy", backend_options={"log_path": str(path)})


def test_an_empty_map_on_the_real_game_says_what_to_set():
    with pytest.raises(ConfigError, match="map is empty: the tminterface backend needs"):
        TMNFEnv(backend="tminterface", backend_options={"port": 1})


def test_replay_needs_a_log_path():
    with pytest.raises(ConfigError, match="log_path"):
        TMNFEnv(backend="replay")


# --- the tminterface backend against the plugin in the AngelScript harness ------------


@pytest.mark.harness
def test_tminterface_backend_runs_whole_episodes_with_frames(tmp_path, requires_harness):
    """The real plugin (plugins/tmstate.as) in the harness: its point-mass car has
    checkpoints at 50 and 100 m and the finish at 150 m straight ahead of the start."""
    from tmstate.backends.tminterface import GameBackend
    from tmstate.link.harness import HarnessProcess
    from tmstate.core.reference import ReferenceLine
    from tmstate.core.state import forward_vector

    with HarnessProcess() as harness:
        probe = GameBackend(port=harness.port, timeout_s=5.0)
        start = probe.reset()
        probe.close()
        ahead = start.position + 150.0 * forward_vector(start.yaw, start.pitch)
        line_path = ReferenceLine.from_points([start.position, ahead], spacing_m=0.5).save(tmp_path / "harness.npz")
        env = TMNFEnv(backend="tminterface", map=str(line_path), render_mode="rgb_array", log_dir=str(tmp_path / "logs"),
                      backend_options={"port": harness.port, "timeout_s": 5.0},
                      observation={"type": "dict", "frame_source": "backend", "width": 64, "height": 48, "stack": 2})
        try:
            returns = []
            for _ in range(2):
                obs, info = env.reset()
                assert info["race_time_ms"] == 0 and env.observation_space.contains(obs)
                first_frame = obs["frames"][..., -1].copy()
                total, steps = 0.0, 0
                while True:
                    obs, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0], np.float32))
                    total += reward
                    steps += 1
                    assert env.observation_space.contains(obs)
                    if terminated or truncated:
                        break
                assert terminated and info["termination_reason"] == "finished"
                assert env.state.checkpoint_count == env.state.checkpoint_target == 3
                assert info["progress_m"] == pytest.approx(150.0, abs=0.5)
                assert info["race_time_ms"] % 10 == 0 and steps == -(-info["race_time_ms"] // 50)
                assert obs["frames"].std() > 0 and not np.array_equal(obs["frames"][..., -1], first_frame)
                returns.append(total)
            assert returns[0] == pytest.approx(returns[1])  # the rewind-based reset replays the same race
            frame = env.render()
            assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
            assert len(list((tmp_path / "logs").glob("*.npz"))) == 2
        finally:
            env.close()


def test_same_seed_and_actions_give_the_same_episode():
    def run(seed):
        env = TMNFEnv(backend="sim", map="sim_esses", observation={"type": "dict", **SMALL_FRAMES},
                      backend_options={"car": {"start_offset_m": 2.0, "start_yaw_rad": 0.1}})
        env.action_space.seed(123)
        obs, _ = env.reset(seed=seed)
        trace = [obs["telemetry"]]
        for _ in range(60):
            obs, reward, *_ = env.step(env.action_space.sample())
            trace.extend([obs["telemetry"], obs["frames"].astype(np.float32).ravel()[:500], np.float32([reward])])
        return np.concatenate([t.ravel() for t in trace])

    assert np.array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


# --- settings that do what they say ---------------------------------------------------


@pytest.mark.parametrize("camera_name", ["chase", "driver", "top"])
def test_observation_camera_drives_the_simulators_frames(camera_name):
    """observation.camera used to be ignored by the sim backend (only backend_options.camera_name worked)."""
    from tmstate.backends.sim.render import TrackRenderer

    env = TMNFEnv(backend="sim", map="sim_easy", observation={"type": "frames", "frame_source": "backend",
                                                              "camera": camera_name, "stack": 1, "grayscale": False})
    obs, _ = env.reset(seed=0)
    state = env.unwrapped.state
    env.close()
    renderer = TrackRenderer(env.line, env.backend.cars.corridor.width_m)
    views = {name: renderer.view(float(state.position[0]), float(state.position[2]), state.yaw, 64, 64, name)
             for name in ("chase", "driver", "top")}
    np.testing.assert_array_equal(obs, views[camera_name])
    assert all(not np.array_equal(obs, v) for name, v in views.items() if name != camera_name)


def test_the_old_camera_option_says_where_the_setting_is():
    with pytest.raises(ConfigError, match="observation.camera"):
        TMNFEnv(backend="sim", backend_options={"camera_name": "top"})


def teleport_run(resync: str, teleport_to: float) -> tuple[TMNFEnv, list[tuple[int, float, float]], float]:
    """sim_esses driven by the line follower; 2 s in, the car is moved 150 m ahead.

    Returns the env, (checkpoint count, progress reward, progress) per step after the
    teleport, and the progress just before it.
    """
    from tmstate.tools.demo import LineFollower

    env = TMNFEnv(backend="sim", map="sim_esses", progress={"resync": resync},
                  termination={"max_distance_m": 0.0, "no_progress_s": 0.0})
    env.reset(seed=0)
    controller = LineFollower(env.line)
    for _ in range(40):
        env.step(controller.act(env.state, env.location))
    before = env.tracker.progress_m
    env.backend.place(before + teleport_to, speed_mps=env.state.speed)
    after = []
    for _ in range(400):
        _, _, terminated, truncated, info = env.step(controller.act(env.state, env.location))
        after.append((env.state.checkpoint_count, info["reward_terms"]["progress"], info["progress_m"]))
        if terminated or truncated:
            break
    return env, after, before


def test_a_teleport_earns_nothing_until_the_next_checkpoint_then_the_skipped_metres_once():
    """Moved 150 m ahead, short of checkpoint 1 (197 m): nothing is paid while the game has
    not confirmed it; the step that passes it pays the skipped metres at once, and the
    episode pays each metre of the line once in total."""
    env, after, before = teleport_run("checkpoint", 150.0)
    checkpoint = env.line.metadata.checkpoints_m[0]
    assert before + 150.0 < checkpoint
    passed = next(i for i, (count, _, _) in enumerate(after) if count >= 1)
    assert passed > 5  # it drove a while on its own before reaching the checkpoint
    assert all(reward == 0.0 for _, reward, _ in after[:passed])
    assert after[passed - 1][2] == pytest.approx(before)
    jump = after[passed][1] / env.config.reward.progress
    assert jump > 150.0 and after[passed][2] == pytest.approx(checkpoint, abs=15.0)
    assert env.scorer.resyncs == 1 and env.scorer.resync_m > 150.0
    assert env.state.finished
    total = sum(reward for _, reward, _ in after) / env.config.reward.progress
    assert before + total == pytest.approx(env.line.length_m, abs=1e-6)
    # The same teleport with the resync off is never paid: the car drives to the finish unpaid.
    env, after, before = teleport_run("off", 150.0)
    assert env.state.finished and sum(reward for _, reward, _ in after) == 0.0


def first_observations(seed: int, mode: str = "uniform", count: int = 3) -> list[tuple[np.ndarray, dict]]:
    env = TMNFEnv(backend="sim", map="sim_esses", start={"mode": mode})
    out = [env.reset(seed=seed)]
    out += [env.reset() for _ in range(count - 1)]
    env.close()
    return out


def test_starts_spread_along_the_track_vary_with_the_seed_and_repeat_per_seed():
    a, b, c = first_observations(1), first_observations(1), first_observations(2)
    for (obs_a, info_a), (obs_b, info_b) in zip(a, b):
        assert np.array_equal(obs_a, obs_b) and info_a["progress_m"] == info_b["progress_m"]
    assert not np.array_equal(a[0][0], c[0][0])
    progress = [info["progress_m"] for _, info in a + c]
    assert len(set(progress)) == len(progress) and max(progress) > 50.0  # spread, not at the start
    assert all(info["race_time_ms"] == 0 for _, info in a)  # the race clock starts where the car starts
    line_start = first_observations(1, mode="line_start", count=2)
    assert all(info["progress_m"] == pytest.approx(0.0, abs=0.5) for _, info in line_start)


def test_a_spread_start_pays_progress_from_where_the_car_starts():
    from tmstate.tools.demo import LineFollower

    env = TMNFEnv(backend="sim", map="sim_esses", start={"mode": "uniform", "speed_mps": 0.0})
    _, info = env.reset(seed=3)
    start = info["progress_m"]
    assert 20.0 < start < 0.9 * env.line.length_m
    assert env.state.checkpoint_count == sum(cp < start for cp in env.line.metadata.checkpoints_m)
    controller = LineFollower(env.line)
    paid = 0.0
    while True:
        _, _, terminated, truncated, info = env.step(controller.act(env.state, env.location))
        paid += info["reward_terms"]["progress"]
        if terminated or truncated:
            break
    assert info["finished"] and env.scorer.resyncs == 0
    assert paid / env.config.reward.progress == pytest.approx(env.line.length_m - start, abs=1e-6)


def test_ended_mode_starts_near_where_episodes_ended():
    env = TMNFEnv(backend="sim", map="sim_esses", start={"mode": "ended", "ended_share": 1.0, "ended_back_m": 20.0})
    env.reset(seed=0)
    for _ in range(30):
        env.starts.record_end(400.0)
    starts = [env.reset()[1]["progress_m"] for _ in range(20)]
    assert all(375.0 <= s <= 405.0 for s in starts)  # 0-20 m before 400 m, plus the sideways offset's projection


def test_a_game_starts_from_the_saved_state_bank_next_to_its_line(tmp_path):
    """A backend without ``place`` (as the game) rewinds to the bank's state at or before the
    drawn arc length; the episode's time limit counts from that state's race time."""
    from tmstate.backends.base import Backend
    from tmstate.backends.sim.backend import SimBackend
    from tmstate.backends.sim.track import load_track
    from tmstate.core.reference import ReferenceLine
    from tmstate.errors import ReferenceLineError
    from tmstate.formats.starts import StartBank, bank_path

    class SavedStatesOnly(Backend):
        """The simulator seen the way the game is: reset, step, save and restore only."""

        def __init__(self, line):
            self.sim = SimBackend(line)
            self.restored = 0

        def reset(self, seed=None):
            return self.sim.reset(seed)

        def step(self, action):
            return self.sim.step(action)

        def save(self):
            return self.sim.save()

        def restore(self, snapshot):
            self.restored += 1
            return self.sim.restore(snapshot)

    line = load_track("sim_esses")
    line_path = line.save(tmp_path / "esses.npz")
    recorder = SimBackend(line)
    recorder.reset()
    bank = StartBank(metadata={"line": str(line_path)})
    for i, arc in enumerate((100.0, 250.0, 400.0)):
        recorder.place(arc, speed_mps=20.0)
        recorder.cars.ticks[0] = 1000 * (i + 1)  # as if driven there: race time 10, 20, 30 s
        bank.add(arc, 10_000 * (i + 1), recorder.save())
    bank.save(bank_path(line_path))
    assert bank_path(line_path).name == "esses.starts.npz"
    loaded = StartBank.load(bank_path(line_path))
    assert len(loaded) == 3 and loaded.at(260.0).arc_m == 250.0 and loaded.at(50.0) is None
    env = TMNFEnv(backend=SavedStatesOnly(ReferenceLine.load(line_path)), line=ReferenceLine.load(line_path),
                  start={"mode": "uniform"}, termination={"time_limit_s": 1.0, "no_progress_s": 0.0})
    seen = set()
    for seed in range(12):
        _, info = env.reset(seed=seed)
        steps = 0
        while True:
            _, _, terminated, truncated, step_info = env.step(np.array([0.0, 1.0], dtype=np.float32))
            steps += 1
            if terminated or truncated:
                break
        if info["race_time_ms"]:
            seen.add(info["race_time_ms"])
            assert step_info["termination_reason"] in ("time_limit", "off_line")
            if step_info["termination_reason"] == "time_limit":
                assert steps == 20  # 1 s from the saved state's race time, not from race time 0
    assert seen == {10_000, 20_000, 30_000} and env.backend.restored >= 3
    # A bank that grows while training: from an empty start, episodes driven from the start
    # line save a state every 100 m of credited progress; the next episodes can start there.
    from tmstate.tools.demo import LineFollower

    grown = line.save(tmp_path / "grow.npz")
    env = TMNFEnv(backend=SavedStatesOnly(line), line=ReferenceLine.load(grown),
                  start={"mode": "line_start", "bank_every_m": 100.0})
    controller = LineFollower(env.line)
    for _ in range(2):  # the second run finds the states already there and saves no more
        env.reset(seed=0)
        while True:
            _, _, terminated, truncated, _ = env.step(controller.act(env.state, env.location))
            if terminated or truncated:
                break
    env.close()
    bank = StartBank.load(bank_path(grown))
    assert [round(e.arc_m / 100.0) for e in bank.entries] == [1, 2, 3, 4, 5]
    assert all(abs(e.arc_m - 100.0 * round(e.arc_m / 100.0)) < 15.0 for e in bank.entries)
    env = TMNFEnv(backend=SavedStatesOnly(line), line=ReferenceLine.load(grown), start={"mode": "uniform"})
    starts = {env.reset(seed=seed)[1]["race_time_ms"] for seed in range(10)}
    assert len(starts) >= 3 and 0 in starts  # from those states (and the start line below the first)
    # No bank next to the line: the first reset says what is missing and how to make it.
    other = line.save(tmp_path / "nobank.npz")
    env = TMNFEnv(backend=SavedStatesOnly(line), line=ReferenceLine.load(other), start={"mode": "uniform"})
    with pytest.raises(ReferenceLineError, match="nobank.starts.npz.*save-states-every"):
        env.reset(seed=0)
    with pytest.raises(ConfigError, match="replay"):
        TMNFEnv(backend="replay", backend_options={"log_path": str(tmp_path / "none.npz")}, map="sim_esses",
                start={"mode": "uniform"})

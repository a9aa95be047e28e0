"""Ray RLlib: env runners over the recovering vector env, on a local multi-node Ray cluster.

Marker ``ray``: these need the ``ray`` extra (RLlib pins its own Gymnasium); scripts/test.sh
runs them in a venv of their own (``.venv-ray``). One cluster serves the whole module: a head
(the learner, no games) and two "nodes" on this machine (two raylets), each declaring one
``tmnf`` game resource and a marker resource naming it. It is started on 127.0.0.1 and shut
down at the end of the module.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

# Before Ray is imported (it reads this once): without it, ray.init(address="127.0.0.1:...")
# swaps in the machine's outward IP (Ray's resolve_ip_for_localhost), and the test cluster
# listens on loopback only.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

ray = pytest.importorskip("ray", reason="needs the [ray] extra (pip install -e '.[ray]')")
pytest.importorskip("ray.rllib", reason="needs the [ray] extra (pip install -e '.[ray]')")

from ray.cluster_utils import Cluster  # noqa: E402

from tmstate.errors import ConfigError  # noqa: E402
from tmstate.vector.rllib import (  # noqa: E402
    GameMetrics,
    PortClaim,
    PPOSettings,
    RunnerEnvConfig,
    build_runner_env,
    game_reports,
    ports_for_node,
    ppo_config,
    sub_env_configs,
)

REPO = Path(__file__).resolve().parent.parent
NODES = ("tmstate_node_a", "tmstate_node_b")
SHORT_EPISODES = {"termination": {"time_limit_s": 2.0}}  # 40 steps: episodes end within a batch
SMALL = dict(runners=2, envs_per_runner=1, rollout_steps=64, minibatch_size=64, num_epochs=1, hidden=(16, 16))


# --- without a cluster: where a runner's games are ---------------------------------------


def test_a_node_gets_the_ports_listed_for_any_of_its_keys_in_table_order() -> None:
    table = {"10.0.0.5": [8477, 8478], "tmnf_box3": [9000], "*": [8478, 7000]}
    assert ports_for_node(table, {"*", "10.0.0.5", "CPU"}) == [8477, 8478, 7000]
    assert ports_for_node(table, {"*", "tmnf_box3"}) == [9000, 8478, 7000]
    assert ports_for_node({"10.0.0.5": [1]}, {"*", "10.0.0.6"}) == []


def test_runners_on_one_node_claim_different_ports_and_a_closed_claim_frees_them(tmp_path: Path) -> None:
    first, second = PortClaim(tmp_path), PortClaim(tmp_path)
    assert first.claim([9001, 9002, 9003], 2, "node") == [9001, 9002]
    assert second.claim([9001, 9002, 9003], 1, "node") == [9003]
    third = PortClaim(tmp_path)
    with pytest.raises(ConfigError, match="needs 1 game"):
        third.claim([9001, 9002, 9003], 1, "node")
    assert third.ports == []
    first.release()
    assert third.claim([9001, 9002, 9003], 1, "node") == [9001]


def test_each_runner_gets_its_own_seeds_log_folders_and_share_of_the_maps(tmp_path: Path) -> None:
    settings = RunnerEnvConfig(env={"log_dir": str(tmp_path)}, maps=["sim_easy", "sim_esses", "sim_hairpins"], seed=7)
    runner1, runner2 = sub_env_configs(settings, 2, 1), sub_env_configs(settings, 2, 2)
    assert [c.backend_options["seed"] for c in runner1 + runner2] == [1007, 1008, 2007, 2008]
    assert [c.map for c in runner1 + runner2] == ["sim_hairpins", "sim_easy", "sim_esses", "sim_hairpins"]
    assert runner2[1].log_dir == str(tmp_path / "runner2" / "env1")


@pytest.mark.parametrize("bad", [{"backend": "wine"}, {"ports": {"*": ["8477"]}}, {"vector": {"restart_attempts": 0}},
                                 {"env": {"action_period_ms": 15}}])
def test_bad_runner_settings_are_refused_on_the_driver(bad: dict) -> None:
    with pytest.raises(ConfigError):
        RunnerEnvConfig(**bad)


def test_a_runner_without_a_free_game_on_its_node_says_what_to_do(tmp_path: Path) -> None:
    settings = RunnerEnvConfig(backend="harness", ports={"tmstate_node_a": [9100]})
    with pytest.raises(ConfigError, match="0 listed"):
        build_runner_env(settings, 1, runner=1, keys={"*", "tmstate_node_b"}, lock_dir=tmp_path)


# --- on a local Ray cluster -------------------------------------------------------------


TEST_TIME_LIMIT_S = 300


@contextlib.contextmanager
def time_limit(seconds: int, what: str):
    """Raise TimeoutError in the main thread if the block runs longer than ``seconds``."""

    def expire(signum, frame):
        raise TimeoutError(f"{what} ran longer than {seconds} s — see /tmp/ray/session_latest/logs")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def bounded_in_time():
    """Each test here is stopped with an error after TEST_TIME_LIMIT_S."""
    with time_limit(TEST_TIME_LIMIT_S, "a Ray test"):
        yield


@pytest.fixture(scope="module")
def cluster():
    """A head and two game nodes (two raylets) on 127.0.0.1, shut down after the module."""
    saved = os.environ.get("PYTHONPATH")
    # Workers import this checkout's package (and this module's callbacks by value).
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([saved] if saved else []))
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    head_args = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}
    with time_limit(TEST_TIME_LIMIT_S, "starting the Ray test cluster"):
        c = Cluster(initialize_head=True, head_node_args=head_args)
    try:
        with time_limit(TEST_TIME_LIMIT_S, "starting the Ray test cluster"):
            nodes = {
                name: c.add_node(num_cpus=2, node_ip_address="127.0.0.1", resources={"tmnf": 1, name: 1})
                for name in NODES
            }
            c.wait_for_nodes()
            ray.init(address=c.address, log_to_driver=False, _node_ip_address="127.0.0.1")
        yield {name: node.node_id for name, node in nodes.items()}
    finally:
        ray.shutdown()
        c.shutdown()
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(float(value))


def test_ppo_trains_with_two_env_runners_on_the_simulator_and_rllib_restarts_a_crashed_one(cluster: dict) -> None:
    algo = ppo_config(RunnerEnvConfig(env=SHORT_EPISODES), PPOSettings(**SMALL)).build_algo()
    try:
        results = [algo.train() for _ in range(2)]
        before = {r["runner"]: r for r in game_reports(algo)}
        os.kill(before[2]["pid"], signal.SIGKILL)  # an env runner's process crashes
        after_crash = [algo.train()]  # this iteration completes on the runner that is left
        for _ in range(20):  # RLlib probes and restarts the lost runner between iterations
            tolerance = after_crash[-1]["fault_tolerance"]
            if tolerance["num_remote_worker_restarts"] >= 1 and tolerance["num_healthy_workers"] == 2:
                break
            after_crash.append(algo.train())
        after = {r["runner"]: r["pid"] for r in game_reports(algo)}
    finally:
        algo.stop()
    last = results[-1]
    assert last["training_iteration"] == 2
    assert last["num_env_steps_sampled_lifetime"] >= 2 * 2 * 64
    runners = last["env_runners"]
    for key in ("episode_return_mean", "episode_len_mean", "tmstate/finish_rate", "tmstate/progress_m"):
        assert _finite(runners[key]), (key, runners.get(key))
    assert 0.0 <= runners["tmstate/finish_rate"] <= 1.0 and runners["tmstate/progress_m"] > 0.0
    assert runners["tmstate/games_lost_lifetime"] == 0
    learner = last["learners"]["default_policy"]
    assert _finite(learner["total_loss"]) and _finite(learner["vf_loss"])
    assert sorted(before) == [1, 2] and all(r["instances"] == ["sim sim_easy"] for r in before.values())
    assert before[1]["pid"] != before[2]["pid"]  # two processes sampled
    # the crash: training went on, and runner 2 came back as a new process
    assert after_crash[0]["training_iteration"] == 3 and after_crash[0]["env_runners"]["num_env_steps_sampled"] > 0
    tolerance = after_crash[-1]["fault_tolerance"]
    assert tolerance["num_healthy_workers"] == 2 and tolerance["num_remote_worker_restarts"] >= 1, tolerance
    assert after[1] == before[1]["pid"] and after[2] != before[2]["pid"]


def test_tmstate_train_engine_rllib_writes_progress_tensorboard_and_checkpoints(cluster: dict, tmp_path: Path) -> None:
    from tmstate.env.env import make_config
    from tmstate.tools.train import TrainConfig
    from tmstate.tools.train_rllib import RLlibOptions, train_rllib

    out = tmp_path / "run"
    config = TrainConfig(timesteps=200, envs=1, n_steps=64, batch_size=64, out=str(out), progress_bar=False,
                         env=make_config(**SHORT_EPISODES))
    summary = train_rllib(config, RLlibOptions(runners=2, checkpoint_every=1, num_epochs=1))
    rows = json.loads((out / "progress.json").read_text())
    assert [r["iteration"] for r in rows] == [1, 2] and summary["iterations"] == 2
    assert rows[-1]["timesteps"] == summary["timesteps"] >= 200
    assert all(_finite(r["episode_return_mean"]) and 0.0 <= r["finish_rate"] <= 1.0 for r in rows)
    assert rows[-1]["healthy_runners"] == 2 and rows[-1]["games_lost"] == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["iter_00001", "iter_00002"]
    assert any((out / "tb").rglob("events.out.tfevents.*"))
    assert len(json.loads((out / "runners.json").read_text())) == 2
    for checkpoint in (out / "checkpoint", out / "checkpoints" / "iter_00002"):
        meta = json.loads((checkpoint / "rllib_checkpoint.json").read_text())  # RLlib's own format
        assert meta["ray_version"] == ray.__version__ and (checkpoint / "learner_group" / "learner").is_dir()


class KillHarnessMidway(GameMetrics):
    """In env runner 1: SIGKILL the harness behind sub-env 0 at its 15th step (once)."""

    killed = False

    def on_episode_step(self, *, env_runner, env, episode, **kwargs) -> None:
        if env_runner.worker_index == 1 and not KillHarnessMidway.killed and len(episode) == 15:
            KillHarnessMidway.killed = True
            os.kill(env.unwrapped.instances[0].harness.pid, signal.SIGKILL)


def test_a_harness_killed_midway_truncates_its_episode_as_game_lost_and_the_iteration_completes(
    cluster: dict, tmp_path: Path
) -> None:
    from tmstate.formats.log import find_logs, read_episode

    settings = RunnerEnvConfig(backend="harness", env={**SHORT_EPISODES, "log_dir": str(tmp_path)},
                               vector={"restart_delay_s": 0.2})
    config = ppo_config(settings, PPOSettings(**SMALL)).callbacks(KillHarnessMidway)
    algo = config.build_algo()
    try:
        before = {r["runner"]: r for r in game_reports(algo)}
        result = algo.train()
        after = {r["runner"]: r for r in game_reports(algo)}
    finally:
        algo.stop()
    assert result["training_iteration"] == 1 and result["num_env_steps_sampled_lifetime"] >= 2 * 64
    assert result["env_runners"]["tmstate/games_lost_lifetime"] == 1
    # one runner per node (each node has one tmnf), each with a harness of its own
    assert {r["node_id"] for r in before.values()} == set(cluster.values())
    assert after[1]["restarts"] == [1] and after[2]["restarts"] == [0]
    for runner in (1, 2):
        logs = [read_episode(p) for p in find_logs([tmp_path / f"runner{runner}" / "env0"])]
        lost = [log for log in logs if log.reasons[-1] == "game_lost"]
        assert logs and all(log.steps > 0 for log in logs)
        if runner == 1:
            assert len(lost) == 1 and lost[0].truncated[-1] and not lost[0].terminated[-1]
            assert lost[0].steps == 15 and lost[0].metadata["reason"] == "game_lost"
        else:
            assert not lost


def test_each_runner_drives_the_game_of_its_own_node(cluster: dict) -> None:
    from tmstate.link.harness import HarnessProcess

    harnesses = {name: HarnessProcess().start() for name in NODES}
    try:
        ports = {name: [h.port] for name, h in harnesses.items()}
        settings = RunnerEnvConfig(backend="harness", ports=ports, env=SHORT_EPISODES)
        algo = ppo_config(settings, PPOSettings(**SMALL)).build_algo()
        try:
            result = algo.train()
            reports = game_reports(algo)
        finally:
            algo.stop()
        assert result["num_env_steps_sampled_lifetime"] >= 2 * 64
        assert len(reports) == 2
        for report in reports:
            (name,) = [n for n, node_id in cluster.items() if node_id == report["node_id"]]
            assert report["ports"] == ports[name], (report, ports)
        for name, harness in harnesses.items():
            handshakes = [line for line in harness.output if "handshake with" in line]
            assert handshakes, f"the harness of {name} was never driven: {list(harness.output)[-5:]}"
    finally:
        for harness in harnesses.values():
            harness.stop()

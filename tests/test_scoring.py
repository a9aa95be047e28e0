"""One scoring path: the env, ``rewards compare`` and ``line-from-replay --check`` give the same
per-step reward terms, on a simulated episode (with a respawn) and on a real ghost."""

from __future__ import annotations

from tmstate.tools.lines import line_from_ghost

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tmstate.core.progress import ProgressConfig
from tmstate.core.reward import RewardConfig
from tmstate.core.scoring import Scorer
from tmstate.core.state import GameState
from tmstate.core.termination import TerminationConfig
from tmstate.env.env import TMNFEnv
from tmstate.formats.log import read_episode, write_states_log
from tmstate.tools import compare

REWARD = RewardConfig(progress=0.01, time=0.0005, finish=1.0, speed=0.002, lateral=0.05)
NO_TERMINATION = TerminationConfig(no_progress_s=0, max_distance_m=0, time_limit_s=0)  # only the finish


def env_terms(log_path: Path, line, period_ms: int = 50) -> list[dict[str, float]]:
    """Per-step reward terms the env pays replaying ``log_path`` along ``line``."""
    env = TMNFEnv(backend="replay", line=line, backend_options={"log_path": str(log_path)},
                  reward=REWARD, termination=NO_TERMINATION, action_period_ms=period_ms)
    env.reset()
    out = []
    while True:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert reward == sum(info["reward_terms"].values())
        out.append(info["reward_terms"])
        if terminated or truncated:
            break
    env.close()
    return out


def compare_terms(log_path: Path, line_path: Path) -> list[dict[str, float]]:
    """Per-step reward terms ``tmstate rewards compare`` sums."""
    (episode,) = compare.load_episodes([str(log_path)], str(line_path))
    return [step.terms for step in compare.episode_steps(episode, REWARD, ProgressConfig())]


def check_terms(states: list[GameState], line) -> list[dict[str, float]]:
    """Per-step reward terms ``tmstate line-from-replay --check`` adds up."""
    from tmstate.tools.lines import score_states

    _, steps = score_states(states, line, None, REWARD)
    return [step.terms for step in steps]


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    """A finished sim episode on sim_easy (driven and logged by the env), the env's own terms,
    and the same states with a respawn put in: at 60 % of the line the car is sent back to where
    it was 70 m of line earlier (more than max_jump_m) and drives on from there."""
    from tmstate.tools.demo import LineFollower

    tmp = tmp_path_factory.mktemp("scoring")
    env = TMNFEnv(backend="sim", map="sim_easy", log_dir=str(tmp / "logs"), reward=REWARD)
    env.reset(seed=0)
    follower = LineFollower(env.line)
    online = []
    while True:
        _, _, terminated, truncated, info = env.step(follower.act(env.state, env.location))
        online.append(info["reward_terms"])
        if terminated or truncated:
            break
    env.close()
    line_path = env.line.save(tmp / "sim_easy.npz")
    log = read_episode(info["log_path"])
    states = log.states
    from tmstate.core.progress import ProgressTracker

    locate = ProgressTracker(env.line).locate
    arc = [locate(s.position).arc_length_m for s in states]
    k = next(i for i, a in enumerate(arc) if a >= 0.6 * env.line.length_m)
    back = k - max(i for i in range(k) if arc[i] <= arc[k] - 70.0)  # 70 m back: more than max_jump_m
    shift = states[k].race_time_ms - states[k - back].race_time_ms + 50
    again = []
    for s in states[k - back:]:
        s = s.copy()
        s.race_time_ms += shift
        s.respawn_count = 1
        again.append(s)
    respawned = states[:k + 1] + again
    respawn_log = write_states_log(respawned, tmp / "respawn.npz", {"action_period_ms": 50})
    return {"line": env.line, "line_path": line_path, "log": Path(info["log_path"]), "online": online,
            "states": states, "respawned": respawned, "respawn_log": respawn_log, "k": k}


def test_env_online_terms_are_what_compare_and_check_compute(sim_run):
    offline = compare_terms(sim_run["log"], sim_run["line_path"])
    checked = check_terms(sim_run["states"], sim_run["line"])
    assert len(sim_run["online"]) == len(offline) == len(checked) > 100
    assert sim_run["online"] == offline == checked


def test_three_paths_agree_with_a_respawn(sim_run):
    """Before the one Scorer, ``--check`` had no respawn rule: it refused the jump back and
    credited nothing for the rest of the run."""
    line, k = sim_run["line"], sim_run["k"]
    online = env_terms(sim_run["respawn_log"], line)
    offline = compare_terms(sim_run["respawn_log"], sim_run["line_path"])
    checked = check_terms(sim_run["respawned"], line)
    assert len(online) == len(offline) == len(checked) == len(sim_run["respawned"]) - 1
    assert online == offline == checked
    assert checked[k]["progress"] < -REWARD.progress * 60.0  # the respawn step: sent back, debited
    progress_m = sum(t["progress"] for t in checked) / REWARD.progress
    assert progress_m == pytest.approx(line.length_m, abs=1.0)


def test_check_line_credits_the_run_after_a_respawn(sim_run):
    from tmstate.tools.lines import check_line

    states = sim_run["respawned"]

    ghostlike = SimpleNamespace(path=Path("respawn.Replay.Gbx"), map_name="", map_uid="", sample_period_ms=50,
                                race_time_ms=states[-1].race_time_ms, states=lambda: states)  # what check_line reads
    figures = check_line(ghostlike, sim_run["line"])
    assert figures["final_progress_fraction"] == pytest.approx(1.0, abs=1e-3)
    assert figures["max_backward_m"] > ProgressConfig().max_jump_m  # the respawn sent it back, credited


def test_scorer_reset_credits_the_start_and_resets_respawns(sim_run):
    states = sim_run["respawned"]
    scorer = Scorer(sim_run["line"], REWARD)
    steps = scorer.run(states)
    assert [s.respawned for s in steps].count(True) == 1
    scorer.reset(states[-1])  # respawn_count 1 is now the episode's own: no respawn next step
    assert not scorer.step(states[-1], states[-1]).respawned
    assert scorer.progress_m == pytest.approx(sim_run["line"].length_m, abs=1.0)


@pytest.mark.realdata
def test_three_paths_agree_on_a_real_ghost(replays, tmp_path):
    from tmstate.formats.gbx import read_ghost

    path = next(p for p in replays if p.name.startswith("A01-Race_TAS"))
    ghost = read_ghost(path)
    line = line_from_ghost(ghost)
    line_path = line.save(tmp_path / "a01.npz")
    online = env_terms(path, line, ghost.sample_period_ms)
    offline = compare_terms(path, line_path)
    checked = check_terms(ghost.states(), line)
    assert len(online) == len(offline) == len(checked) == len(ghost.states()) - 1
    assert online == offline == checked
    assert np.isclose(sum(t["time"] for t in checked), -REWARD.time * ghost.race_time_ms)
    assert sum(t["finish"] for t in checked) == REWARD.finish

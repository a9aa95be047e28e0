"""Write failures (issue 10, defect 2) and the other ways a run could end in a traceback or
lose work: one rule for every file tmstate writes (tmstate.files), one line and exit status
2 in the CLI, an env whose logs cannot be written goes on; record-line keeps a drive whose
game died (defect 8); a game lost mid-episode in the single env (defect 13); small CLI gaps
(defect 14)."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import warnings

import numpy as np
import pytest

from tmstate import cli, errors, files


def one_line_exit_2(capsys, argv) -> str:
    status = cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# --- the rule in files.py ----------------------------------------------------------------


def test_a_folder_fifo_or_device_at_the_path_is_never_replaced(tmp_path):
    folder = tmp_path / "folder.png"
    folder.mkdir()
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for target, kind in ((folder, "folder"), (fifo, "pipe")):
        with pytest.raises(errors.FileWriteError, match=kind):
            files.atomic_write_bytes(target, b"data")
    assert folder.is_dir() and stat.S_ISFIFO(fifo.lstat().st_mode)
    if os.geteuid() == 0:  # as root a device node can be made (and -o /dev/full once replaced it)
        device = tmp_path / "full"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        with pytest.raises(errors.FileWriteError, match="device"):
            files.atomic_write_bytes(device, b"data")
        assert stat.S_ISCHR(device.lstat().st_mode)


def test_a_symlink_is_written_through_not_replaced(tmp_path):
    target = tmp_path / "real.npz"
    target.write_bytes(b"old")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    files.atomic_write_bytes(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_full_or_read_only_disk_is_one_line_naming_the_path_and_leaves_no_temp_file(tmp_path, monkeypatch, code):
    target = tmp_path / "out.npz"
    target.write_bytes(b"old")

    def failing_fsync(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "fsync", failing_fsync)
    with pytest.raises(errors.FileWriteError) as caught:
        files.atomic_write_bytes(target, b"new")
    assert str(target) in str(caught.value) and "\n" not in str(caught.value)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.npz"]


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temp_files_of_killed_writes_are_cleaned_on_the_next_write_to_the_folder(tmp_path):
    stale = tmp_path / f".episode.npz.pid{dead_pid()}.abc123.tmp"
    stale.write_bytes(b"half a file")
    live = tmp_path / f".other.npz.pid{os.getppid()}.def456.tmp"  # a writer that is still running
    live.write_bytes(b"being written")
    old_style = tmp_path / ".line.npz.x1y2z3.tmp"
    old_style.write_bytes(b"from an older tmstate")
    os.utime(old_style, (0, 0))
    files.atomic_write_bytes(tmp_path / "new.npz", b"data")
    assert not stale.exists() and not old_style.exists()
    assert live.exists() and (tmp_path / "new.npz").read_bytes() == b"data"


def test_a_real_killed_write_leaves_a_temp_file_that_the_next_write_removes(tmp_path):
    script = (
        "import os, sys, tmstate.files as f\n"
        "def die(fd): os._exit(9)\n"
        "f.os.fsync = die\n"
        f"f.atomic_write_bytes({str(tmp_path / 'a.npz')!r}, b'x' * 1000)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=False, cwd=os.getcwd())
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1
    files.atomic_write_bytes(tmp_path / "b.npz", b"data")
    assert not leftovers[0].exists()


# --- every -o/--out/--log in the CLI -----------------------------------------------------


@pytest.fixture
def a_line(tmp_path):
    from tmstate.core.reference import ReferenceLine

    return ReferenceLine.from_points([[0.0, 0.0, 0.0], [0.0, 0.0, 50.0], [20.0, 0.0, 80.0]]).save(tmp_path / "l.npz")


def test_plot_line_onto_a_folder_or_a_read_only_place(tmp_path, capsys, a_line):
    (tmp_path / "folder.png").mkdir()
    err = one_line_exit_2(capsys, ["plot-line", str(a_line), "-o", str(tmp_path / "folder.png")])
    assert "folder" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_exit_2(capsys, ["plot-line", str(a_line), "-o", str(blocker / "sub" / "p.png")])


def test_line_from_replay_output_and_log_checked_before_the_work(tmp_path, capsys, replays):
    (tmp_path / "dir.npz").mkdir()
    one_line_exit_2(capsys, ["line-from-replay", str(replays[0]), "-o", str(tmp_path / "dir.npz")])
    err = one_line_exit_2(capsys, ["line-from-replay", str(replays[0]), "-o", str(tmp_path / "ok.npz"),
                                   "--log", str(tmp_path / "dir.npz")])
    assert "log file" in err and not (tmp_path / "ok.npz").exists()


def test_rewards_compare_output_onto_a_folder(tmp_path, capsys, a_line):
    from test_log import write_episode

    _, log, _ = write_episode(tmp_path / "logs")
    (tmp_path / "out.png").mkdir()
    err = one_line_exit_2(capsys, ["rewards", "compare", str(log), "--line", str(a_line), "-o", str(tmp_path / "out.png")])
    assert "out.png" in err and "folder" in err


def test_demo_and_train_out_onto_a_file(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    err = one_line_exit_2(capsys, ["demo", "--out", str(blocker), "--no-video"])
    assert "--out folder" in err
    pytest.importorskip("stable_baselines3")
    one_line_exit_2(capsys, ["train", "--out", str(blocker), "--timesteps", "10"])


def test_an_os_error_no_check_foresaw_is_still_one_line(capsys, monkeypatch, a_line):
    from tmstate.tools import plot

    def broken(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error", "somewhere.png")

    monkeypatch.setattr(plot, "plot_line", broken)
    err = one_line_exit_2(capsys, ["plot-line", str(a_line)])
    assert "somewhere.png" in err and "Input/output" in err


# --- the env's logs ----------------------------------------------------------------------


def test_log_dir_is_checked_when_the_env_is_made(tmp_path):
    from tmstate.env.env import TMNFEnv

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for bad in (blocker, blocker / "logs"):
        with pytest.raises(errors.FileWriteError, match="log_dir"):
            TMNFEnv(backend="sim", map="sim_easy", log_dir=str(bad))


def run_episode(env, steps=5):
    env.reset(seed=0)
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0], np.float32))
        if terminated or truncated:
            return info
    return None


def test_a_log_that_cannot_be_written_is_reported_once_and_the_env_goes_on(tmp_path, monkeypatch):
    from tmstate.env.env import TMNFEnv

    env = TMNFEnv(backend="sim", map="sim_easy", log_dir=str(tmp_path / "logs"), termination={"time_limit_s": 0.2})

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", disk_full)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        infos = [run_episode(env) for _ in range(3)]
    assert [w.category for w in caught] == [errors.LogWriteWarning]  # once, not per episode
    assert "No space left" in str(caught[0].message)
    assert all(info is not None and "No space left" in info["log_error"] for info in infos)
    assert env.log_errors == 3
    monkeypatch.undo()
    info = run_episode(env)  # the disk has room again: logs are written again
    assert "log_path" in info and os.path.exists(info["log_path"])
    env.close()


# --- defect 13: a game lost mid-episode in the single env ------------------------------


class LosingBackend:
    """Wraps a sim backend; its step raises ``error`` once ``fail_at`` steps were taken."""

    def __init__(self, inner, fail_at: int, error: BaseException):
        self.inner, self.fail_at, self.error, self.steps = inner, fail_at, error, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def reset(self, seed=None):
        self.steps = 0
        return self.inner.reset(seed)

    def step(self, action):
        self.steps += 1
        if self.steps == self.fail_at:
            raise self.error
        return self.inner.step(action)


@pytest.mark.parametrize("error_name", ["DisconnectedError", "BridgeTimeoutError"])
def test_a_game_lost_mid_episode_is_logged_as_game_lost_with_the_last_step_truncated(tmp_path, error_name):
    from tmstate import errors
    from tmstate.backends.sim.backend import SimBackend
    from tmstate.env.env import TMNFEnv
    from tmstate.formats.log import read_episode

    error = getattr(errors, error_name)("the game went away")
    backend = LosingBackend(SimBackend("sim_easy"), fail_at=4, error=error)
    env = TMNFEnv(backend=backend, map="sim_easy", log_dir=str(tmp_path / "logs"))
    env.reset(seed=0)
    for _ in range(3):
        env.step(np.array([0.0, 1.0], np.float32))
    with pytest.raises(type(error)):
        env.step(np.array([0.0, 1.0], np.float32))
    env.reset(seed=0)  # the next reset works (and, after a timeout, ends the cut episode)
    logs = sorted((tmp_path / "logs").glob("*.npz"))
    assert len(logs) == 1
    log = read_episode(logs[0])
    assert log.steps == 3 and log.metadata["reason"] == "game_lost"
    assert bool(log.truncated[-1]) and log.reasons[-1] == "game_lost"
    env.close()


def test_a_restart_failing_with_a_non_network_error_is_game_lost_in_the_vector_env(monkeypatch):
    from tmstate.errors import DisconnectedError, GameLostError
    from tmstate.vector import env as vector

    calls = {"n": 0}

    class Flaky(vector.GameInstance):
        def make_env(self):
            from tmstate.env.env import TMNFEnv

            calls["n"] += 1
            if calls["n"] == 1:
                return TMNFEnv(backend=LosingBackend(__import__("tmstate.backends.sim.backend", fromlist=["x"]).SimBackend("sim_easy"),
                                                     fail_at=2, error=DisconnectedError("gone")), map="sim_easy")
            raise FileNotFoundError(2, "No such file or directory", "plugins/harness/build/tmstate-harness")

        def recover(self):
            pass

        def game_alive(self):
            return False

        def describe(self):
            return "flaky"

    env = vector.TMNFVectorEnv([Flaky()], vector.VectorConfig(restart_attempts=2, restart_delay_s=0.01, parallel=False))
    env.reset(seed=0)
    env.step(np.zeros((1, 2), np.float32))
    with pytest.raises(GameLostError, match="FileNotFoundError"):
        env.step(np.zeros((1, 2), np.float32))
    env.close()


# --- defect 14: small CLI gaps -----------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["bench", "bridge", "--steps", "0"],
    ["bench", "bridge", "--steps", "-5"],
    ["demo", "--seed", "-1"],
    ["train", "--seed", "-1"],
    ["harness-demo", "--steps", "0"],
    ["record-line", "-o", "x.npz", "--port", "70000"],
    ["launch", "-n", "0", "--dry-run"],
])
def test_bad_numbers_on_the_command_line_are_refused_up_front(capsys, argv):
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "expected" in err or "must be" in err


def test_run_demo_refuses_a_negative_seed():
    from tmstate.errors import ConfigError
    from tmstate.tools.demo import run_demo

    with pytest.raises(ConfigError, match="seed"):
        run_demo("sim_easy", None, seed=-1, video=False)


# --- defect 12: tampered pid files -------------------------------------------------------


@pytest.mark.parametrize("content", [
    '{"version": 1, "instances": [{}]}',
    '{"version": 1, "instances": [{"index": 0, "port": 8477}]}',
    '{"version": 1, "instances": [{"index": "0", "port": 8477, "marker": "abc"}]}',
    '{"version": 1, "instances": [{"index": 0, "port": 8477, "marker": 5}]}',
    '{"version": 1, "instances": [{"index": 0, "port": 99999, "marker": "abc"}]}',
    '{"version": 1, "instances": [{"index": 0, "port": 8477, "marker": ""}]}',
    '{"version": 1, "instances": 5}',
    '{"version": 1, "instances": [5]}',
    '[1, 2]',
    '{"version": 1, "instances": [{"index": 0, "port": 8477, "marker": "abc", "pid": "x"}]}',
])
def test_a_tampered_pid_file_makes_launch_stop_a_one_line_error(tmp_path, capsys, content):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "instances.json").write_text(content)
    config = tmp_path / "launch.toml"
    config.write_text(f'[launch]\nrun_dir = "{run_dir}"\n')
    err = one_line_exit_2(capsys, ["launch", "--stop", "--config", str(config)])
    assert "instances.json" in err
    (run_dir / "instances.json").write_bytes(b"\xff\xfe not utf-8")
    one_line_exit_2(capsys, ["launch", "--stop", "--config", str(config)])

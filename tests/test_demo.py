"""``tmstate demo``: the line-following controller finishes every shipped track; outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tmstate.tools.demo import run_demo
from tmstate.backends.sim.track import load_track, track_names


@pytest.mark.parametrize("track", track_names())
def test_controller_finishes_every_shipped_track(track):
    result = run_demo(track, None, video=False)
    assert result.finished and result.termination_reason == "finished"
    line = load_track(track)
    # Plausible racing: averaging between 15 and 60 m/s along the line.
    average = line.length_m / (result.race_time_ms / 1000.0)
    assert 15.0 < average < 60.0
    assert result.episode_return > 0
    assert np.linalg.norm(result.positions[-1] - line.points[-1]) < 5.0


def test_demo_command_writes_log_summary_and_gif(tmp_path, capsys):
    import cv2
    import imageio.v3 as iio

    from tmstate.cli import main
    from tmstate.formats.log import read_episode

    out = tmp_path / "demo"
    assert main(["demo", "--track", "sim_easy", "--out", str(out), "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "finished" in printed and "race time" in printed and "not TMNF physics" in printed
    (log_path,) = (out / "logs").glob("*.npz")
    log = read_episode(log_path)
    assert log.states[-1].finished
    race_time = log.states[-1].race_time_ms
    assert f"race time {race_time / 1000:.2f} s" in printed
    summary = cv2.imread(str(out / "summary.png"))
    assert summary is not None and summary.shape[0] > 400 and summary.shape[1] > 1000
    frames = iio.imread(out / "demo.gif", index=None)
    assert frames.shape[0] == log.steps // 2 + 1 and frames.shape[1:] == (160, 240, 3)
    assert frames[0].std() > 0 and not np.array_equal(frames[0], frames[-1])


def test_demo_without_video_writes_no_gif(tmp_path):
    result = run_demo("sim_easy", tmp_path, video=False)
    assert result.video_path is None and not (tmp_path / "demo.gif").exists()
    assert result.summary_path == tmp_path / "summary.png" and result.summary_path.stat().st_size > 0


def test_the_map_title_is_wrapped_so_a_long_track_path_fits():
    from tmstate.tools.demo import title_text

    long = "/home/someone/projects/tmstate/reference_lines/" + "a_very_long_map_name_" * 4 + ".npz"
    lines = title_text(long, "finished in 9.37 s").split("\n")
    assert all(len(line) <= 50 for line in lines) and len(lines) >= 3
    assert "".join(lines[:-1]) == Path(long).name and "/home" not in "".join(lines)
    assert title_text("sim_easy", "finished in 9.37 s") == "sim_easy\n(simulator, not TMNF physics): finished in 9.37 s"

"""record-line: the recorder's rules, and a full recording through the plugin harness."""

from __future__ import annotations

from tmstate.tools.lines import line_from_ghost

import numpy as np
import pytest

from tmstate import cli
from tmstate.errors import TmstateError
from tmstate.core.progress import ProgressTracker
from tmstate.tools.record import LineRecorder
from tmstate.core.reference import ReferenceLine
from tmstate.core.state import GameState


def at(t: int, z: float, *, cp: int = 0, respawns: int = 0, finished: bool = False) -> GameState:
    return GameState(race_time_ms=t, position=np.array([0.0, 0.0, z]), checkpoint_count=cp,
                     respawn_count=respawns, finished=finished)


def test_countdown_restart_respawn_and_finish():
    rec = LineRecorder()
    assert not rec.add(at(-500, -3.0))  # countdown: ignored
    for i in range(5):
        rec.add(at(100 * i, 2.0 * i))
    rec.add(at(0, 0.0))  # restart: start over
    assert rec.restarts == 1 and len(rec.positions) == 1
    for i in range(1, 11):
        rec.add(at(100 * i, 3.0 * i, cp=1 if i >= 5 else 0))
    assert rec.checkpoint_indices == [5]
    rec.add(at(1100, 33.0, cp=1))
    rec.add(at(1200, 15.0, cp=1, respawns=1))  # back at the checkpoint (z = 15)
    assert rec.respawns == 1
    assert [p[2] for p in rec.positions] == [0, 3, 6, 9, 12, 15, 15]
    assert rec.distance_m == pytest.approx(15.0)
    for i, z in enumerate([18.0, 21.0, 24.0]):
        done = rec.add(at(1300 + 100 * i, z, cp=2 if z == 24.0 else 1, finished=z == 24.0))
    assert done and rec.finished
    line = rec.line(map_name="test", spacing_m=0.5)
    assert line.length_m == pytest.approx(24.0)
    assert line.metadata.source == "recorded" and line.metadata.map_name == "test"
    assert line.metadata.checkpoints_m == pytest.approx((15.0,))  # the finish (24 m) is the line's end
    assert line.metadata.checkpoint_source == "recorded"


def test_nothing_recorded_is_an_error():
    rec = LineRecorder()
    rec.add(at(-100, 0.0))
    with pytest.raises(TmstateError, match="fewer than 2"):
        rec.line()


def write_states_csv(states: list[GameState], path) -> None:
    rows = ["race_time_ms,x,y,z,vx,vy,vz,yaw,pitch,roll,speed_kmh,checkpoint_count,finished,checkpoint_target"]
    for s in states:
        rows.append(",".join(str(v) for v in (
            s.race_time_ms, *s.position.tolist(), *s.velocity.tolist(), s.yaw, s.pitch, s.roll,
            s.display_speed_kmh, s.checkpoint_count, int(s.finished), s.checkpoint_target)))
    path.write_text("\n".join(rows) + "\n")


@pytest.mark.harness
def test_record_line_through_the_harness(realdata, tmp_path, capsys, requires_harness):
    """A real ghost played back by the harness, recorded in observe mode, matches the ghost."""
    from tmstate.formats.gbx import read_ghost
    from tmstate.link.harness import HarnessProcess

    ghost = read_ghost(realdata / "replays" / "A05-Race_TAS_00_15_72.Replay.Gbx")
    csv = tmp_path / "A05.csv"
    write_states_csv(ghost.states(), csv)
    out = tmp_path / "lines" / "A05.npz"
    with HarnessProcess(states=csv, realtime=True) as harness:  # at the game's pace, as a person drives
        assert cli.main(["record-line", "-o", str(out), "--port", str(harness.port), "--map", "A05-Race",
                         "--save-states-every", "200"]) == 0
    printed = capsys.readouterr().out
    assert "finished at 15.72 s" in printed and "A05.starts.npz" in printed
    recorded = ReferenceLine.load(out)
    reference = line_from_ghost(ghost)
    assert recorded.metadata.map_name == "A05-Race" and recorded.metadata.source == "recorded"
    assert recorded.length_m == pytest.approx(reference.length_m, rel=0.01)
    tracker = ProgressTracker(reference)
    worst = max(tracker.locate(p).distance_m for p in recorded.points[::10])
    assert worst < 0.5
    assert len(recorded.metadata.checkpoints_m) == len(ghost.checkpoint_times_ms) - 1  # the last is the finish
    # The states file changes checkpoint_count at the first sample after the checkpoint: the
    # recorded marks may lag by up to one sample period of travel.
    lag = max(s.speed for s in ghost.states()) * ghost.sample_period_ms / 1000.0
    assert np.allclose(recorded.metadata.checkpoints_m, reference.metadata.checkpoints_m, atol=lag)
    # The start bank next to the line: a saved state about every 200 m, in order along the line,
    # each a real save-state blob taken while observing.
    from tmstate.formats.starts import StartBank

    bank = StartBank.load(out.parent / "A05.starts.npz")
    arcs = [e.arc_m for e in bank.entries]
    assert len(bank) == int(recorded.length_m // 200) or len(bank) == int(recorded.length_m // 200) - 1
    assert np.all(np.diff(arcs) > 150.0) and arcs[0] == pytest.approx(200.0, abs=lag + 5.0)
    assert all(len(e.blob) > 0 for e in bank.entries) and np.all(np.diff([e.race_time_ms for e in bank.entries]) > 0)
    assert bank.metadata["line"] == str(out)

"""The game link against the harness's evidence-based model of TMInterface (plugins/API.md).

Each test pins one behaviour the real game has and an earlier model did not: TMNF's on/off
acceleration and the sign of TMInterface's analog Gas, the two steering modes, pausing at
game speeds 1/10/100, the finish in both callback orders, a 3-lap map, variables that
persist between sessions, the input-speed rule and the map identity. Where a test could
pass for the wrong reason, a deliberately broken copy of the plugin shows that it fails.
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tmstate.core.state import Action
from tmstate.errors import BridgeTimeoutError
from tmstate.link import protocol as p
from tmstate.link.bridge import Bridge
from tmstate.link.harness import PLUGIN_PATH, HarnessProcess, angelscript_header, build_harness

pytestmark = pytest.mark.skipif(
    angelscript_header() is None, reason="angelscript-dev is not installed (scripts/test.sh installs it)"
)

PLUGIN_SOURCE = PLUGIN_PATH.read_text(encoding="utf-8")


@contextmanager
def link(*args: str, plugin: Path | None = None, config: tuple[str, ...] = ()) -> Iterator[Bridge]:
    """A harness with these options and a connected bridge (BYE and stop on exit)."""
    with HarnessProcess(plugin=plugin, extra_args=list(args), extra_config=config) as h:
        bridge = Bridge(port=h.port, timeout_s=10)
        bridge.connect()
        try:
            yield bridge
        finally:
            bridge.close()


def broken_plugin(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the plugin with one line changed (the change must apply)."""
    assert PLUGIN_SOURCE.count(old) == 1, f"the plugin no longer contains {old!r}"
    path = tmp_path / "tmstate_broken.as"
    path.write_text(PLUGIN_SOURCE.replace(old, new), encoding="utf-8")
    return path


def drive(bridge: Bridge, action: Action, steps: int):
    """The STATEs after ``steps`` identical actions from race time 0."""
    bridge.restart()
    return [bridge.act(action) for _ in range(steps)]


# --- inputs ---------------------------------------------------------------------------


def test_gas_accelerates_forward_and_brake_slows_as_tmnf_takes_them():
    with link() as bridge:
        states = drive(bridge, Action(gas=1.0), 10)
        assert states[-1].position[2] > states[0].position[2] + 1.0  # forward = +z at start yaw 0
        assert states[-1].speed > states[0].speed > 0
        assert (states[-1].gas, states[-1].brake) == (1.0, 0.0)  # STATE: accelerate in force
        braked = [bridge.act(Action(brake=True)) for _ in range(3)]
        assert braked[-1].speed < states[-1].speed
        assert (braked[-1].gas, braked[-1].brake) == (0.0, 1.0)


def test_gas_threshold_is_tmnf_19661_and_acceleration_is_on_off():
    with link() as bridge:
        below = drive(bridge, Action(gas=(p.GAS_ON - 1) / 65536), 5)
        assert below[-1].speed == 0.0 and below[-1].gas == 0.0  # 30 % is the cut: the car coasts
        at = drive(bridge, Action(gas=p.GAS_ON / 65536), 5)
        full = drive(bridge, Action(gas=1.0), 5)
        assert at[-1].gas == 1.0
        assert at[-1].speed == pytest.approx(full[-1].speed)  # no stronger at full gas: on/off


def test_positive_analog_gas_brakes_in_the_model(tmp_path):
    """The old plugin's way (SetInputState(Gas, +gas)) must not move the car: TMInterface's
    analog Gas accelerates only at <= -19661 and brakes at >= 19661."""
    plugin = broken_plugin(
        tmp_path,
        "sim.SetInputState(InputType::Up, accelerate ? 1 : 0);",
        "sim.SetInputState(InputType::Gas, accelerate ? 65536 : 0);",
    )
    with link(plugin=plugin) as bridge:
        states = drive(bridge, Action(gas=1.0), 10)
        assert states[-1].speed == 0.0
        assert (states[-1].gas, states[-1].brake) == (0.0, 1.0)  # the STATE says: braking


def test_steering_analog_by_default_and_left_right_keys_in_binary_mode():
    with link() as bridge:
        half = drive(bridge, Action(steer=0.5, gas=1.0), 20)
        full = drive(bridge, Action(steer=1.0, gas=1.0), 20)
        assert half[-1].steer == 0.5 and 0 < half[-1].yaw < full[-1].yaw  # right = yaw grows
        left = drive(bridge, Action(steer=-1.0, gas=1.0), 20)
        assert left[-1].yaw == pytest.approx(-full[-1].yaw)
        bridge.set_steer_mode(True)
        keyed = drive(bridge, Action(steer=0.5, gas=1.0), 20)
        assert keyed[-1].steer == 1.0 and keyed[-1].yaw == pytest.approx(full[-1].yaw)  # Right key held
        small = drive(bridge, Action(steer=0.3, gas=1.0), 20)
        assert small[-1].steer == 0.0 and small[-1].yaw == 0.0  # below half: no key


def test_analog_steer_ignored_without_a_bound_device_binary_mode_still_steers():
    with link("--fault", "analog-steer-ignored") as bridge:
        analog = drive(bridge, Action(steer=1.0, gas=1.0), 20)
        assert analog[-1].yaw == 0.0
        bridge.set_steer_mode(True)
        keyed = drive(bridge, Action(steer=1.0, gas=1.0), 20)
        assert keyed[-1].yaw > 0.05


def test_game_speed_above_100_is_refused_with_the_reason():
    with link() as bridge:
        with pytest.raises(Exception, match="drop inputs"):
            bridge._request(p.SetSpeed(101.0), None)
        bridge.set_speed(100.0)
        assert drive(bridge, Action(gas=1.0), 3)[-1].gas == 1.0


# --- pausing at speed -----------------------------------------------------------------


def frame_stamp(frame) -> int:
    """The race time the harness stamped into a frame (plugins/harness/README.md)."""
    return struct.unpack("<i", bytes(int(frame[0, i, 0]) for i in range(4)))[0]


def paired_run(bridge: Bridge, speed: float, steps: int) -> list[tuple[int, int]]:
    """(STATE race time, its FRAME's stamp) for ``steps`` steps with auto frames at ``speed``."""
    bridge.set_auto_frame(64, 48)
    bridge.set_speed(speed)
    first = bridge.restart()
    pairs = [(first.race_time_ms, frame_stamp(bridge.last_frame))]
    for _ in range(steps):
        seq = bridge.last_seq
        state = bridge.act(Action(gas=1.0))
        assert bridge.last_seq == seq + 1, "a STATE slipped in between two steps"
        pairs.append((state.race_time_ms, frame_stamp(bridge.last_frame)))
    return pairs


@pytest.mark.parametrize("speed", [1.0, 10.0, 100.0])
def test_every_state_is_followed_by_its_frame_and_the_next_action_period(speed):
    with link() as bridge:
        pairs = paired_run(bridge, speed, 12)
    assert [t for t, _ in pairs] == [50 * i for i in range(len(pairs))]
    assert all(t == stamp for t, stamp in pairs), pairs


@pytest.mark.parametrize("speed", [10.0, 100.0])
def test_without_the_rewind_pause_a_state_slips_in_at_speed(tmp_path, speed):
    """The harness runs N ticks per frame at speed N and SetSpeed(0) waits for them: a
    plugin that only calls SetSpeed(0) lets more sync ticks run before the FRAME."""
    plugin = broken_plugin(tmp_path, "    sim.RewindToState(sim.SaveState());\n", "")
    with link(plugin=plugin) as bridge:
        with pytest.raises(AssertionError, match="slipped in"):
            paired_run(bridge, speed, 4)


# --- finish, checkpoints, laps --------------------------------------------------------


def run_to_finish(bridge: Bridge, limit: int = 400) -> list:
    states = [bridge.restart()]
    while not states[-1].finished and len(states) < limit:
        states.append(bridge.act(Action(gas=1.0)))
    return states


@pytest.mark.parametrize("order", ["before", "after"])
@pytest.mark.parametrize("prevent", [True, False])
def test_finish_state_exactly_once_in_both_callback_orders(order, prevent):
    with link("--checkpoint-order", order) as bridge:
        bridge.prevent_finish(prevent)
        states = run_to_finish(bridge)
        final = states[-1]
        assert final.finished, f"no finish STATE (order {order}, prevent {prevent})"
        assert final.checkpoint_count == final.checkpoint_target == 3
        assert sum(s.finished for s in states) == 1
        # Let the game run on unobserved (a raw ACTION): no second finish STATE follows.
        bridge._send(p.encode_action(0, 65536, 0))
        bridge._awaiting_action = False
        with pytest.raises(BridgeTimeoutError):
            bridge.next_state(timeout_s=0.5)


def test_without_the_finish_latch_prevent_finish_hides_the_finish(tmp_path):
    """OnCheckpointCountChanged before OnRunStep plus PreventSimulationFinish: reading only
    RaceFinished in OnRunStep never sees the finish (the model can fail the plugin)."""
    plugin = broken_plugin(
        tmp_path, "return gFinishLatched || sim.PlayerInfo.RaceFinished;", "return sim.PlayerInfo.RaceFinished;"
    )
    with link("--checkpoint-order", "before", plugin=plugin) as bridge:
        bridge.prevent_finish(True)
        states = run_to_finish(bridge, limit=150)
    assert not any(s.finished for s in states)
    assert states[-1].checkpoint_count == 3  # past the finish line, never reported


def test_three_lap_map_counts_checkpoints_laps_and_finishes_once():
    with link("--laps", "3") as bridge:
        states = run_to_finish(bridge, limit=1000)
    final = states[-1]
    assert final.finished and final.lap_count == 3
    assert {s.checkpoint_target for s in states} == {9}  # 3 planes per lap x 3 laps, from race time 0
    counts = [s.checkpoint_count for s in states]
    assert counts == sorted(counts) and counts[-1] == 9
    assert sum(s.finished for s in states) == 1
    laps = [s.lap_count for s in states]
    assert laps == sorted(laps) and set(laps) == {0, 1, 2, 3}
    for s in states:  # a lap is done exactly when all 3 of its checkpoints are
        assert s.lap_count == s.checkpoint_count // 3


# --- persisted variables, map identity -------------------------------------------------


def test_stale_port_and_bind_from_builtin_txt_never_win(tmp_path):
    """builtin.txt keeps variables between sessions; a stale unbindable address and port from
    an earlier session must not decide where the plugin listens (the launcher's
    tmstate_listen does), and without any setting it listens on the defaults."""
    builtin = tmp_path / "builtin.txt"
    stale = 'set tmstate_listen "10.254.254.254:1"\nset tmstate_port "1"\nset tmstate_bind "10.254.254.254"\n'
    builtin.write_text(stale, encoding="utf-8")
    with HarnessProcess(extra_args=["--persist", str(builtin)]) as h:
        _hello(h.port)
        log = "\n".join(h.output)
    assert f"listening on 127.0.0.1:{h.port} (address and port from tmstate_listen" in log
    saved = builtin.read_text(encoding="utf-8")  # the model saves the session's values on exit
    assert f'set tmstate_listen "127.0.0.1:{h.port}"' in saved
    builtin.write_text(stale, encoding="utf-8")
    # No configstring at all: the defaults, never the stale values (8477 may be taken on a
    # busy machine, so the log line, "listening on" or "cannot listen on", is what counts).
    cmd = [str(build_harness()), "--plugin", str(PLUGIN_PATH), "--persist", str(builtin)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = next((ln for ln in proc.stderr if "tmstate: " in ln and "listen" in ln), "")
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()
    assert "127.0.0.1:8477 (port: default or tmstate_port 8477, address: default, tmstate_bind not set" in line


def _hello(port: int) -> None:
    bridge = Bridge(port=port, timeout_s=5)
    bridge.connect()
    bridge.close()


def test_map_identity_from_get_current_challenge():
    with link("--map-uid", "Abc123Uid") as bridge:
        info = bridge.get_map()
    assert (info.uid, info.name) == ("Abc123Uid", "tmstate harness straight")


# --- angles ---------------------------------------------------------------------------


def test_mixed_yaw_pitch_roll_decompose_as_tminterface_quat_to_ypw(tmp_path):
    """A car at yaw 0.7, pitch 0.2, roll -0.1: the plugin's STATE (GetYawPitchRoll) and
    tminterface's quat_to_ypw on the save state's rotation matrix agree on all three."""
    import numpy as np
    from tminterface.util import mat3_to_quat, quat_to_ypw

    from tmstate.core.state import decode_sim_state

    states = tmp_path / "tilted.csv"
    states.write_text(
        "race_time_ms,x,y,z,yaw,pitch,roll\n0,10,5,20,0.7,0.2,-0.1\n10000,10,5,20,0.7,0.2,-0.1\n", encoding="utf-8"
    )
    with HarnessProcess(states=states) as h:
        bridge = Bridge(port=h.port, timeout_s=10)
        bridge.connect()
        state = bridge.restart()
        blob = bridge.save_state().blob
        bridge.close()
    r = decode_sim_state(blob).dyna.current_state.rotation
    rotation = np.array([[r[i, j] for j in range(3)] for i in range(3)], dtype=np.float64)
    game = quat_to_ypw(mat3_to_quat(rotation))
    assert game == pytest.approx([0.7, 0.2, -0.1], abs=2e-6)
    assert (state.yaw, state.pitch, state.roll) == pytest.approx(tuple(game), abs=2e-6)


# --- the right map --------------------------------------------------------------------


def _line(tmp_path: Path, start, uid: str = "", name: str = "harness", checkpoints=()) -> Path:
    import numpy as np

    from tmstate.core.reference import LineMetadata, ReferenceLine

    start = np.asarray(start, dtype=float)
    points = [start, start + [0.0, 0.0, 150.0]]
    line = ReferenceLine.from_points(points, spacing_m=0.5)
    line.metadata = LineMetadata(map_name=name, map_uid=uid, checkpoints_m=tuple(checkpoints))
    return line.save(tmp_path / f"{name}.npz")


def _env(h: HarnessProcess, line: Path, **backend):
    from tmstate.env.env import TMNFEnv

    return TMNFEnv(backend="tminterface", map=str(line), backend_options={"port": h.port, "timeout_s": 10.0, **backend})


def test_a_line_for_another_map_is_refused_by_uid_or_start_position(tmp_path):
    from tmstate.errors import MapMismatchError

    start = (100.0, 10.0, 200.0)  # the harness's default start
    with HarnessProcess(extra_args=["--map-uid", "UidA"]) as h:
        for line in (_line(tmp_path, start, "UidA", "a"), _line(tmp_path, start, "", "b")):
            env = _env(h, line)
            try:
                env.reset()  # the same uid, or no uid and the car at the line's start
            finally:
                env.close()
        env = _env(h, _line(tmp_path, start, "UidB", "c"))
        with pytest.raises(MapMismatchError) as info:
            env.reset()
        env.close()
        text = str(info.value)
        assert "\n" not in text and "c.npz" in text and "UidB" in text and "UidA" in text
        env = _env(h, _line(tmp_path, (400.0, 10.0, 200.0), "", "far"))
        with pytest.raises(MapMismatchError, match=r"starts 300 m from the start of reference line .*far\.npz"):
            env.reset()
        env.close()


def test_without_a_uid_the_first_checkpoint_must_be_where_the_line_has_it(tmp_path):
    """Same start, other map: the harness's first checkpoint is 50 m ahead; a line whose
    first checkpoint is at 120 m is refused when the car passes it, one at 50 m is not."""
    from tmstate.errors import MapMismatchError

    start = (100.0, 10.0, 200.0)
    with HarnessProcess(extra_args=["--map-uid", ""]) as h:
        for checkpoint, ok in ((50.0, True), (120.0, False)):
            env = _env(h, _line(tmp_path, start, "", f"cp{int(checkpoint)}", [checkpoint]))
            try:
                env.reset()

                def run(env=env) -> None:
                    for _ in range(100):
                        env.step(np.array([0.0, 1.0], np.float32))
                        if env.state.checkpoint_count >= 2:
                            return

                if ok:
                    run()
                    assert env.state.checkpoint_count >= 2
                else:
                    with pytest.raises(MapMismatchError, match=r"first checkpoint \d+ m from the first checkpoint"):
                        run()
            finally:
                env.close()


def test_game_config_challenge_loads_the_map_before_the_first_race(tmp_path):
    line = _line(tmp_path, (100.0, 10.0, 200.0), "B02-Race", "B02-Race")
    with HarnessProcess(extra_args=["--map-uid", "A01-Race"]) as h:
        env = _env(h, line, challenge="B02-Race.Challenge.Gbx", challenge_timeout_s=10.0)
        try:
            _, info = env.reset()  # the uid check passes only if the map was loaded first
            assert info["race_time_ms"] == 0
            assert env.backend.map_identity()[0] == "B02-Race"
        finally:
            env.close()


def test_a_start_command_named_like_a_variable_never_listens(tmp_path):
    """The console has one namespace: a plugin whose start-up command shares the
    tmstate_listen variable's name is refused the command, so it never listens."""
    from tmstate.errors import BridgeError

    plugin = tmp_path / "clash.as"
    plugin.write_text(PLUGIN_SOURCE.replace('"tmstate_start"', '"tmstate_listen"'), encoding="utf-8")
    assert plugin.read_text(encoding="utf-8").count('"tmstate_listen"') >= 3
    with pytest.raises(BridgeError, match="exited with status 2|did not start listening"):
        with HarnessProcess(plugin=plugin, ready_timeout_s=10):
            pass

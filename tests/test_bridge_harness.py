"""The bridge over TCP: against the real plugin in the AngelScript harness (marked ``harness``),
and against a tiny scripted fake plugin for the failures the harness cannot produce on cue
(garbage on the wire, silence, an ERROR answer)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from tmstate.link import protocol as p
from tmstate.core.state import Action
from tmstate.link.bridge import Bridge
from tmstate.errors import (
    BridgeError,
    BridgeTimeoutError,
    ConfigError,
    DisconnectedError,
    NotListeningError,
    PluginError,
    ProtocolError,
    VersionMismatchError,
)
from tmstate.core.state import GameState

# --- a scripted fake plugin ------------------------------------------------------------


class FakePlugin:
    """Listens on a free port; runs ``script(conn, recv)`` for the first client in a thread.

    ``recv()`` returns the next whole client message (or None at EOF). What the script
    received is kept in ``received`` so tests can check what the client sent.
    """

    def __init__(self, script: Callable[[socket.socket, Callable[[], p.Message | None]], None]):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received: list[p.Message] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, args=(script,), daemon=True)
        self.thread.start()

    def _serve(self, script) -> None:
        conn, _ = self.server.accept()
        reader = p.MessageReader()
        pending: list[p.Message] = []

        def recv() -> p.Message | None:
            while not pending:
                data = conn.recv(65536)
                if not data:
                    return None
                pending.extend(reader.feed(data))
            msg = pending.pop(0)
            self.received.append(msg)
            return msg

        try:
            script(conn, recv)
        except BaseException as exc:  # reported by close()
            self.error = exc
        finally:
            conn.close()

    def close(self) -> None:
        self.thread.join(5)
        self.server.close()
        if self.error is not None and not isinstance(self.error, OSError):
            raise self.error


def hello_then(body: Callable[[socket.socket, Callable], None], version: int = p.PROTOCOL_VERSION):
    """A script: answer the client's HELLO with our HELLO, then run ``body``."""

    def script(conn, recv):
        msg = recv()
        assert isinstance(msg, p.Hello)
        conn.sendall(p.encode(p.PluginHello(version, "fake 0")))
        body(conn, recv)

    return script


def state_msg(race_time_ms: int, seq: int = 1, flags: int = p.StateFlag.IN_RACE) -> bytes:
    return p.encode(p.State(seq, int(flags), GameState(race_time_ms=race_time_ms)))


def drain(conn, recv) -> None:
    """Keep reading until the client leaves."""
    while recv() is not None:
        pass


def test_plugin_hello_with_other_version_raises_naming_both_and_says_bye():
    fake = FakePlugin(hello_then(drain, version=p.PROTOCOL_VERSION + 1))
    with pytest.raises(VersionMismatchError) as info:
        Bridge(port=fake.port, timeout_s=2).connect()
    text = str(info.value)
    assert f"version {p.PROTOCOL_VERSION}" in text and f"version {p.PROTOCOL_VERSION + 1}" in text
    fake.close()
    assert isinstance(fake.received[-1], p.Bye)


def test_silent_peer_times_out_with_a_clear_error():
    fake = FakePlugin(lambda conn, recv: (recv(), time.sleep(1.0)))
    start = time.monotonic()
    with pytest.raises(BridgeTimeoutError, match="no HELLO"):
        Bridge(port=fake.port, timeout_s=0.3).connect()
    assert time.monotonic() - start < 0.9
    fake.close()


def test_oversized_header_from_plugin_raises_protocol_error_and_drops():
    def body(conn, recv):
        conn.sendall(struct.pack("<II", p.PluginMsg.FRAME, p.MAX_PAYLOAD + 1))
        time.sleep(0.5)  # no payload follows: the client must not wait for it

    fake = FakePlugin(hello_then(body))
    bridge = Bridge(port=fake.port, timeout_s=2)
    bridge.connect()
    with pytest.raises(ProtocolError, match="MAX_PAYLOAD"):
        bridge.next_state()
    assert not bridge.connected
    fake.close()


def test_unknown_message_type_from_plugin_raises_protocol_error():
    fake = FakePlugin(hello_then(lambda conn, recv: (conn.sendall(struct.pack("<II", 99, 0)), drain(conn, recv))))
    bridge = Bridge(port=fake.port, timeout_s=2)
    bridge.connect()
    with pytest.raises(ProtocolError, match="unknown message type 99"):
        bridge.next_state()
    bridge.close()
    fake.close()


def test_frame_with_the_wrong_pixel_count_raises_protocol_error():
    def body(conn, recv):
        assert isinstance(recv(), p.RequestFrame)
        conn.sendall(struct.pack("<IIII", p.PluginMsg.FRAME, 8 + 15, 2, 2) + b"\x00" * 15)
        drain(conn, recv)

    fake = FakePlugin(hello_then(body))
    bridge = Bridge(port=fake.port, timeout_s=2)
    bridge.connect()
    with pytest.raises(ProtocolError, match="FRAME of 2x2 must carry 16 bytes"):
        bridge.request_frame(2, 2)
    bridge.close()
    fake.close()


def test_plugin_error_answer_raises_plugin_error_with_code():
    def body(conn, recv):
        conn.sendall(state_msg(0))
        msg = recv()
        assert isinstance(msg, p.Rewind)
        conn.sendall(p.encode(p.Error(p.ErrorCode.REWIND_FAILED, p.ClientMsg.REWIND, "bad blob")))
        drain(conn, recv)

    fake = FakePlugin(hello_then(body))
    bridge = Bridge(port=fake.port, timeout_s=2)
    bridge.connect()
    bridge.next_state()
    with pytest.raises(PluginError) as info:
        bridge.rewind(b"nonsense")
    assert info.value.code == p.ErrorCode.REWIND_FAILED and "bad blob" in str(info.value)
    bridge.close()
    fake.close()


def test_commands_sent_before_the_state_arrives_keep_the_step_cycle_in_order():
    """SAVE_STATE sent before the plugin's STATE: the STATE is kept, act() answers it."""

    def body(conn, recv):
        conn.sendall(state_msg(0, seq=1))  # the plugin reaches its sync tick...
        msg = recv()  # ...and only then reads our SAVE_STATE
        assert isinstance(msg, p.SaveState)
        conn.sendall(p.encode(p.SavedState(0, b"blob")))
        msg = recv()
        assert isinstance(msg, p.ActionMsg) and msg.steer == -65536 and msg.buttons == p.BUTTON_DOWN
        conn.sendall(state_msg(50, seq=2))
        drain(conn, recv)

    fake = FakePlugin(hello_then(body))
    bridge = Bridge(port=fake.port, timeout_s=2)
    bridge.connect()
    saved = bridge.save_state()
    assert saved.blob == b"blob"
    state = bridge.act(Action(steer=-1.0, gas=0.0, brake=True))
    assert state.race_time_ms == 50 and bridge.last_seq == 2
    bridge.close()
    fake.close()


def test_plugin_closing_mid_step_raises_disconnected():
    def body(conn, recv):
        conn.sendall(state_msg(0))
        recv()  # the ACTION; then the "game" dies

    fake = FakePlugin(hello_then(body))
    bridge = Bridge(port=fake.port, timeout_s=2)
    bridge.connect()
    with pytest.raises(DisconnectedError, match="closed the connection"):
        bridge.act(Action(gas=1.0))
    assert not bridge.connected
    fake.close()


def test_nothing_listening_raises_not_listening_quickly():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        start = time.monotonic()
        with pytest.raises(NotListeningError, match=f"no tmstate plugin on 127.0.0.1:{port}"):
            Bridge(port=port, timeout_s=1, connect_retries=2, retry_delay_s=0.05).connect()
        assert time.monotonic() - start < 1.0


# --- end to end: the real plugin in the AngelScript harness ---------------------------

harness_only = pytest.mark.harness
PERIOD_MS = 50


@pytest.fixture
def bridge(harness):
    """A connected client at race time 0 of a fresh race, finish not prevented."""
    b = Bridge(port=harness.port, timeout_s=5, connect_retries=50, retry_delay_s=0.05)
    b.connect()
    b.set_action_period(PERIOD_MS)
    b.prevent_finish(False)
    state = b.restart()
    assert state.race_time_ms == 0
    yield b
    b.close()


def along(state: GameState, start: GameState) -> float:
    """Distance driven along the start direction (the harness puts checkpoints on it)."""
    from tmstate.core.state import forward_vector

    return float(np.dot(state.position - start.position, forward_vector(start.yaw)))


@harness_only
def test_handshake_names_the_plugin(harness):
    b = Bridge(port=harness.port, timeout_s=5, connect_retries=50, retry_delay_s=0.05)
    version = b.connect()
    assert version and version == b.plugin_version
    assert b.connected
    b.close()
    assert not b.connected


@harness_only
def test_inputs_arrive_and_race_time_advances_by_the_period(bridge):
    """1,000 steps circling left (gas, then coasting): inputs show up in the car's motion."""
    start = bridge.next_state()
    states = [start]
    plan = [Action(steer=-1.0, gas=1.0)] * 600 + [Action(steer=-1.0)] * 400
    for action in plan:
        states.append(bridge.act(action))
    assert not any(s.finished for s in states)  # a tight circle never reaches the 50 m plane
    times = np.array([s.race_time_ms for s in states])
    assert np.all(np.diff(times) == PERIOD_MS)
    assert times[-1] == 1000 * PERIOD_MS
    # The inputs in force are the ones we sent.
    assert (states[1].steer, states[1].gas, states[1].brake) == (-1.0, 1.0, 0.0)
    assert (states[700].steer, states[700].gas) == (-1.0, 0.0)
    # Gas makes the car go faster; steering left turns it left (yaw shrinks: see tmstate.core.state).
    speeds = [s.speed for s in states]
    assert speeds[0] < 0.5 and speeds[40] > speeds[10] > speeds[1] > 0
    yaw = np.unwrap([s.yaw for s in states])
    assert np.all(np.diff(yaw[1:600]) < 0)
    assert yaw[0] - yaw[600] > 2 * np.pi  # went round at least once


@harness_only
def test_gas_alone_keeps_the_heading_and_steer_right_turns_right(bridge):
    start = bridge.next_state()
    for _ in range(20):
        state = bridge.act(Action(gas=1.0))
    assert abs(state.yaw - start.yaw) < 1e-6 and state.speed > 1.0
    for _ in range(20):
        state = bridge.act(Action(steer=1.0, gas=1.0))
    turn = np.unwrap([start.yaw, state.yaw])
    assert turn[1] > turn[0] + 0.05  # steering right makes yaw grow


@harness_only
def test_save_drive_rewind_restores_exactly(bridge):
    for _ in range(10):
        bridge.act(Action(steer=-0.5, gas=1.0))
    here = bridge.next_state()
    saved = bridge.save_state()
    assert saved.race_time_ms == here.race_time_ms
    assert len(saved.blob) >= 8356
    drive = [Action(steer=0.3, gas=1.0)] * 30
    first = [bridge.act(a) for a in drive]
    back = bridge.rewind(saved)
    assert bridge.last_flags & p.StateFlag.AFTER_REWIND
    assert back.race_time_ms == saved.race_time_ms
    assert np.array_equal(back.position, here.position)
    assert np.array_equal(back.velocity, here.velocity)
    assert back.yaw == here.yaw
    assert not np.array_equal(first[-1].position, here.position)
    # Same actions from the same state give the same states again.
    again = [bridge.act(a) for a in drive]
    assert [s.race_time_ms for s in again] == [s.race_time_ms for s in first]
    assert np.array_equal(again[-1].position, first[-1].position)


@harness_only
def test_save_state_blob_decodes_with_tminterface(bridge):
    for _ in range(8):
        state = bridge.act(Action(gas=1.0))
    saved = bridge.save_state()
    from tmstate.core.state import decode_sim_state

    sim = decode_sim_state(saved.blob)
    assert sim.player_info.race_time == saved.race_time_ms == state.race_time_ms
    assert np.allclose(sim.dyna.current_state.position, state.position, atol=1e-3)


@harness_only
def test_requested_and_auto_frames_arrive_whole(bridge):
    frame = bridge.request_frame(64, 48)
    assert frame.shape == (48, 64, 4) and frame.dtype == np.uint8
    assert frame.nbytes == 64 * 48 * 4
    full = bridge.request_frame(0, 0)
    assert full.ndim == 3 and full.shape[2] == 4 and full.shape[0] * full.shape[1] > 0
    bridge.set_auto_frame(32, 24)
    for _ in range(3):
        state = bridge.act(Action(gas=1.0))
        assert bridge.last_frame is not None and bridge.last_frame.shape == (24, 32, 4)
    bridge.set_auto_frame(0, 0)
    bridge.last_frame = None
    state2 = bridge.act(Action(gas=1.0))
    assert bridge.last_frame is None and state2.race_time_ms == state.race_time_ms + PERIOD_MS


@harness_only
def test_checkpoints_then_finish_driving_straight(bridge):
    start = bridge.next_state()
    assert start.checkpoint_count == 0 and not start.finished
    seen = []
    state = start
    for _ in range(2000):
        state = bridge.act(Action(gas=1.0))
        if not seen or state.checkpoint_count != seen[-1][0]:
            seen.append((state.checkpoint_count, along(state, start)))
        if state.finished:
            break
    assert state.finished, f"no finish after {state.race_time_ms} ms, at {along(state, start):.1f} m"
    counts = [c for c, _ in seen]
    assert counts[:3] == [0, 1, 2], counts
    assert state.checkpoint_target > 0
    # Checkpoints at 50 m and 100 m, the finish at 150 m (harness defaults): each is
    # seen within one step of driving past it.
    (_, at1), (_, at2) = seen[1], seen[2]
    step_m = state.speed * PERIOD_MS / 1000 + 0.5
    assert 50 <= at1 <= 50 + step_m and 100 <= at2 <= 100 + step_m
    assert along(state, start) >= 150
    # No STATE follows a finish: acting now is refused at once instead of timing out.
    t0 = time.monotonic()
    with pytest.raises(BridgeError, match="rewind\\(\\) or restart\\(\\)"):
        bridge.act(Action(gas=1.0))
    assert time.monotonic() - t0 < 0.5
    assert bridge.restart().race_time_ms == 0


@harness_only
def test_disconnect_mid_race_releases_inputs_and_accepts_a_new_client(harness):
    first = Bridge(port=harness.port, timeout_s=5, connect_retries=50, retry_delay_s=0.05)
    first.connect()
    first.set_timeout(60_000)  # as long as a learner's update may take
    first.next_state()
    state = first.act(Action(steer=-1.0, gas=1.0))
    assert state.gas == 1.0 and state.steer == -1.0
    first._sock.close()  # the client dies without BYE while the plugin waits for it
    first._sock = None

    # The plugin cannot see the dead peer until a write fails; a new client connecting
    # during the wait replaces it at once instead of after the 60 s timeout.
    started = time.monotonic()
    second = Bridge(port=harness.port, timeout_s=5, connect_retries=50, retry_delay_s=0.05)
    assert second.connect()  # handshake works
    state = second.next_state()
    assert time.monotonic() - started < 5.0
    assert (state.steer, state.gas, state.brake) == (0.0, 0.0, 0.0)
    second.close()


@harness_only
def test_observe_mode_streams_states_without_actions(bridge):
    bridge.act(Action(gas=1.0))
    bridge.set_mode(observe=True)
    times = []
    for state in bridge.observe(timeout_s=5):
        times.append(state.race_time_ms)
        if len(times) == 30:
            break
    assert all(b > a for a, b in zip(times, times[1:])), times
    bridge.set_mode(observe=False)
    before = bridge.next_state()
    after = bridge.act(Action())
    assert after.race_time_ms == before.race_time_ms + PERIOD_MS


@harness_only
def test_observed_states_carry_the_observed_flag(bridge):
    bridge.set_mode(observe=True)
    for _ in range(5):
        bridge.next_state(timeout_s=5)
        assert bridge.last_flags & p.StateFlag.OBSERVED
    bridge.set_mode(observe=False)


@harness_only
def test_client_with_another_protocol_version_is_refused_naming_both(harness):
    other = p.PROTOCOL_VERSION + 1
    b = Bridge(port=harness.port, timeout_s=5, connect_retries=50, retry_delay_s=0.05, protocol_version=other)
    with pytest.raises(VersionMismatchError) as info:
        b.connect()
    text = str(info.value)
    assert str(other) in text and str(p.PROTOCOL_VERSION) in text
    # The plugin listens again for a proper client.
    good = Bridge(port=harness.port, timeout_s=5, connect_retries=50, retry_delay_s=0.05)
    good.connect()
    good.close()


@harness_only
def test_respawn_goes_back_to_the_last_checkpoint(bridge):
    start = bridge.next_state()
    for _ in range(200):
        state = bridge.act(Action(gas=1.0))
        if state.checkpoint_count == 1:
            break
    for _ in range(5):
        state = bridge.act(Action(steer=0.5, gas=1.0))
    back = bridge.respawn()
    assert back.respawn_count == state.respawn_count + 1
    assert back.checkpoint_count == 1
    assert back.speed < 1.0 < state.speed
    assert 49.0 <= along(back, start) <= 51.0  # the checkpoint plane at 50 m
    assert bridge.act(Action()).race_time_ms == back.race_time_ms + PERIOD_MS


@harness_only
def test_commands_answered_inside_the_wait_and_refusals(bridge):
    here = bridge.next_state()
    bridge.set_speed(5.0)
    bridge.execute("set countdown_speed 10")
    bridge.set_timeout(3000)
    with pytest.raises(PluginError) as info:  # the plugin's own check, not the bridge's
        bridge._request(p.SetActionPeriod(15), None)
    assert info.value.code == p.ErrorCode.BAD_PAYLOAD
    with pytest.raises(PluginError) as info:
        bridge.rewind(b"\x00" * 100)  # too short to be a save state
    assert info.value.code == p.ErrorCode.REWIND_FAILED
    # The input-speed rule: above 100x TMInterface may drop inputs (SetInputState docs),
    # so the plugin refuses such a speed with ERROR 3 naming the bound and the reason ...
    with pytest.raises(PluginError) as info:
        bridge._request(p.SetSpeed(150.0), None)
    assert info.value.code == p.ErrorCode.BAD_PAYLOAD
    assert "<= 100" in str(info.value) and "drop inputs" in str(info.value)
    with pytest.raises(ConfigError, match="<= 100"):  # ... and the bridge before sending it
        bridge.set_speed(150.0)
    bridge.set_speed(100.0)  # the bound itself is allowed
    bridge.set_speed(1.0)
    # The step cycle goes on where it was.
    assert bridge.act(Action()).race_time_ms == here.race_time_ms + PERIOD_MS


@harness_only
def test_game_killed_then_back_on_the_same_port_reconnects():
    """A crash looks like DisconnectedError; reconnect() finds the restarted game."""
    from tmstate.link.harness import HarnessProcess

    with HarnessProcess() as first:
        port = first.port
        b = Bridge(port=port, timeout_s=5)
        b.connect()
        b.next_state()
        saved = b.save_state()
        b.act(Action(gas=1.0))
        first.kill()
        with pytest.raises(DisconnectedError):
            for _ in range(3):
                b.act(Action(gas=1.0))
    with HarnessProcess(port=port) as second:
        assert second.port == port
        b.reconnect(wait_s=5)
        b.next_state()
        back = b.rewind(saved)  # save states survive the game's restart
        assert back.race_time_ms == saved.race_time_ms
        b.close()


@harness_only
def test_harness_demo_prints_a_table(capsys):
    from tmstate import cli

    assert cli.main(["harness-demo", "--steps", "30"]) == 0
    out = capsys.readouterr().out
    assert "race_ms" in out
    last_row = [row for row in out.splitlines() if row.strip().startswith("30 ")]
    assert last_row and last_row[0].split()[1] == "1500"


@harness_only
def test_harness_process_reports_a_plugin_that_does_not_compile(tmp_path):
    from tmstate.errors import BridgeError, ConfigError
    from tmstate.link.harness import PLUGIN_PATH, HarnessProcess

    with pytest.raises(ConfigError, match="plugin file not found"):
        HarnessProcess(plugin=tmp_path / "absent.as").start()
    broken = tmp_path / "broken.as"
    broken.write_text(PLUGIN_PATH.read_text() + "\nvoid Broken() { int x = ; }\n")
    harness = HarnessProcess(plugin=broken, ready_timeout_s=10)
    with pytest.raises(BridgeError, match="broken.as"):
        harness.start()
    assert not harness.alive
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(BridgeError, match="in use"):
            HarnessProcess(port=port, ready_timeout_s=10).start()
        assert time.monotonic() - start < 5


def test_a_negative_spin_is_refused():
    with pytest.raises(ConfigError, match="spin_us must be >= 0"):
        Bridge(spin_us=-1)


@harness_only
@pytest.mark.parametrize("spin_us", [0.0, 100.0, 1e6])
def test_every_receive_path_steps_the_same(harness, spin_us):
    """Blocking receives (0), a short poll before blocking (default) and a poll that always
    catches the answer give the same states for the same actions."""
    b = Bridge(port=harness.port, timeout_s=5, connect_retries=50, retry_delay_s=0.05, spin_us=spin_us)
    b.connect()
    b.set_action_period(PERIOD_MS)
    start = b.restart()
    states = [b.act(Action(steer=0.5, gas=1.0)) for _ in range(20)]
    b.close()
    assert [s.race_time_ms - start.race_time_ms for s in states] == [PERIOD_MS * (i + 1) for i in range(20)]
    assert states[-1].speed > states[0].speed > 0

"""The game link under faults (issue 10): odd bytes from the plugin's log, a game frozen
mid-frame, a client that stops reading, a wrong token. Against the real plugin in the harness."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from tmstate.link import protocol as p
from tmstate.link.bridge import Bridge

harness_only = pytest.mark.harness


def raw_hello(port: int, name: bytes, version: int = p.PROTOCOL_VERSION) -> None:
    """Connect, send a HELLO whose name is ``name`` as raw bytes (maybe not UTF-8), read the answer, leave."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        payload = struct.pack("<I", version) + bytes(p.TOKEN_SIZE) + name
        sock.sendall(struct.pack("<II", p.ClientMsg.HELLO, len(payload)) + payload)
        sock.recv(4096)
        sock.sendall(p.encode(p.Bye()))


def wait_for_output(harness, text: str, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(text in line for line in list(harness.output)):
            return True
        time.sleep(0.02)
    return False


@harness_only
def test_harness_output_that_is_not_utf8_keeps_being_drained(harness):
    """Defect 1: one 0xFF byte in the plugin's log killed the drain thread (strict UTF-8), so the
    pipe filled and the harness hung. Output after it must still be read."""
    raw_hello(harness.port, b"bad\xff\xfename")
    assert wait_for_output(harness, "bad"), list(harness.output)[-5:]
    b = Bridge(port=harness.port, timeout_s=5, connect_retries=50, retry_delay_s=0.05, client_name="after-the-bad-byte")
    b.connect()
    b.close()
    assert wait_for_output(harness, "after-the-bad-byte"), list(harness.output)[-5:]


# --- defect 3: a timeout in the middle of a message -------------------------------------


@pytest.mark.parametrize("width,height", [(8, 4), (640, 480)])  # in the buffer, and larger than it
def test_a_timeout_mid_message_resumes_the_same_message(width, height):
    """Defect 3: the header was consumed, the payload timed out, and the next call read
    payload bytes as a header. Now the next call finishes the same message."""
    import threading

    import numpy as np
    from test_bridge_harness import FakePlugin, drain, hello_then, state_msg

    from tmstate.core.state import Action
    from tmstate.errors import BridgeTimeoutError

    pixels = np.arange(width * height * 4, dtype=np.uint32).astype(np.uint8).reshape(height, width, 4)
    frame = p.encode(p.Frame(width, height, pixels.tobytes()))
    go_on = threading.Event()

    def body(conn, recv):
        conn.sendall(state_msg(0, seq=1) + frame)
        assert isinstance(recv(), p.ActionMsg)
        cut = len(frame) // 2
        conn.sendall(state_msg(50, seq=2) + frame[:cut])
        go_on.wait(5)
        conn.sendall(frame[cut:])
        assert isinstance(recv(), p.ActionMsg)
        conn.sendall(state_msg(100, seq=3) + frame)
        drain(conn, recv)

    plugin = FakePlugin(hello_then(body))
    b = Bridge(port=plugin.port, timeout_s=2, spin_us=0)
    b.connect()
    b.auto_frame = (width, height)  # what set_auto_frame would have agreed with the plugin
    b.next_state()
    with pytest.raises(BridgeTimeoutError):
        b.act(Action(gas=1.0), timeout_s=0.3)
    go_on.set()
    state = b.act(Action(gas=1.0))  # first the rest of the frame of 50 ms, then 100 ms and its frame
    assert state.race_time_ms == 100
    assert b.last_frame.shape == (height, width, 4) and np.array_equal(b.last_frame, pixels)
    b.close()
    plugin.close()


def test_a_timeout_mid_header_resumes_too():
    import threading

    from test_bridge_harness import FakePlugin, drain, hello_then, state_msg

    from tmstate.errors import BridgeTimeoutError

    go_on = threading.Event()
    message = state_msg(0, seq=1)

    def body(conn, recv):
        conn.sendall(message[:5])
        go_on.wait(5)
        conn.sendall(message[5:20])
        time.sleep(0.3)
        conn.sendall(message[20:])
        drain(conn, recv)

    plugin = FakePlugin(hello_then(body))
    b = Bridge(port=plugin.port, timeout_s=2, spin_us=0)
    b.connect()
    with pytest.raises(BridgeTimeoutError):
        b.next_state(timeout_s=0.2)
    go_on.set()
    with pytest.raises(BridgeTimeoutError):
        b.next_state(timeout_s=0.1)
    assert b.next_state().race_time_ms == 0
    b.close()
    plugin.close()


# --- the fault test: a game frozen mid-frame and resumed ------------------------------

FREEZE_TRIALS = 25


@harness_only
def test_a_game_frozen_mid_frame_and_resumed_never_desyncs(tmp_path, requires_harness):
    """The harness frozen with SIGSTOP while it sends a 1600x1200 auto frame, then resumed,
    25 times: the step in flight times out (BridgeTimeoutError), the next step works (the
    rest of the frame is read, then the next STATE and its frame), and reset works. Before
    the fix the next call read pixels as a header (ProtocolError: "type 4280844840 announces
    a payload of 4280844840 bytes")."""
    import os
    import signal
    import threading

    import numpy as np

    from tmstate.backends.tminterface import GameBackend
    from tmstate.core.reference import ReferenceLine
    from tmstate.core.state import forward_vector
    from tmstate.env.env import TMNFEnv
    from tmstate.errors import BridgeTimeoutError, DisconnectedError
    from tmstate.link.harness import HarnessProcess

    width, height = 1600, 1200
    with HarnessProcess() as harness:
        probe = GameBackend(port=harness.port, timeout_s=5.0)
        start = probe.reset()
        probe.close()
        ahead = start.position + 400.0 * forward_vector(start.yaw, start.pitch)
        line_path = ReferenceLine.from_points([start.position, ahead], spacing_m=0.5).save(tmp_path / "line.npz")
        env = TMNFEnv(backend="tminterface", map=str(line_path),
                      backend_options={"port": harness.port, "timeout_s": 0.4, "frame_size": (width, height),
                                       "connect_retries": 50})
        bridge = env.backend.bridge
        gas = np.array([0.0, 1.0], np.float32)
        outcomes = {"frozen_mid_frame": 0, "frozen_elsewhere": 0, "not_frozen_in_time": 0,
                    "next_step_worked": 0, "next_step_disconnected": 0}
        try:
            env.reset()
            for _ in range(FREEZE_TRIALS):
                frozen = threading.Event()

                def freeze_when_the_frame_is_half_here() -> None:
                    """SIGSTOP the harness once part of the frame has arrived (the bridge holds
                    it as a partial message), so the freeze lands mid-frame, not by luck."""
                    deadline = time.monotonic() + 2.0
                    while time.monotonic() < deadline:
                        partial = bridge._partial
                        if partial is not None and partial.have > 0:
                            os.kill(harness.pid, signal.SIGSTOP)
                            frozen.set()  # noqa: B023 (the thread is joined within this iteration)
                            return
                        time.sleep(0.0002)

                watcher = threading.Thread(target=freeze_when_the_frame_is_half_here)
                before = env.state.race_time_ms
                watcher.start()
                try:
                    env.step(gas)
                    timed_out = False
                except BridgeTimeoutError:
                    timed_out = True
                watcher.join()
                if frozen.is_set():
                    mid = timed_out and bridge._partial is not None
                    outcomes["frozen_mid_frame" if mid else "frozen_elsewhere"] += 1
                else:
                    outcomes["not_frozen_in_time"] += 1
                os.kill(harness.pid, signal.SIGCONT)
                try:
                    _, _, terminated, truncated, _ = env.step(gas)
                    outcomes["next_step_worked"] += 1
                    assert env.state.race_time_ms > before and env.state.race_time_ms % 50 == 0
                    assert bridge.last_frame is not None and bridge.last_frame.shape == (height, width, 4)
                    assert bridge._partial is None
                except DisconnectedError:  # the documented alternative: the plugin dropped us
                    outcomes["next_step_disconnected"] += 1
                obs, info = env.reset()
                assert info["race_time_ms"] == 0 and env.observation_space.contains(obs)
                assert bridge.last_frame.shape == (height, width, 4)
        finally:
            os.kill(harness.pid, signal.SIGCONT)
            env.close()
    print(f"freeze trials: {outcomes}")
    assert outcomes["next_step_worked"] + outcomes["next_step_disconnected"] == FREEZE_TRIALS
    assert outcomes["frozen_mid_frame"] >= FREEZE_TRIALS // 2, outcomes


# --- defect 8: record-line when the game dies mid-drive --------------------------------


def test_record_line_saves_what_was_driven_when_the_game_dies(tmp_path, capsys):
    """The plugin streams a drive in observe mode, then the connection drops (game crashed):
    the line driven so far is saved and the user is told, as Ctrl-C does."""
    import numpy as np
    from test_bridge_harness import FakePlugin, hello_then

    from tmstate import cli
    from tmstate.core.reference import ReferenceLine
    from tmstate.core.state import GameState

    def body(conn, recv):
        msg = recv()
        assert isinstance(msg, p.SetMode) and msg.observe
        conn.sendall(p.encode(p.Ok(p.ClientMsg.SET_MODE)))
        flags = p.StateFlag.IN_RACE | p.StateFlag.OBSERVED
        for i in range(40):
            state = GameState(race_time_ms=50 * i, position=np.array([0.0, 0.0, 1.0 * i]))
            conn.sendall(p.encode(p.State(i + 1, int(flags), state)))
        # then the game dies: the connection closes without BYE

    plugin = FakePlugin(hello_then(body))
    out = tmp_path / "drive.npz"
    status = cli.main(["record-line", "-o", str(out), "--port", str(plugin.port)])
    err = capsys.readouterr().err
    plugin.close()
    assert status == 0, err
    assert "stopped answering" in err and "saving what was driven" in err
    line = ReferenceLine.load(out)
    assert line.length_m == pytest.approx(39.0, abs=0.6)


def test_record_line_output_is_checked_before_driving(tmp_path, capsys):
    from tmstate import cli

    (tmp_path / "dir.npz").mkdir()
    status = cli.main(["record-line", "-o", str(tmp_path / "dir.npz"), "--port", "1"])
    err = capsys.readouterr().err
    assert status == 2 and "line file" in err and "connecting" not in err


# --- defect 4: an observe-mode client that stops reading -------------------------------


@harness_only
def test_an_observe_client_that_stops_reading_does_not_lock_out_the_next_client(harness):
    """Defect 4: the plugin's writes to an observe-mode client that no longer reads blocked,
    and newcomers were only looked for in control-mode waits: every new client timed out.
    Now the newcomer is served (the stuck client is dropped)."""
    stuck = Bridge(port=harness.port, timeout_s=5, connect_retries=50, retry_delay_s=0.05)
    stuck.connect()
    stuck.set_mode(True)  # states stream; from now on this client reads nothing
    time.sleep(1.5)  # the harness (not real time) streams as fast as it can: its socket fills up
    start = time.monotonic()
    nxt = Bridge(port=harness.port, timeout_s=5, connect_retries=50, retry_delay_s=0.05)
    nxt.connect()  # before the fix: "connected ... but no HELLO came within 5 s"
    nxt.set_action_period(50)
    state = nxt.restart()
    assert state.race_time_ms == 0 and time.monotonic() - start < 4.0
    nxt.close()
    stuck._drop()
    assert wait_for_output(harness, "client dropped")


@harness_only
def test_a_newcomer_replaces_an_observe_client_even_before_its_socket_fills(requires_harness):
    """The other half of defect 4: at real-time pace the stuck client's buffers take minutes
    to fill, and meanwhile no newcomer was looked for in observe mode."""
    from tmstate.link.harness import HarnessProcess

    with HarnessProcess(realtime=True) as harness:
        quiet = Bridge(port=harness.port, timeout_s=5, connect_retries=50, retry_delay_s=0.05)
        quiet.connect()
        quiet.set_mode(True)
        time.sleep(0.5)
        nxt = Bridge(port=harness.port, timeout_s=3, connect_retries=50, retry_delay_s=0.05)
        nxt.connect()
        assert wait_for_output(harness, "a new client connected")
        nxt.close()
        quiet._drop()


# --- defect 15: a per-instance auth token ------------------------------------------------


@harness_only
def test_a_plugin_with_a_token_refuses_clients_without_it_and_the_token_stays_secret(requires_harness):
    from tmstate.errors import AuthError
    from tmstate.link.auth import new_token
    from tmstate.link.harness import HarnessProcess

    token = new_token()
    with HarnessProcess(token=token) as harness:
        for wrong in ("", new_token(), token[:-1], token[:-1] + ("0" if token[-1] != "0" else "1")):
            b = Bridge(port=harness.port, timeout_s=5, connect_retries=50, retry_delay_s=0.05, token=wrong)
            with pytest.raises(AuthError, match="token") as caught:
                b.connect()
            assert token not in str(caught.value)
        b = Bridge(port=harness.port, timeout_s=5, connect_retries=50, retry_delay_s=0.05, token=token)
        b.connect()
        b.set_action_period(50)
        assert b.restart().race_time_ms == 0
        b.close()
        with open(f"/proc/{harness.pid}/cmdline", "rb") as fh:
            assert token.encode() not in fh.read()  # not in the process list
        assert wait_for_output(harness, "clients need this instance's token")
        assert not any(token in line for line in harness.output)  # nor in its log


@harness_only
def test_without_a_token_configured_any_client_is_served_as_before(harness):
    b = Bridge(port=harness.port, timeout_s=5, connect_retries=50, retry_delay_s=0.05, token="whatever-it-is")
    b.connect()
    b.close()
    assert wait_for_output(harness, "no token: any local client")


@harness_only
def test_tmstate_check_says_which_auth_mode_a_plugin_is_in(harness, monkeypatch, capsys):
    from tmstate.link.auth import new_token
    from tmstate.link.harness import HarnessProcess
    from tmstate.ops import check

    assert check.auth_mode(harness.port) == "open"
    with HarnessProcess(token=new_token()) as guarded:
        assert check.auth_mode(guarded.port) == "token"
        monkeypatch.setenv("TMSTATE_BASE_PORT", str(guarded.port))
        monkeypatch.setenv("TMSTATE_RUN_DIR", str(harness.plugin.parent / "no-such-run-dir"))
        lines = {item.name: item for item in check.check_auth()}
        assert "token mode" in lines[f"plugin on port {guarded.port}"].detail
    from tmstate.link.harness import free_port

    assert check.auth_mode(free_port()) == "absent"

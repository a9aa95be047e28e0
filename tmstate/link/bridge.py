"""The client end of the game link: one TCP connection to the plugin inside TMNF.

:class:`Bridge` connects, does the handshake, and offers one method per command of
docs/protocol.md. In control mode the plugin sends a STATE at every action-period tick and
waits; :meth:`Bridge.act` answers it with an ACTION and returns the next STATE — the hot
path, kept to one ``sendall`` and (usually) one ``recv_into`` into a preallocated buffer,
with Nagle's algorithm off.

Messages the plugin sends while the client waits for something else are not lost: a
STATE is queued (and marks the plugin as waiting for an action), a FRAME is kept in
:attr:`Bridge.last_frame`. Every failure is a typed error from :mod:`tmstate.errors`.
"""

from __future__ import annotations

import collections
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tmstate.link import protocol as p
from tmstate.link.protocol import DEFAULT_PORT
from tmstate.config import check_port
from tmstate.core.state import Action
from tmstate.errors import (
    AuthError,
    BridgeError,
    BridgeTimeoutError,
    ConfigError,
    DisconnectedError,
    NotListeningError,
    PluginError,
    ProtocolError,
    VersionMismatchError,
)
from tmstate.core.state import GameState, check_action_period_ms

DEFAULT_HOST = "127.0.0.1"
RECV_BUFFER_BYTES = 256 * 1024
"""Receive buffer; payloads larger than this (frames) are received straight into their own array."""
MAX_QUEUED_STATES = 100_000
"""Observe mode: oldest unread states are dropped beyond this many."""

SavedState = p.SavedState
"""What :meth:`Bridge.save_state` returns: ``race_time_ms`` and the opaque ``blob``."""


@dataclass
class _PartialMessage:
    """A large message being received: its type, its payload array, and how much of it came."""

    msg_type: int
    payload: bytearray
    have: int = 0


def check_token(token: object) -> str:
    """An auth token as HELLO carries it: printable ASCII, at most ``TOKEN_SIZE`` characters
    ("" = none). The message never repeats the token."""
    if not isinstance(token, str) or len(token) > p.TOKEN_SIZE or not all(33 <= ord(c) < 127 for c in token):
        raise ConfigError(f"token must be printable ASCII of at most {p.TOKEN_SIZE} characters "
                          "(the one `tmstate launch` generated), got something else")
    return token


def _timeval(seconds: float) -> bytes:
    """A ``struct timeval`` for SO_RCVTIMEO/SO_SNDTIMEO (0 would mean "no timeout")."""
    micros = max(1000, int(seconds * 1_000_000))
    return struct.pack("@ll", micros // 1_000_000, micros % 1_000_000)


class Bridge:
    """A connection to the tmstate plugin (one client at a time per plugin).

    ``timeout_s`` is the default time to wait for any answer; every method takes its own
    ``timeout_s`` too. ``connect_retries`` × ``retry_delay_s`` bounds how long
    :meth:`connect` keeps trying a port where nothing listens yet.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        timeout_s: float = 10.0,
        *,
        connect_retries: int = 3,
        retry_delay_s: float = 0.1,
        client_name: str = "tmstate-python",
        protocol_version: int = p.PROTOCOL_VERSION,
        spin_us: float = 100.0,
        token: str = "",
    ) -> None:
        if timeout_s <= 0:
            raise ConfigError(f"timeout_s must be > 0 seconds, got {timeout_s}")
        if spin_us < 0:
            raise ConfigError(f"spin_us must be >= 0 microseconds, got {spin_us}")
        self.host = host
        self.port = check_port(port, "Bridge port")
        self.timeout_s = float(timeout_s)
        self.connect_retries = int(connect_retries)
        self.retry_delay_s = float(retry_delay_s)
        self.client_name = client_name
        self._token = check_token(token)
        """The instance's auth token for HELLO ("" = none); never shown in messages or repr."""
        self.protocol_version = int(protocol_version)
        """The version announced in HELLO (only tests set another one)."""
        self.spin_s = spin_us / 1e6
        """How long a receive polls without sleeping before it blocks. Waking a process that
        sleeps in recv() costs tens of µs on an idle machine — more than the plugin's whole
        answer in the harness — so a short poll first halves the step round trip; an answer
        that takes longer (the real game simulating, a paused game) costs at most this much
        CPU before the receive blocks. 0 = always block."""

        self.plugin_version = ""
        self.last_state: GameState | None = None
        self.last_seq = 0
        self.last_flags = 0
        self.last_frame: np.ndarray | None = None
        """The newest FRAME as (height, width, 4) uint8 BGRA."""
        self.observing = False
        self.auto_frame: tuple[int, int] | None = None

        self._sock: socket.socket | None = None
        self._buf = bytearray(RECV_BUFFER_BYTES)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._sock_timeout: float | None = None
        self._partial: _PartialMessage | None = None
        """A large message (a frame) whose receive timed out half-way; the next receive resumes it."""
        self._states: collections.deque[p.State] = collections.deque(maxlen=MAX_QUEUED_STATES)
        self._awaiting_action = False
        """True between a control-mode STATE and our ACTION/REWIND/RESPAWN/RESTART."""

    # --- connection --------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self, retries: int | None = None, retry_delay_s: float | None = None) -> str:
        """Connect and shake hands; return the plugin's version string.

        Retries ``retries`` times while nothing listens, then raises
        :class:`NotListeningError`. A plugin speaking another protocol version raises
        :class:`VersionMismatchError` naming both versions.
        """
        if self._sock is not None:
            return self.plugin_version
        retries = self.connect_retries if retries is None else retries
        delay = self.retry_delay_s if retry_delay_s is None else retry_delay_s
        sock = None
        for attempt in range(retries + 1):
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
                break
            except (ConnectionRefusedError, ConnectionAbortedError, socket.timeout):
                if attempt < retries:
                    time.sleep(delay)
            except OSError as exc:
                raise NotListeningError(
                    f"cannot connect to {self.address}: {exc.strerror or exc} — check the "
                    "host and port (TMInterface variable tmstate_listen, ADDRESS:PORT)"
                ) from None
        if sock is None:
            raise NotListeningError(
                f"no tmstate plugin on {self.address} — is TMNF running with the plugin "
                "loaded? (tried "
                f"{retries + 1} time{'s' if retries else ''}; `tmstate check` lists what is missing)"
            )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Blocking mode with kernel timeouts (SO_RCVTIMEO/SO_SNDTIMEO): one recv syscall
        # per wait instead of Python's poll() + recv() of a socket with a timeout.
        sock.settimeout(None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(self.timeout_s))
        self._sock = sock
        self._sock_timeout = None
        self._start = self._end = 0
        self._partial = None
        self._states.clear()
        self._awaiting_action = False
        self.observing = False
        self.auto_frame = None
        try:
            self._handshake()
        except BaseException:
            self._drop()
            raise
        return self.plugin_version

    def _handshake(self) -> None:
        self._send(p.encode(p.Hello(self.protocol_version, self._token.encode("ascii"), self.client_name)))
        deadline = time.monotonic() + self.timeout_s
        try:
            msg = self._receive(deadline, "the plugin's HELLO")
        except BridgeTimeoutError:
            raise BridgeTimeoutError(
                f"connected to {self.address} but no HELLO came within {self.timeout_s:g} s — "
                "another client may hold the plugin (one at a time), or this is not the "
                "tmstate plugin"
            ) from None
        except DisconnectedError:
            raise DisconnectedError(
                f"{self.address} closed the connection during the handshake — is that the "
                "tmstate plugin? (another client may hold it)"
            ) from None
        if isinstance(msg, p.Error):
            if msg.code == p.ErrorCode.AUTH_FAILED:
                raise AuthError(
                    f"the plugin on {self.address} refused this client: {msg.message} — pass the token of "
                    "that instance (token=..., GameConfig.token; `tmstate launch` keeps it in its pid file)"
                )
            if msg.code == p.ErrorCode.VERSION_MISMATCH:
                raise VersionMismatchError(
                    f"protocol version mismatch: this side speaks version "
                    f"{self.protocol_version}, the plugin refused it ({msg.message}) — install "
                    "the plugin from the same tmstate release as the Python package"
                )
            raise PluginError(msg.code, msg.request, msg.message)
        if not isinstance(msg, p.PluginHello):
            raise ProtocolError(
                f"expected the plugin's HELLO first, got {p.message_name(msg.TYPE)} — "
                "this is not the tmstate plugin or it is a broken build"
            )
        try:
            p.check_version(msg, self.protocol_version)
        except VersionMismatchError:
            self._send_quietly(p.encode(p.Bye()))
            raise
        self.plugin_version = msg.plugin_version

    def reconnect(self, wait_s: float = 60.0) -> str:
        """Drop the connection and connect again, trying for up to ``wait_s`` seconds.

        For a game that was restarted: the plugin listens again once it is loaded.
        Save-state blobs stay valid across instances (TMInterface masks pointers).
        """
        self.close()
        retries = max(0, int(wait_s / max(self.retry_delay_s, 0.05)))
        return self.connect(retries=retries, retry_delay_s=max(self.retry_delay_s, 0.05))

    def close(self) -> None:
        """Say BYE (the plugin releases all inputs and listens again) and close. Idempotent."""
        if self._sock is None:
            return
        self._send_quietly(p.encode(p.Bye()))
        self._drop()

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        self._awaiting_action = False
        self._start = self._end = 0  # what was buffered belongs to the dead connection
        self._partial = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def __enter__(self) -> Bridge:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._drop()
        except Exception:
            pass

    # --- socket I/O --------------------------------------------------------------------

    def _require(self) -> socket.socket:
        if self._sock is None:
            raise DisconnectedError(
                f"not connected to the plugin on {self.address} — call connect() first"
            )
        return self._sock

    def _send(self, data: bytes) -> None:
        sock = self._require()
        try:
            sock.sendall(data)
        except OSError as exc:
            self._drop()
            raise DisconnectedError(
                f"lost the connection to the plugin on {self.address} while sending "
                f"({exc.strerror or exc}) — the game closed or dropped us; reconnect()"
            ) from None

    def _send_quietly(self, data: bytes) -> None:
        """Best effort (BYE on the way out): never blocks long on a hung plugin."""
        if self._sock is not None:
            try:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(min(0.5, self.timeout_s)))
                self._sock.sendall(data)
            except OSError:
                pass

    def _recv_into(self, view: memoryview, deadline: float, what: str) -> int:
        """One ``recv_into`` (at least one byte) that gives up at ``deadline``."""
        sock = self._require()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._timeout(what)
        try:
            n = self._poll_recv(sock, view) if self.spin_s > 0 else None
            if n is None:
                # Setting the timeout is a syscall: only when this call's time left is much
                # shorter than the one set (or longer), so the hot path sets it once.
                current = self._sock_timeout
                if current is None or remaining < current * 0.5 or remaining > current:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(remaining))
                    self._sock_timeout = remaining
                n = sock.recv_into(view)
        except (BlockingIOError, socket.timeout):  # SO_RCVTIMEO expired (EAGAIN)
            raise self._timeout(what) from None
        except OSError as exc:
            self._drop()
            raise DisconnectedError(
                f"lost the connection to the plugin on {self.address} while waiting for {what} "
                f"({exc.strerror or exc}) — reconnect() once the game is back"
            ) from None
        if n == 0:
            self._drop()
            raise DisconnectedError(
                f"the plugin on {self.address} closed the connection while we waited for "
                f"{what} (game closed, or it dropped us after its timeout) — reconnect()"
            )
        return n

    def _poll_recv(self, sock: socket.socket, view: memoryview) -> int | None:
        """Non-blocking receives for up to ``spin_s``; None when nothing came in that time."""
        end = time.perf_counter() + self.spin_s
        while True:
            try:
                return sock.recv_into(view, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                if time.perf_counter() >= end:
                    return None

    def _recv_some(self, deadline: float, what: str) -> None:
        """Receive what is available (at least one byte) at the end of the buffer."""
        self._end += self._recv_into(self._view[self._end :], deadline, what)

    def _timeout(self, what: str) -> BridgeTimeoutError:
        return BridgeTimeoutError(
            f"waited in vain for {what} from the plugin on {self.address} (timeout) — the "
            "game may be loading, paused in a menu or hung; raise timeout_s or check the game"
        )

    def _fill(self, n: int, deadline: float, what: str) -> None:
        """Make at least ``n`` bytes (n <= buffer size) available from ``_start``."""
        if self._end - self._start >= n:
            return
        if self._start + n > len(self._buf):
            size = self._end - self._start
            self._buf[:size] = self._buf[self._start : self._end]
            self._start, self._end = 0, size
        while self._end - self._start < n:
            self._recv_some(deadline, what)

    def _receive(self, deadline: float, what: str) -> p.Message:
        """The next whole message from the plugin (STATE decoded straight from the buffer).

        A timeout never leaves the stream out of step: nothing of a message is consumed
        before all of it is here (small messages wait whole in the buffer, a large one in
        :attr:`_partial`), so the next call resumes the same message where this one stopped.
        """
        if self._partial is not None:
            return self._finish_large(self._partial, deadline, what)
        self._fill(p.HEADER_SIZE, deadline, what)
        msg_type, length = p.HEADER.unpack_from(self._buf, self._start)
        try:
            p.check_header(msg_type, length)
        except ProtocolError:
            self._drop()  # the stream cannot be trusted any more
            raise
        if p.HEADER_SIZE + length > len(self._buf):
            self._start += p.HEADER_SIZE
            self._partial = _PartialMessage(msg_type, bytearray(length))
            return self._finish_large(self._partial, deadline, what)
        self._fill(p.HEADER_SIZE + length, deadline, what)
        self._start += p.HEADER_SIZE
        if msg_type == p.PluginMsg.STATE and length == p.STATE_SIZE:
            msg = p.read_state(self._buf, self._start)
            self._start += p.STATE_SIZE
            if self._start == self._end:
                self._start = self._end = 0
            return msg
        payload = self._view[self._start : self._start + length]
        self._start += length
        if self._start == self._end:
            self._start = self._end = 0
        return self._decode(msg_type, payload, copy=True)

    def _finish_large(self, partial: _PartialMessage, deadline: float, what: str) -> p.Message:
        """Receive the rest of a payload bigger than the buffer straight into its own array."""
        view = memoryview(partial.payload)
        n = len(partial.payload)
        if partial.have < n and self._end > self._start:  # bytes that came with the header
            take = min(n - partial.have, self._end - self._start)
            view[partial.have : partial.have + take] = self._view[self._start : self._start + take]
            partial.have += take
            self._start += take
        if self._start == self._end:
            self._start = self._end = 0
        while partial.have < n:  # kept up to date, so a timeout here resumes next call
            partial.have += self._recv_into(view[partial.have :], deadline, what)
        self._partial = None
        return self._decode(partial.msg_type, view, copy=False)

    @staticmethod
    def _decode(msg_type: int, payload: memoryview, copy: bool) -> p.Message:
        if msg_type == p.PluginMsg.FRAME and len(payload) >= 8:
            width, height = p.HEADER.unpack_from(payload, 0)  # two uint32, same layout
            p.check_frame_size(width, height, len(payload) - 8)
            pixels = np.frombuffer(payload, dtype=np.uint8, offset=8).reshape(height, width, 4)
            return p.Frame(width, height, pixels.copy() if copy else pixels)
        return p.decode_payload(msg_type, bytes(payload))

    def _pump(self, deadline: float, what: str) -> p.Message:
        """Receive one message and file STATE/FRAME where they belong; return it."""
        msg = self._receive(deadline, what)
        if isinstance(msg, p.State):
            self.last_state = msg.state
            self.last_seq = msg.seq
            self.last_flags = msg.flags
            if msg.observed:
                self._states.append(msg)
            else:
                self._awaiting_action = True
        elif isinstance(msg, p.Frame):
            pixels = msg.pixels
            self.last_frame = pixels if isinstance(pixels, np.ndarray) else msg.to_array()
        return msg

    def _deadline(self, timeout_s: float | None) -> float:
        return time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)

    # --- waiting for answers -----------------------------------------------------------

    def _raise_error(self, msg: p.Error) -> None:
        if msg.code == p.ErrorCode.VERSION_MISMATCH:
            raise VersionMismatchError(f"plugin: {msg.message}")
        raise PluginError(msg.code, msg.request, msg.message)

    def _wait_state(self, deadline: float, what: str, *, after_rewind: bool = False) -> GameState:
        """Wait for the next control-mode STATE (and its FRAME when auto frames are on)."""
        while True:
            msg = self._pump(deadline, what)
            if isinstance(msg, p.State):
                if msg.observed or (after_rewind and not msg.after_rewind):
                    continue
                if self.auto_frame is not None:
                    self._wait_frame(deadline, "the auto FRAME after a STATE")
                return msg.state
            if isinstance(msg, p.Error):
                self._raise_error(msg)
            if not isinstance(msg, p.Frame):
                raise ProtocolError(
                    f"expected STATE, got {p.message_name(msg.TYPE)} from the plugin — "
                    "client and plugin are out of step; reconnect()"
                )

    def _wait_frame(self, deadline: float, what: str) -> np.ndarray:
        while True:
            msg = self._pump(deadline, what)
            if isinstance(msg, p.Frame):
                assert self.last_frame is not None  # _pump stores every FRAME there
                return self.last_frame
            if isinstance(msg, p.Error):
                self._raise_error(msg)
            if not isinstance(msg, p.State):
                raise ProtocolError(
                    f"expected FRAME, got {p.message_name(msg.TYPE)} from the plugin — "
                    "client and plugin are out of step; reconnect()"
                )

    def _request(self, msg: p.Message, timeout_s: float | None, expect: type = p.Ok) -> p.Message:
        """Send a command and wait for its answer (OK of that type, or ``expect``)."""
        deadline = self._deadline(timeout_s)
        self._send(p.encode(msg))
        what = f"the answer to {p.message_name(msg.TYPE)}"
        while True:
            answer = self._pump(deadline, what)
            if isinstance(answer, p.Error):
                self._raise_error(answer)
            if isinstance(answer, expect):
                if isinstance(answer, p.Ok) and answer.request != msg.TYPE:
                    raise ProtocolError(
                        f"expected OK for {p.message_name(msg.TYPE)}, got OK for "
                        f"{p.message_name(answer.request)} — client and plugin are out of step"
                    )
                return answer
            if not isinstance(answer, (p.State, p.Frame)):
                raise ProtocolError(
                    f"expected {expect.__name__} for {p.message_name(msg.TYPE)}, got "
                    f"{p.message_name(answer.TYPE)} — client and plugin are out of step"
                )

    def _require_control(self, what: str) -> None:
        if self.observing:
            raise BridgeError(f"{what} needs control mode; call set_mode(observe=False) first")

    # --- the step cycle ----------------------------------------------------------------

    def next_state(self, timeout_s: float | None = None) -> GameState:
        """The STATE the plugin is waiting on (already received, or the next to come).

        In observe mode: the oldest streamed state not yet read.
        """
        deadline = self._deadline(timeout_s)
        if self.observing:
            while not self._states:
                answer = self._pump(deadline, "a streamed STATE")
                if isinstance(answer, p.Error):
                    self._raise_error(answer)
            return self._states.popleft().state
        if self._awaiting_action and self.last_state is not None:
            return self.last_state
        return self._wait_state(deadline, "the next STATE")

    def act(self, action: Action, timeout_s: float | None = None) -> GameState:
        """Hold ``action`` from the next tick; return the STATE one action period later.

        With auto frames on, the frame of that state is in :attr:`last_frame` on return.
        """
        return self.act_analog(
            action.analog_steer, action.analog_gas, p.BUTTON_DOWN if action.brake else 0, timeout_s
        )

    def act_analog(self, steer: int, gas: int, buttons: int = 0, timeout_s: float | None = None) -> GameState:
        """:meth:`act` with raw values: steer -65536..65536, gas 0..65536, button bits.

        TMNF's acceleration is on or off: the plugin presses accelerate for a gas of at
        least :data:`~tmstate.link.protocol.GAS_ON` (19661, 30 %) or button bit 0, brake
        for bit 1 (docs/protocol.md, ACTION)."""
        deadline = self._deadline(timeout_s)
        if not self._awaiting_action:
            self._require_control("act()")
            self._wait_state(deadline, "the STATE to act on")
        if self.last_flags & 1:  # StateFlag.FINISHED: no STATE would ever answer
            raise BridgeError(
                f"the race finished at race time {getattr(self.last_state, 'race_time_ms', '?')} ms and no STATE "
                "follows a finish — call rewind() or restart() before acting again"
            )
        self._send(p.encode_action(steer, gas, buttons))
        self._awaiting_action = False
        return self._wait_state(deadline, "the STATE after ACTION")

    def rewind(self, blob: bytes | SavedState, timeout_s: float | None = None) -> GameState:
        """Restore a save state; return the STATE of the restored state."""
        if isinstance(blob, p.SavedState):
            blob = blob.blob
        self._require_control("rewind()")
        deadline = self._deadline(timeout_s)
        was_awaiting = self._awaiting_action
        self._send(p.encode(p.Rewind(bytes(blob))))
        self._awaiting_action = False
        try:
            return self._wait_state(deadline, "the STATE after REWIND", after_rewind=True)
        except PluginError:
            self._awaiting_action = was_awaiting  # a refused REWIND ends no wait
            raise

    def respawn(self, timeout_s: float | None = None) -> GameState:
        """Respawn at the last checkpoint; return the STATE at the next sync tick."""
        self._require_control("respawn()")
        self._request(p.Respawn(), timeout_s)
        self._awaiting_action = False
        return self._wait_state(self._deadline(timeout_s), "the STATE after RESPAWN")

    def restart(self, timeout_s: float | None = None) -> GameState:
        """Restart the race; return the STATE at race time 0."""
        self._require_control("restart()")
        self._request(p.Restart(), timeout_s)
        self._awaiting_action = False
        return self._wait_state(self._deadline(timeout_s), "the STATE at race time 0 after RESTART")

    # --- commands answered inside the wait --------------------------------------------

    def save_state(self, timeout_s: float | None = None) -> SavedState:
        """A save state of the current tick: ``race_time_ms`` and the opaque blob."""
        answer = self._request(p.SaveState(), timeout_s, expect=p.SavedState)
        return answer  # type: ignore[return-value]

    def set_action_period(self, ms: int, timeout_s: float | None = None) -> None:
        """Race time between two STATEs in control mode (a multiple of 10, 10..100000 ms)."""
        self._request(p.SetActionPeriod(check_action_period_ms(ms, "action period")), timeout_s)

    def set_speed(self, speed: float, timeout_s: float | None = None) -> None:
        """Game speed (1 = real time; >1 faster), at most 100: above that TMInterface may
        drop inputs (its SetInputState docs), so the plugin refuses it."""
        if not 0 < speed <= p.MAX_GAME_SPEED:
            raise ConfigError(
                f"game speed must be > 0 and <= {p.MAX_GAME_SPEED:g}, got {speed} — above "
                f"{p.MAX_GAME_SPEED:g}x TMInterface may drop inputs; run more game instances instead"
            )
        self._request(p.SetSpeed(float(speed)), timeout_s)

    def set_steer_mode(self, binary: bool, timeout_s: float | None = None) -> None:
        """Steer through the analog Steer input (False, the default) or the Left/Right keys
        (True: |steer| >= 0.5 presses the key, full deflection; for a game that ignores
        analog steering without a bound analog device)."""
        self._request(p.SetSteerMode(bool(binary)), timeout_s)

    def get_map(self, timeout_s: float | None = None) -> p.MapInfo:
        """The loaded map's uid and name (both empty when the game reports none)."""
        return self._request(p.GetMap(), timeout_s, expect=p.MapInfo)  # type: ignore[return-value]

    def prevent_finish(self, enabled: bool = True, timeout_s: float | None = None) -> None:
        """Keep the race running past the finish line (the finish STATE still arrives)."""
        self._request(p.PreventFinish(bool(enabled)), timeout_s)

    def request_frame(self, width: int = 0, height: int = 0, timeout_s: float | None = None) -> np.ndarray:
        """The current image as (height, width, 4) uint8 BGRA; (0, 0) = the window size."""
        if width < 0 or height < 0:
            raise ConfigError(f"frame size must be >= 0, got {width}x{height}")
        self._request(p.RequestFrame(int(width), int(height)), timeout_s, expect=p.Frame)
        return self.last_frame  # type: ignore[return-value]

    def execute(self, command: str, timeout_s: float | None = None) -> None:
        """Run a TMInterface console command (e.g. ``"set countdown_speed 10"``)."""
        self._request(p.ExecuteCommand(command), timeout_s)

    def set_timeout(self, ms: int, timeout_s: float | None = None) -> None:
        """How long the plugin waits for us before it releases inputs and drops us (>= 100 ms)."""
        if ms < 100:
            raise ConfigError(f"plugin timeout must be >= 100 ms, got {ms}")
        self._request(p.SetTimeout(int(ms)), timeout_s)

    def set_mode(self, observe: bool, timeout_s: float | None = None) -> None:
        """Observe mode (states stream, the plugin never waits nor sets inputs) or control mode."""
        self._request(p.SetMode(bool(observe)), timeout_s)
        self.observing = bool(observe)
        self._awaiting_action = False
        if not observe:
            self._states.clear()  # streamed states nobody read are stale now

    def set_auto_frame(self, width: int, height: int, timeout_s: float | None = None) -> None:
        """Send a FRAME of this size after every control-mode STATE; (0, 0) turns it off."""
        if width < 0 or height < 0:
            raise ConfigError(f"frame size must be >= 0, got {width}x{height}")
        self._request(p.SetAutoFrame(int(width), int(height)), timeout_s)
        self.auto_frame = None if (width, height) == (0, 0) else (int(width), int(height))

    # --- observe mode ------------------------------------------------------------------

    def observe(self, timeout_s: float | None = None) -> Iterator[GameState]:
        """Switch to observe mode and yield states as the plugin streams them.

        Ends (without error) when the caller stops iterating — the plugin stays in observe
        mode until :meth:`set_mode` ``(False)``; a stream silent for ``timeout_s`` raises
        :class:`BridgeTimeoutError`.
        """
        if not self.observing:
            self.set_mode(True, timeout_s)
        while self.observing:
            yield self.next_state(timeout_s)

"""The wire protocol between the plugin and Python: bytes <-> messages (docs/protocol.md).

Every message is ``uint32 type, uint32 length, payload`` little-endian. This module knows
the layout of every payload and nothing about sockets: :mod:`tmstate.link.bridge` moves the
bytes, tests and fake plugins use :func:`encode` and :class:`MessageReader` directly.

The STATE record is on the hot path (one per action step), so it is read with one
precompiled :class:`struct.Struct` straight out of the receive buffer
(:func:`read_state`), without building an intermediate message object.

``struct`` is used rather than a declarative library (construct, kaitai) because the
formats are fixed, tiny and speed-critical: precompiled ``Struct.unpack_from`` is the
fastest way Python has to read them.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tmstate.errors import ProtocolError, VersionMismatchError
from tmstate.core.state import ANALOG_MAX, GameState

PROTOCOL_VERSION = 3
"""The protocol version this side speaks; the handshake refuses any other.
Version 2: pedals through TMNF's binary inputs, SET_STEER_MODE, GET_MAP/MAP, game speed <= 100.
Version 3: the client's HELLO also carries the instance's auth token (docs/protocol.md)."""

GAS_ON = 19661
"""An ACTION gas at or above this presses accelerate (TMNF's analog-gas threshold, 30 %)."""

MAX_GAME_SPEED = 100.0
"""Highest game speed the plugin accepts: above it TMInterface may drop inputs."""

TOKEN_SIZE = 32
"""Bytes of the auth token field of HELLO: the token in ASCII, zero-filled (all zero = none)."""

DEFAULT_PORT = 8477
"""The TCP port the plugin listens on unless its ``tmstate_listen`` variable (``ADDRESS:PORT``) says otherwise."""

MAX_PAYLOAD = 64 * 1024 * 1024
"""Largest payload accepted (bytes); a header announcing more is refused unread."""

HEADER = struct.Struct("<II")
HEADER_SIZE = HEADER.size

STATE_SIZE = 112
"""Bytes of the STATE record."""

# seq, race_time_ms, flags, position×3, velocity×3, display_speed_kmh, yaw, pitch, roll,
# angular_velocity×3, checkpoint_count, checkpoint_target, lap_count, respawn_count, gear,
# rpm_milli, input_steer, input_gas, input_brake, wheel_contact×4, wheel_material×4, reserved
STATE_RECORD = struct.Struct("<IiI3i3ii3i3i9i4B4BI")

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

# Fixed-point scales of the STATE record (integer units per SI unit).
MM_PER_M = 1000.0
MICRORAD_PER_RAD = 1_000_000.0
RPM_MILLI = 1000.0


class ClientMsg(enum.IntEnum):
    """Message types the client (Python) sends to the plugin."""

    HELLO = 1
    ACTION = 2
    SET_ACTION_PERIOD = 3
    SET_SPEED = 4
    SAVE_STATE = 5
    REWIND = 6
    RESPAWN = 7
    RESTART = 8
    PREVENT_FINISH = 9
    REQUEST_FRAME = 10
    EXECUTE_COMMAND = 11
    SET_TIMEOUT = 12
    SET_MODE = 13
    SET_AUTO_FRAME = 14
    BYE = 15
    SET_STEER_MODE = 16
    GET_MAP = 17


class PluginMsg(enum.IntEnum):
    """Message types the plugin sends to the client."""

    HELLO = 64
    STATE = 65
    SAVED_STATE = 66
    FRAME = 67
    OK = 68
    ERROR = 69
    MAP = 70


class ErrorCode(enum.IntEnum):
    """Codes of the plugin's ERROR message."""

    VERSION_MISMATCH = 1
    UNKNOWN_TYPE = 2
    BAD_PAYLOAD = 3
    NOT_IN_RACE = 4
    REWIND_FAILED = 5
    FRAME_FAILED = 6
    AUTH_FAILED = 7


class StateFlag(enum.IntFlag):
    """Bits of the STATE record's ``flags``."""

    FINISHED = 1
    IN_RACE = 2
    OBSERVED = 4
    AFTER_REWIND = 8


BUTTON_UP = 1
BUTTON_DOWN = 2

MESSAGE_NAMES: dict[int, str] = {
    **{m.value: m.name for m in ClientMsg},
    **{m.value: m.name for m in PluginMsg},
}


def message_name(msg_type: int) -> str:
    """A readable name for a type number (``HELLO``, ``STATE``, or ``type 99``)."""
    return MESSAGE_NAMES.get(msg_type, f"type {msg_type}")


# --- messages ---------------------------------------------------------------------------
# Each message is declared once, as a dataclass: ``TYPE`` its type number, ``FIXED`` the
# struct format (little-endian, no "<") of its fixed part, one field per code in field
# order, and ``TAIL`` "str" (UTF-8) or "bytes" when its last field is a variable tail. Bool
# fields travel as uint32 0/1. encode/decode below are generic over this; the size tables
# (_FIXED_SIZES, _MIN_SIZES) are derived from it. STATE alone has its own fast codec.


@dataclass(frozen=True, slots=True)
class Hello:
    """Client HELLO: the protocol version it speaks, the instance's auth token (``TOKEN_SIZE``
    bytes, zero-filled; empty = none) and a name for the plugin's log."""

    version: int = PROTOCOL_VERSION
    token: bytes = b""
    name: str = "tmstate"
    TYPE = ClientMsg.HELLO
    FIXED, TAIL = f"I{TOKEN_SIZE}s", "str"


@dataclass(frozen=True, slots=True)
class ActionMsg:
    """Inputs from the next tick on: analog steer -65536..65536, gas 0..65536, buttons."""

    steer: int = 0
    gas: int = 0
    buttons: int = 0
    TYPE = ClientMsg.ACTION
    FIXED, TAIL = "iiI", None


@dataclass(frozen=True, slots=True)
class SetActionPeriod:
    ms: int = 50
    TYPE = ClientMsg.SET_ACTION_PERIOD
    FIXED, TAIL = "I", None


@dataclass(frozen=True, slots=True)
class SetSpeed:
    speed: float = 1.0
    TYPE = ClientMsg.SET_SPEED
    FIXED, TAIL = "f", None


@dataclass(frozen=True, slots=True)
class SaveState:
    TYPE = ClientMsg.SAVE_STATE
    FIXED, TAIL = "", None


@dataclass(frozen=True, slots=True)
class Rewind:
    blob: bytes = b""
    TYPE = ClientMsg.REWIND
    FIXED, TAIL = "", "bytes"


@dataclass(frozen=True, slots=True)
class Respawn:
    TYPE = ClientMsg.RESPAWN
    FIXED, TAIL = "", None


@dataclass(frozen=True, slots=True)
class Restart:
    TYPE = ClientMsg.RESTART
    FIXED, TAIL = "", None


@dataclass(frozen=True, slots=True)
class PreventFinish:
    enabled: bool = True
    TYPE = ClientMsg.PREVENT_FINISH
    FIXED, TAIL = "I", None


@dataclass(frozen=True, slots=True)
class RequestFrame:
    width: int = 0
    height: int = 0
    TYPE = ClientMsg.REQUEST_FRAME
    FIXED, TAIL = "II", None


@dataclass(frozen=True, slots=True)
class ExecuteCommand:
    command: str = ""
    TYPE = ClientMsg.EXECUTE_COMMAND
    FIXED, TAIL = "", "str"


@dataclass(frozen=True, slots=True)
class SetTimeout:
    ms: int = 2000
    TYPE = ClientMsg.SET_TIMEOUT
    FIXED, TAIL = "I", None


@dataclass(frozen=True, slots=True)
class SetMode:
    observe: bool = False
    TYPE = ClientMsg.SET_MODE
    FIXED, TAIL = "I", None


@dataclass(frozen=True, slots=True)
class SetAutoFrame:
    width: int = 0
    height: int = 0
    TYPE = ClientMsg.SET_AUTO_FRAME
    FIXED, TAIL = "II", None


@dataclass(frozen=True, slots=True)
class Bye:
    TYPE = ClientMsg.BYE
    FIXED, TAIL = "", None


@dataclass(frozen=True, slots=True)
class SetSteerMode:
    """Steering through the analog Steer (``binary=False``) or the Left/Right keys."""

    binary: bool = False
    TYPE = ClientMsg.SET_STEER_MODE
    FIXED, TAIL = "I", None


@dataclass(frozen=True, slots=True)
class GetMap:
    TYPE = ClientMsg.GET_MAP
    FIXED, TAIL = "", None


@dataclass(frozen=True, slots=True)
class MapInfo:
    """The loaded map (``GetCurrentChallenge()``'s Uid and Name; both empty: no map).

    On the wire: uint32 byte length of the uid, then uid and name as one UTF-8 tail.
    Build one with :meth:`of`; read :attr:`uid` and :attr:`name`."""

    uid_length: int = 0
    text: str = ""
    TYPE = PluginMsg.MAP
    FIXED, TAIL = "I", "str"

    @classmethod
    def of(cls, uid: str, name: str) -> MapInfo:
        return cls(len(uid.encode("utf-8")), uid + name)

    def _split(self) -> tuple[str, str]:
        raw = self.text.encode("utf-8")
        if self.uid_length > len(raw):
            raise ProtocolError(
                f"MAP announces a uid of {self.uid_length} bytes in {len(raw)} bytes of text — "
                "truncated or malformed message"
            )
        try:
            return raw[: self.uid_length].decode("utf-8"), raw[self.uid_length :].decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("MAP splits its text inside a UTF-8 character — malformed message") from None

    @property
    def uid(self) -> str:
        return self._split()[0]

    @property
    def name(self) -> str:
        return self._split()[1]


@dataclass(frozen=True, slots=True)
class PluginHello:
    """Plugin HELLO: its protocol version and the plugin's own version string."""

    version: int = PROTOCOL_VERSION
    plugin_version: str = ""
    TYPE = PluginMsg.HELLO
    FIXED, TAIL = "I", "str"


@dataclass(slots=True)
class State:
    """A STATE record: the counter, the raw flags and the decoded :class:`GameState`.

    Its payload is the 112-byte record :data:`STATE_RECORD` (:func:`read_state`,
    :func:`encode_state_record`), not a field-per-code layout."""

    seq: int = 0
    flags: int = 0
    state: GameState = field(default_factory=GameState)
    TYPE = PluginMsg.STATE
    FIXED, TAIL = STATE_RECORD.format.lstrip("<"), None

    @property
    def observed(self) -> bool:
        return bool(self.flags & 4)  # StateFlag.OBSERVED; plain int: IntFlag.__and__ is slow

    @property
    def after_rewind(self) -> bool:
        return bool(self.flags & 8)  # StateFlag.AFTER_REWIND


@dataclass(frozen=True, slots=True)
class SavedState:
    """A save state: the race time it was taken at and TMInterface's opaque blob."""

    race_time_ms: int = 0
    blob: bytes = b""
    TYPE = PluginMsg.SAVED_STATE
    FIXED, TAIL = "i", "bytes"


@dataclass(frozen=True, slots=True)
class Frame:
    """An image, BGRA, top row first: ``width * height * 4`` bytes."""

    width: int = 0
    height: int = 0
    pixels: bytes | np.ndarray = b""  # the bridge keeps a received frame as an array
    TYPE = PluginMsg.FRAME
    FIXED, TAIL = "II", "bytes"

    def to_array(self) -> np.ndarray:
        """The pixels as a (height, width, 4) uint8 BGRA array (no copy when possible)."""
        return np.frombuffer(self.pixels, dtype=np.uint8).reshape(self.height, self.width, 4)


@dataclass(frozen=True, slots=True)
class Ok:
    """The plugin accepted the request of type ``request``."""

    request: int = 0
    TYPE = PluginMsg.OK
    FIXED, TAIL = "I", None


@dataclass(frozen=True, slots=True)
class Error:
    """The plugin refused the request of type ``request`` (0 if none) with ``code``."""

    code: int = 0
    request: int = 0
    message: str = ""
    TYPE = PluginMsg.ERROR
    FIXED, TAIL = "II", "str"


Message = (
    Hello | ActionMsg | SetActionPeriod | SetSpeed | SaveState | Rewind | Respawn | Restart
    | PreventFinish | RequestFrame | ExecuteCommand | SetTimeout | SetMode | SetAutoFrame
    | Bye | SetSteerMode | GetMap | PluginHello | State | SavedState | Frame | Ok | Error | MapInfo
)

MESSAGES: dict[int, type] = {cls.TYPE.value: cls for cls in (
    Hello, ActionMsg, SetActionPeriod, SetSpeed, SaveState, Rewind, Respawn, Restart, PreventFinish,
    RequestFrame, ExecuteCommand, SetTimeout, SetMode, SetAutoFrame, Bye, SetSteerMode, GetMap,
    PluginHello, State, SavedState, Frame, Ok, Error, MapInfo)}
"""The class of every message type number."""


@dataclass(frozen=True, slots=True)
class _Layout:
    """How one message class travels: its fixed part, its field names, which are bool, its tail."""

    cls: type
    fixed: struct.Struct
    names: tuple[str, ...]  # fixed-part fields, in order
    bools: tuple[int, ...]  # positions of bool fields among them
    padded: tuple[int, ...]  # positions of fixed-size byte fields ("32s"): zero padding stripped on decode
    tail: str | None  # "str", "bytes" or None
    tail_name: str | None


def _layout(cls: Any) -> _Layout:  # a message class (its FIXED and TAIL are class attributes)
    fields = dataclasses.fields(cls)
    tail = cls.TAIL
    fixed_fields = fields[:-1] if tail else fields
    fixed = struct.Struct("<" + cls.FIXED)
    if cls is not State and len(fixed_fields) != len(fixed.unpack(bytes(fixed.size))):  # "32s" is one field
        raise TypeError(f"{cls.__name__}: FIXED {cls.FIXED!r} does not match its fields")  # a bug here
    return _Layout(cls, fixed, tuple(f.name for f in fixed_fields),
                   tuple(i for i, f in enumerate(fixed_fields) if f.type in ("bool", bool)),
                   tuple(i for i, f in enumerate(fixed_fields) if f.type in ("bytes", bytes)),
                   tail, fields[-1].name if tail else None)


_LAYOUTS: dict[int, _Layout] = {t: _layout(cls) for t, cls in MESSAGES.items()}

_FIXED_SIZES: dict[int, int] = {t: lay.fixed.size for t, lay in _LAYOUTS.items() if lay.tail is None}
"""Payload sizes of the messages without a variable tail (derived from the declarations)."""

_MIN_SIZES: dict[int, int] = {t: lay.fixed.size for t, lay in _LAYOUTS.items() if lay.tail is not None}
"""Fixed parts of the messages with a variable tail (string or blob)."""

# --- fixed point -----------------------------------------------------------------------

def to_fixed(value: float, scale: float) -> int:
    """``value * scale`` rounded half away from zero and clamped to int32 (the spec's rule)."""
    scaled = float(value) * scale
    if math.isnan(scaled):
        return 0
    if scaled >= INT32_MAX:
        return INT32_MAX
    if scaled <= INT32_MIN:
        return INT32_MIN
    return int(math.copysign(math.floor(abs(scaled) + 0.5), scaled))


def _clamp_i32(value: int) -> int:
    return max(INT32_MIN, min(INT32_MAX, int(value)))


def encode_state_record(state: GameState, seq: int = 1, flags: int | None = None) -> bytes:
    """Pack a :class:`GameState` as the 112-byte STATE record (what the plugin sends).

    ``flags`` defaults to the state's own ``finished``/``in_race``; pass it to set
    OBSERVED or AFTER_REWIND as well. Used by fake plugins and tests, not on a hot path.
    """
    if flags is None:
        flags = (StateFlag.FINISHED if state.finished else 0) | (
            StateFlag.IN_RACE if state.in_race else 0
        )
    pos = [to_fixed(v, MM_PER_M) for v in state.position]
    vel = [to_fixed(v, MM_PER_M) for v in state.velocity]
    ang = [to_fixed(v, MICRORAD_PER_RAD) for v in state.angular_velocity]
    return STATE_RECORD.pack(
        seq & 0xFFFFFFFF,
        _clamp_i32(state.race_time_ms),
        int(flags) & 0xFFFFFFFF,
        *pos,
        *vel,
        _clamp_i32(state.display_speed_kmh),
        to_fixed(state.yaw, MICRORAD_PER_RAD),
        to_fixed(state.pitch, MICRORAD_PER_RAD),
        to_fixed(state.roll, MICRORAD_PER_RAD),
        *ang,
        _clamp_i32(state.checkpoint_count),
        _clamp_i32(state.checkpoint_target),
        _clamp_i32(state.lap_count),
        _clamp_i32(state.respawn_count),
        _clamp_i32(state.gear),
        to_fixed(state.rpm, RPM_MILLI),
        to_fixed(state.steer, ANALOG_MAX),
        to_fixed(state.gas, ANALOG_MAX),
        to_fixed(state.brake, ANALOG_MAX),
        *(1 if c else 0 for c in state.wheel_contact),
        *(int(m) & 0xFF for m in state.wheel_material),
        0,
    )


_unpack_state = STATE_RECORD.unpack_from
_frombuffer = np.frombuffer
_I32_DTYPE = np.dtype("<i4")
_F64 = np.float64
_VECTOR_SCALES = np.array([MM_PER_M] * 6 + [1.0] + [MICRORAD_PER_RAD] * 6)
"""Divisors of the 13 int32 from offset 12: position, velocity, speed, yaw/pitch/roll, angular velocity."""


def read_state(buffer, offset: int = 0) -> State:
    """Decode the 112-byte STATE record at ``offset`` of ``buffer`` (the hot path).

    The caller guarantees at least :data:`STATE_SIZE` bytes from ``offset``. The three
    vectors are converted in one numpy operation; divisions (not multiplications by
    0.001) so that values on the fixed-point grid round-trip exactly.
    """
    v = _unpack_state(buffer, offset)
    flags = v[2]
    vectors = _frombuffer(buffer, _I32_DTYPE, 13, offset + 12).astype(_F64)
    vectors /= _VECTOR_SCALES
    state = GameState(
        race_time_ms=v[1],
        position=vectors[0:3],
        velocity=vectors[3:6],
        display_speed_kmh=v[9],
        yaw=v[10] / MICRORAD_PER_RAD,
        pitch=v[11] / MICRORAD_PER_RAD,
        roll=v[12] / MICRORAD_PER_RAD,
        angular_velocity=vectors[10:13],
        checkpoint_count=v[16],
        checkpoint_target=v[17],
        lap_count=v[18],
        respawn_count=v[19],
        gear=v[20],
        rpm=v[21] / RPM_MILLI,
        steer=v[22] / ANALOG_MAX,
        gas=v[23] / ANALOG_MAX,
        brake=v[24] / ANALOG_MAX,
        wheel_contact=(v[25] != 0, v[26] != 0, v[27] != 0, v[28] != 0),
        wheel_material=v[29:33],
        finished=bool(flags & 1),
        in_race=bool(flags & 2),
    )
    return State(v[0], flags, state)


# --- encoding --------------------------------------------------------------------------


def encode_payload(msg: Message) -> bytes:
    """The payload bytes of ``msg`` (without the 8-byte header)."""
    layout = _LAYOUTS.get(getattr(msg, "TYPE", -1))
    if layout is None or type(msg) is not layout.cls:
        raise ProtocolError(f"cannot encode {msg!r}: not a protocol message")
    if isinstance(msg, State):
        return encode_state_record(msg.state, msg.seq, msg.flags)
    if isinstance(msg, Frame):
        check_frame_size(msg.width, msg.height, len(msg.pixels))
    values = [getattr(msg, name) for name in layout.names]
    for i in layout.bools:
        values[i] = 1 if values[i] else 0
    payload = layout.fixed.pack(*values)
    if layout.tail == "str":
        return payload + getattr(msg, str(layout.tail_name)).encode("utf-8")
    if layout.tail == "bytes":
        return payload + bytes(getattr(msg, str(layout.tail_name)))
    return payload


def encode(msg: Message) -> bytes:
    """The whole message: header (type, length) and payload."""
    payload = encode_payload(msg)
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(
            f"{message_name(msg.TYPE)} payload of {len(payload)} bytes exceeds MAX_PAYLOAD "
            f"({MAX_PAYLOAD}) — send less"
        )
    return HEADER.pack(int(msg.TYPE), len(payload)) + payload


_ACTION_MESSAGE = struct.Struct("<IIiiI")


def encode_action(steer: int, gas: int, buttons: int) -> bytes:
    """A whole ACTION message in one pack (the hot path of :meth:`Bridge.act`)."""
    return _ACTION_MESSAGE.pack(ClientMsg.ACTION, 12, steer, gas, buttons)


# --- decoding --------------------------------------------------------------------------


def decode_header(data) -> tuple[int, int]:
    """(type, length) from the first 8 bytes; refuses unknown types and oversized lengths.

    Checking here, before any payload byte is read, is what lets a reader drop a
    connection that announces 4 GiB without trying to receive it.
    """
    if len(data) < HEADER_SIZE:
        raise ProtocolError(
            f"truncated header: expected {HEADER_SIZE} bytes, got {len(data)} — "
            "the peer closed mid-message"
        )
    msg_type, length = HEADER.unpack_from(data, 0)
    check_header(msg_type, length)
    return msg_type, length


def check_header(msg_type: int, length: int) -> None:
    """Raise :class:`ProtocolError` for an unknown type or a length above MAX_PAYLOAD."""
    if length > MAX_PAYLOAD:
        raise ProtocolError(
            f"{message_name(msg_type)} announces a payload of {length} bytes, more than "
            f"MAX_PAYLOAD ({MAX_PAYLOAD}) — the peer is not speaking tmstate protocol "
            f"{PROTOCOL_VERSION}"
        )
    if msg_type not in MESSAGE_NAMES:
        raise ProtocolError(
            f"unknown message type {msg_type} (expected 1..17 or 64..70) — the peer is not "
            f"speaking tmstate protocol {PROTOCOL_VERSION}"
        )


def check_frame_size(width: int, height: int, pixel_bytes: int) -> None:
    """Raise :class:`ProtocolError` unless ``pixel_bytes`` is ``width * height * 4`` (BGRA).

    One rule for the three places that meet a FRAME: encoding, decoding, and the bridge,
    which reads the pixels straight into an array."""
    if pixel_bytes != width * height * 4:
        raise ProtocolError(
            f"FRAME of {width}x{height} must carry {width * height * 4} bytes of pixels (BGRA), "
            f"got {pixel_bytes} — truncated or malformed message"
        )


def _need(msg_type: int, payload, size: int, exact: bool) -> None:
    n = len(payload)
    if n < size or (exact and n != size):
        what = "exactly" if exact else "at least"
        raise ProtocolError(
            f"{message_name(msg_type)} payload must be {what} {size} bytes, got {n} — "
            "truncated or malformed message"
        )


def _text(msg_type: int, data) -> str:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"{message_name(msg_type)} carries a string that is not UTF-8 ({exc.reason} at "
            f"byte {exc.start})"
        ) from None


def decode_payload(msg_type: int, payload) -> Message:
    """The message of type ``msg_type`` carried by ``payload`` (bytes-like, whole)."""
    check_header(msg_type, len(payload))
    if msg_type in _FIXED_SIZES:
        _need(msg_type, payload, _FIXED_SIZES[msg_type], exact=True)
    else:
        _need(msg_type, payload, _MIN_SIZES[msg_type], exact=False)
    layout = _LAYOUTS[msg_type]
    if layout.cls is State:
        return read_state(payload)
    values = list(layout.fixed.unpack_from(payload))
    for i in layout.bools:
        if values[i] > 1:
            raise ProtocolError(f"{message_name(msg_type)} takes 0 or 1, got {values[i]}")
        values[i] = values[i] == 1
    for i in layout.padded:
        values[i] = values[i].rstrip(b"\0")
    if layout.tail == "str":
        values.append(_text(msg_type, payload[layout.fixed.size:]))
    elif layout.tail == "bytes":
        values.append(bytes(payload[layout.fixed.size:]))
    if layout.cls is Frame:
        check_frame_size(values[0], values[1], len(values[2]))
    return layout.cls(*values)


def check_version(hello: Hello | PluginHello, ours: int = PROTOCOL_VERSION) -> None:
    """Raise :class:`VersionMismatchError` naming both versions when they differ."""
    if hello.version != ours:
        peer = "plugin" if isinstance(hello, PluginHello) else "client"
        raise VersionMismatchError(
            f"protocol version mismatch: this side speaks version {ours}, the {peer} "
            f"speaks version {hello.version} — install the plugin (plugins/tmstate.as) "
            "from the same tmstate release as the Python package"
        )


class MessageReader:
    """Incremental decoder: feed it bytes as they arrive, get whole messages out.

    The header is checked as soon as its 8 bytes are in, so an oversized length or an
    unknown type raise before any payload byte is waited for. :meth:`close` reports a
    stream that ended inside a message.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._header: tuple[int, int] | None = None

    def feed(self, data: bytes) -> list[Message]:
        """Append ``data`` and return the messages now complete (possibly none)."""
        self._buffer += data
        return list(self._drain())

    def _drain(self) -> Iterator[Message]:
        buf = self._buffer
        start = 0
        try:
            while True:
                if self._header is None:
                    if len(buf) - start < HEADER_SIZE:
                        return
                    self._header = decode_header(memoryview(buf)[start : start + HEADER_SIZE])
                    start += HEADER_SIZE
                msg_type, length = self._header
                if len(buf) - start < length:
                    return
                payload = bytes(buf[start : start + length])
                start += length
                self._header = None
                yield decode_payload(msg_type, payload)
        finally:
            del buf[:start]

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole message."""
        return len(self._buffer) + (HEADER_SIZE if self._header is not None else 0)

    def close(self) -> None:
        """Declare the stream ended; raise :class:`ProtocolError` if it ended mid-message."""
        if self.pending:
            raise ProtocolError(
                f"stream ended inside a message ({self.pending} bytes of an incomplete "
                "message) — the peer closed mid-message"
            )


def decode(data: bytes) -> list[Message]:
    """Every message in ``data``, which must end on a message boundary."""
    reader = MessageReader()
    messages = reader.feed(data)
    reader.close()
    return messages

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
        payload = struct.pack("<I", version) + name
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

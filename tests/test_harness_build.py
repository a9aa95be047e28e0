"""The plugin harness: it builds, accepts plugins/tmstate.as, rejects a broken copy with
AngelScript's file:row message, registers exactly plugins/API.md, and runs the plugin.

The end-to-end protocol tests against the running plugin live in test_bridge_harness.py;
here a few raw-socket steps only prove the binary runs the plugin at all.
"""

from __future__ import annotations

import re
import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from tmstate.link.protocol import PROTOCOL_VERSION

pytestmark = pytest.mark.harness

REPO = Path(__file__).resolve().parent.parent
HARNESS_DIR = REPO / "plugins" / "harness"
BINARY = HARNESS_DIR / "build" / "tmstate-harness"
PLUGIN = REPO / "plugins" / "tmstate.as"
API_MD = REPO / "plugins" / "API.md"

# AngelScript keywords and primitive types that may stand before "(" in the plugin.
AS_WORDS = {
    "if", "else", "for", "while", "do", "switch", "case", "return", "break", "continue",
    "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64",
    "float", "double", "bool", "void", "string", "array", "const", "auto", "null", "true", "false",
    "is", "not", "and", "or", "cast",
}


@pytest.fixture(scope="module")
def harness(requires_harness) -> Path:
    """The harness binary, built with make (scripts/test.sh installs angelscript-dev)."""
    if shutil.which("make") is None or shutil.which("g++") is None:
        pytest.skip("make and g++ are needed to build the harness (scripts/test.sh installs them)")
    built = subprocess.run(["make", "-s", "-C", str(HARNESS_DIR)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, f"make failed:\n{built.stdout}\n{built.stderr}"
    assert BINARY.is_file()
    return BINARY


def run(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=60)


def test_check_only_accepts_the_plugin(harness: Path) -> None:
    result = run(harness, "--check-only", "--plugin", str(PLUGIN))
    assert result.returncode == 0, result.stderr
    assert ": ERR:" not in result.stderr and ": WARN:" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("broken_line", "message"),
    [
        ("    int speed = NoSuchThing.Speed;", "NoSuchThing"),  # an unknown name
        ("    uint x = 1 +;", "Expected expression value"),  # a syntax error
    ],
)
def test_a_broken_copy_fails_with_file_and_row(harness: Path, tmp_path: Path, broken_line: str, message: str) -> None:
    lines = PLUGIN.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("void Render()")) + 2  # inside the body
    lines.insert(at, broken_line)
    broken = tmp_path / "broken.as"
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run(harness, "--check-only", "--plugin", str(broken))
    assert result.returncode == 1
    row = at + 1  # AngelScript counts rows from 1
    pattern = re.compile(rf"^{re.escape(str(broken))}:{row}:\d+: ERR: .*{re.escape(message)}", re.MULTILINE)
    assert pattern.search(result.stderr), result.stderr


def api_md_rows() -> list[tuple[str, str, str, str]]:
    """(symbol, kind, declaration, source) for every table row of plugins/API.md."""
    rows = []
    for line in API_MD.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 4, f"API.md row needs 4 cells: {line}"
        symbol, kind, declaration, source = cells
        rows.append((symbol.strip("`"), kind, declaration.strip("`"), source))
    return rows


def test_api_md_rows_name_a_source() -> None:
    rows = api_md_rows()
    assert len(rows) > 50
    for symbol, _, _, source in rows:
        assert source, f"{symbol} has no source in plugins/API.md"


def test_the_harness_registers_exactly_api_md(harness: Path) -> None:
    dumped = run(harness, "--dump-api")
    assert dumped.returncode == 0, dumped.stderr
    registered = {tuple(line.split("\t")) for line in dumped.stdout.splitlines()}
    listed = {(symbol, kind, declaration) for symbol, kind, declaration, _ in api_md_rows()}
    assert registered - listed == set(), "registered but not in plugins/API.md"
    assert listed - registered == set(), "in plugins/API.md but not registered"


def plugin_code() -> str:
    """The plugin without comments and string literals."""
    text = PLUGIN.read_text(encoding="utf-8")
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def test_the_plugin_uses_only_listed_names() -> None:
    """Compiling against the harness proves the plugin uses only registered names; this
    catches what the harness's AngelScript add-ons register beyond TMInterface's API
    (lower-case add-on methods such as length() or insertLast(), add-on functions)."""
    code = plugin_code()
    listed = {symbol for symbol, *_ in api_md_rows()}
    last_parts = {symbol.split("::")[-1] for symbol in listed}
    defined = set(re.findall(r"^\s*[\w:<>@]+\s+(\w+)\s*\(", code, flags=re.MULTILINE))
    defined |= set(re.findall(r"^\s*(?:const\s+)?[\w:<>@]+\s+(\w+)\s*[=;(]", code, flags=re.MULTILINE))

    lower_methods = set(re.findall(r"\.\s*([a-z]\w*)\s*\(", code))
    assert not lower_methods, f"add-on methods TMInterface does not document: {lower_methods}"

    members = set(re.findall(r"\.\s*([A-Z]\w*)", code))
    assert members <= last_parts, f"members not in plugins/API.md: {members - last_parts}"

    qualified = set(re.findall(r"\b((?:[A-Z]\w*::)+\w+)", code))
    assert qualified <= listed, f"qualified names not in plugins/API.md: {qualified - listed}"

    calls = set(re.findall(r"(?<![.:\w])([A-Za-z_]\w*)\s*\(", code))
    unknown = calls - defined - AS_WORDS - last_parts
    assert not unknown, f"functions neither defined by the plugin nor in plugins/API.md: {unknown}"


# --- the binary runs the plugin -------------------------------------------------------

RECORD = struct.Struct("<IiI3i3ii3i3iiiiiiiiii4B4BI")


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "the plugin closed the connection"
        data += chunk
    return data


def recv_message(sock: socket.socket) -> tuple[int, bytes]:
    kind, length = struct.unpack("<II", recv_exactly(sock, 8))
    return kind, recv_exactly(sock, length)


def test_the_harness_runs_the_plugin_over_tcp(harness: Path) -> None:
    """Handshake, the STATE at race time 0 at the start, gas moves the car forward, SIGTERM ends it."""
    assert RECORD.size == 112
    proc = subprocess.Popen(
        [str(harness), "--config", "set tmstate_port 0", "--start", "10,5,20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        ready = proc.stdout.readline()
        assert ready.startswith("READY port="), ready + proc.stderr.read()
        port = int(ready.strip().split("=")[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            name = b"test_harness_build"
            sock.sendall(struct.pack("<III", 1, 4 + 32 + len(name), PROTOCOL_VERSION) + bytes(32) + name)  # no token
            kind, payload = recv_message(sock)
            assert kind == 64 and struct.unpack("<I", payload[:4])[0] == PROTOCOL_VERSION
            assert payload[4:].decode() == "tmstate 0.1.0"
            kind, payload = recv_message(sock)
            assert kind == 65 and len(payload) == 112
            first = RECORD.unpack(payload)
            assert first[:3] == (1, 0, 2)  # seq 1, race time 0, flag "in race"
            assert first[3:6] == (10000, 5000, 20000)  # the start, in mm
            assert first[17] == 3  # checkpoint target: 2 checkpoints + finish
            for _ in range(10):  # full gas, straight ahead (+z at yaw 0)
                sock.sendall(struct.pack("<IIiiI", 2, 12, 0, 65536, 1))
                kind, payload = recv_message(sock)
                assert kind == 65
            state = RECORD.unpack(payload)
            assert state[0] == 11 and state[1] == 500
            assert state[3] == 10000 and state[5] > 20000 and state[8] > 0  # moved and moving along +z
            assert state[23] == 65536  # the gas in force
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_changed_makefile_rebuilds_the_binary(harness: Path, tmp_path: Path) -> None:
    """Flags live in the Makefile: editing it must rebuild, or tmstate.link.harness.build_harness
    (which counts the Makefile as a source) would find the binary stale and run make on every
    call. Checked with ``make -n`` on a copy whose Makefile is newer than its build."""
    copy = tmp_path / "harness"
    shutil.copytree(HARNESS_DIR, copy, ignore=shutil.ignore_patterns(".build.lock"))  # keeps mtimes
    up_to_date = subprocess.run(["make", "-n", "-C", str(copy)], capture_output=True, text=True, timeout=60)
    assert "tmstate-harness" not in up_to_date.stdout, up_to_date.stdout  # the copy is current
    (copy / "Makefile").touch()
    dry = subprocess.run(["make", "-n", "-C", str(copy)], capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "-o build/tmstate-harness" in dry.stdout, dry.stdout

"""Run the plugin without the game: the AngelScript harness as a child process.

``plugins/harness/`` is a small C++ host (Debian's AngelScript 2.35) that loads
``plugins/tmstate.as`` unmodified, registers the TMInterface API the plugin uses, and
drives it with a point-mass car — a stand-in that proves the plugin compiles and talks
the protocol, NOT the game. :class:`HarnessProcess` starts it on a free port and waits for
its ``READY port=<port>`` line; tests, benchmarks, the harness demo and the vector env use
it wherever they would otherwise need TMNF. ``tmstate plugin-check`` also builds it against
other AngelScript engines (:func:`engines`), the API model being the same under each.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tmstate.config import check_port
from tmstate.data import data_path
from tmstate.errors import BridgeError, ConfigError
from tmstate.files import cache_root

HARNESS_DIR = data_path("plugins", "harness")
"""The harness sources (Makefile, src/), shipped as package data."""
PLUGIN_PATH = data_path("plugins", "tmstate.as")
HARNESS_SOURCES = ("Makefile", "src")
ANGELSCRIPT_HEADERS = (Path("/usr/include/angelscript.h"),)
READY_PREFIX = "READY port="


def angelscript_header() -> Path | None:
    """Where AngelScript's header is (Debian package angelscript-dev), or None."""
    for path in ANGELSCRIPT_HEADERS:
        if path.is_file():
            return path
    return None


ENGINES_ENV = "TMSTATE_ANGELSCRIPT_ENGINES"
"""More AngelScript engines for plugin-check: extracted Debian angelscript-dev folders,
separated by ``os.pathsep`` (besides those in :func:`engine_cache_dir`)."""
GET_ENGINE_SCRIPT = (HARNESS_DIR / "get-angelscript.sh").resolve()
"""Puts Debian sid's angelscript-dev (AngelScript 2.38.0) into :func:`engine_cache_dir`."""


@dataclass(frozen=True)
class Engine:
    """An AngelScript the harness can be built against: the system's, or one extracted from a
    Debian angelscript-dev package into ``prefix`` (``usr/include``, ``usr/lib/<arch>``).

    Why several: TMInterface's compiler behaves like AngelScript 2.36.x, and the engines a
    Debian 12 machine can get are older (2.35.1, the system's) and newer (sid's 2.38.0);
    each refuses a few plugins on a language rule only (plugins/API.md, "Engine").
    """

    version: str
    prefix: Path | None = None
    """None: the system's (``/usr``, Debian 12's angelscript-dev)."""

    @property
    def label(self) -> str:
        """How messages name it, e.g. ``AngelScript 2.38.0``."""
        return f"AngelScript {self.version}"

    @property
    def where(self) -> str:
        return "system" if self.prefix is None else str(self.prefix)


def _header_version(header: Path) -> str:
    """``ANGELSCRIPT_VERSION_STRING`` from an angelscript.h, e.g. ``2.38.0``."""
    found = re.search(r'#define\s+ANGELSCRIPT_VERSION_STRING\s+"([0-9.]+)', header.read_text(errors="replace"))
    if not found:
        raise ConfigError(f"{header}: no ANGELSCRIPT_VERSION_STRING in it — is it AngelScript's header?")
    return found.group(1)


def engine_cache_dir() -> Path:
    """Where get-angelscript.sh extracts engines: ``$XDG_CACHE_HOME/tmstate/angelscript/<version>``."""
    return cache_root() / "angelscript"


def prefix_engine(prefix: str | Path) -> Engine:
    """The engine extracted into ``prefix`` (a Debian angelscript-dev layout)."""
    root = Path(prefix).expanduser().resolve()
    header = root / "usr" / "include" / "angelscript.h"
    if not header.is_file() or not any(root.glob("usr/lib/*/libangelscript.a")):
        raise ConfigError(
            f"{root}: not an extracted angelscript-dev package (usr/include/angelscript.h and "
            f"usr/lib/<arch>/libangelscript.a) — `bash {GET_ENGINE_SCRIPT}` makes one"
        )
    return Engine(_header_version(header), root)


def system_engine() -> Engine | None:
    """The system's AngelScript (``apt-get install angelscript-dev``), or None."""
    header = angelscript_header()
    return Engine(_header_version(header)) if header is not None else None


def engines() -> list[Engine]:
    """Every engine available here: the system's, those named by ``TMSTATE_ANGELSCRIPT_ENGINES``
    and those in :func:`engine_cache_dir`, oldest version first; one per version (the system's,
    then the named ones, win)."""
    found: dict[str, Engine] = {}
    system = system_engine()
    if system is not None:
        found[system.version] = system
    for named in (p for p in os.environ.get(ENGINES_ENV, "").split(os.pathsep) if p):
        engine = prefix_engine(named)  # a named folder that is not an engine is an error
        found.setdefault(engine.version, engine)
    for cached in sorted(engine_cache_dir().glob("*")):
        if cached.is_dir() and not cached.name.startswith("."):  # .download.*: one under way
            with contextlib.suppress(ConfigError):  # a stray folder in the cache is not one
                engine = prefix_engine(cached)
                found.setdefault(engine.version, engine)
    return sorted(found.values(), key=lambda e: tuple(int(x) for x in e.version.split(".")))


def _source_files() -> list[Path]:
    """The files the harness is built from (the Makefile and src/), in a fixed order."""
    found = [HARNESS_DIR / "Makefile"] if (HARNESS_DIR / "Makefile").is_file() else []
    src = HARNESS_DIR / "src"
    if src.is_dir():
        found += sorted(p for p in src.iterdir() if p.suffix in (".cpp", ".cc", ".h", ".hpp"))
    return found


def cache_dir() -> Path:
    """Where built harnesses live: ``$XDG_CACHE_HOME/tmstate/harness`` (``~/.cache/...``)."""
    return cache_root() / "harness"


def harness_binary(engine: Engine | None = None) -> Path:
    """The binary built from the harness sources as they are now, against ``engine``
    (None: the system's AngelScript).

    Its folder is named by a hash of the sources' contents (and, for an engine of its own,
    the engine's version and folder), so every version of the sources (another checkout, an
    installed wheel, an edit) and every engine has its own build, and a binary found there is
    current by construction. The shipped sources are never written to.
    """
    digest = hashlib.sha256()
    for path in _source_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    name = digest.hexdigest()[:16]
    if engine is not None and engine.prefix is not None:
        where = hashlib.sha256(str(engine.prefix).encode()).hexdigest()[:8]
        name += f"-as{engine.version}-{where}"
    return cache_dir() / name / "tmstate-harness"


def build_harness(force: bool = False, engine: Engine | None = None) -> Path:
    """Build the harness with make into :func:`harness_binary`'s folder unless it is there,
    against ``engine`` (None: the system's AngelScript; one with a prefix: ``make AS_PREFIX=``).

    Several processes (pytest workers, vector envs) may ask at once, so the build runs
    under a file lock.
    """
    if not (HARNESS_DIR / "Makefile").is_file():
        raise ConfigError(
            f"{HARNESS_DIR / 'Makefile'} not found — the plugin harness sources are missing "
            "from this install"
        )
    prefix = engine.prefix if engine is not None else None
    binary = harness_binary(engine)
    if not force and binary.is_file():
        return binary
    if prefix is None and angelscript_header() is None:
        raise ConfigError(
            "AngelScript headers not found (/usr/include/angelscript.h) — install them with "
            "`apt-get install angelscript-dev` (scripts/test.sh does it) to build the harness"
        )
    if shutil.which("make") is None or shutil.which("g++") is None:
        raise ConfigError("make and g++ are needed to build the harness — `apt-get install make g++`")
    binary.parent.mkdir(parents=True, exist_ok=True)
    lock_path = binary.parent / ".build.lock"
    make = ["make", "-s", "-C", str(HARNESS_DIR), f"BUILD={binary.parent}"]
    if prefix is not None:
        make.append(f"AS_PREFIX={prefix}")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if force or not binary.is_file():  # another process may have built it meanwhile
                result = subprocess.run(make, capture_output=True, check=False)
                if result.returncode != 0 or not binary.is_file():
                    tail = _text(result.stdout + result.stderr).strip().splitlines()[-15:]
                    raise ConfigError(
                        f"building the harness with `{' '.join(make[2:])}` failed "
                        f"(exit {result.returncode}): " + " | ".join(tail)
                    )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return binary


def _text(raw: bytes) -> str:
    """Child output as text; bytes that are not UTF-8 become U+FFFD instead of an error."""
    return raw.decode("utf-8", errors="replace")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class HarnessProcess:
    """The plugin harness running in a child process, listening on :attr:`port`.

    Use as a context manager (``with HarnessProcess() as h: Bridge(port=h.port)``) or call
    :meth:`start` / :meth:`stop`. ``extra_config`` are more TMInterface console lines
    applied after ``set tmstate_listen 127.0.0.1:<port>``; ``extra_args`` go to the binary as they are.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        plugin: str | Path | None = None,
        realtime: bool = False,
        states: str | Path | None = None,
        extra_config: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        ready_timeout_s: float = 20.0,
        binary: str | Path | None = None,
        token: str = "",
    ) -> None:
        self.requested_port = check_port(port, "harness port", allow_zero=True) if port is not None else None
        self.plugin = Path(plugin) if plugin is not None else PLUGIN_PATH
        self.realtime = realtime
        self.states = Path(states) if states is not None else None
        self.extra_config = list(extra_config)
        self.extra_args = list(extra_args)
        self.ready_timeout_s = ready_timeout_s
        self.binary = Path(binary) if binary is not None else None
        self.token = token
        """The plugin's auth token ("" = none). Handed over as ``tmstate launch`` does, through
        an owner-only script file the harness ``load``s (never on its command line)."""
        self._scripts_dir: Path | None = None
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.output: collections.deque[str] = collections.deque(maxlen=200)
        """The last lines the harness printed (stdout and stderr), for error messages."""
        self._lines: queue.Queue[str] = queue.Queue()
        self._waiting_ready = False

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BridgeError("the harness is not running — call start() first")
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self, port: int) -> list[str]:
        """The exact command line for a harness on ``port``."""
        from tmstate.link.auth import configstring_commands, write_token_script

        binary = self.binary or build_harness()
        cmd = [str(binary), "--plugin", str(self.plugin),
               "--config", configstring_commands("127.0.0.1", port, bool(self.token))]
        if self.token:
            if self._scripts_dir is None:
                self._scripts_dir = Path(tempfile.mkdtemp(prefix="tmstate-harness-scripts-"))  # 0700
            write_token_script(self._scripts_dir, port, self.token)
            cmd += ["--scripts-dir", str(self._scripts_dir)]
        for line in self.extra_config:
            cmd += ["--config", line]
        if self.realtime:
            cmd.append("--realtime")
        if self.states is not None:
            cmd += ["--states", str(self.states)]
        return cmd + self.extra_args

    def start(self) -> HarnessProcess:
        """Start the harness and wait for READY; a busy port is retried on another one."""
        if self.alive:
            return self
        if not self.plugin.is_file():
            raise ConfigError(f"{self.plugin}: plugin file not found — pass plugin= or check the checkout")
        attempts = 1 if self.requested_port else 3
        last_error: BridgeError | None = None
        for _ in range(attempts):
            port = self.requested_port or free_port()
            try:
                self._launch(port)
                return self
            except BridgeError as exc:
                last_error = exc
                self.kill()
                if "in use" not in str(exc):  # only a port taken in between is worth a retry
                    break
        raise last_error  # type: ignore[misc]

    def _launch(self, port: int) -> None:
        cmd = self.command(port)
        self.output.clear()
        self._lines = queue.Queue()
        self._waiting_ready = True
        self.process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,  # bytes: the plugin logs whatever a client sent (not always UTF-8)
            start_new_session=True,  # a Ctrl-C in the terminal stops us, not the harness first
        )
        # Both pipes are drained for the whole life of the process, so a chatty harness
        # never blocks on a full pipe — as bytes, decoded leniently: a drain thread that
        # died on one odd byte would leave the harness blocked on a full pipe for good.
        for stream in (self.process.stdout, self.process.stderr):
            threading.Thread(target=self._drain, args=(stream,), daemon=True).start()
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BridgeError(
                    f"the harness printed no READY line within {self.ready_timeout_s:g} s "
                    f"({' '.join(cmd)}); last output: {self._tail()}"
                )
            try:
                line = self._lines.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                if self.process.poll() is not None and self._lines.empty():
                    raise BridgeError(
                        f"the harness exited with status {self.process.returncode} before READY "
                        f"({' '.join(cmd)}); last output: {self._tail()}"
                    ) from None
                continue
            if "Listen(" in line and "failed" in line:  # e.g. the port was taken meanwhile
                raise BridgeError(f"the harness cannot listen on port {port}: {line}")
            if line.startswith(READY_PREFIX):
                self.port = int(line[len(READY_PREFIX) :].split()[0])
                self._waiting_ready = False
                return

    def _drain(self, stream) -> None:
        """Read ``stream`` to its end, whatever the bytes; keep the lines as text."""
        with contextlib.suppress(OSError, ValueError):  # the pipe closed under us by _reap
            for raw in stream:
                line = _text(raw).rstrip("\n")
                self.output.append(line)
                if self._waiting_ready:  # only lines before READY matter; the deque keeps the rest
                    self._lines.put(line)

    def _tail(self, lines: int = 8) -> str:
        time.sleep(0.05)  # let the drain threads catch the last words
        return " | ".join(list(self.output)[-lines:]) or "(nothing)"

    def kill(self) -> None:
        """SIGKILL the harness (what a crashed game looks like to the bridge)."""
        if self.alive:
            self.process.kill()  # type: ignore[union-attr]
        self._reap()

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``. Safe to call twice."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            try:
                self.process.wait(timeout_s)  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                self.process.kill()  # type: ignore[union-attr]
        self._reap()

    def _reap(self) -> None:
        if self._scripts_dir is not None:
            shutil.rmtree(self._scripts_dir, ignore_errors=True)
            self._scripts_dir = None
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
            for stream in (self.process.stdout, self.process.stderr):
                with contextlib.suppress(Exception):
                    if stream is not None:
                        stream.close()

    def __enter__(self) -> HarnessProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if self.alive:
                self.process.kill()  # type: ignore[union-attr]

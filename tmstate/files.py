"""Atomic file writes: a temp file in the same folder, then a rename.

A reader (or a crash) never sees half a file: either the old content or the new one.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

from tmstate.errors import FileFormatError


@functools.cache
def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give: 0o666 less the umask.

    ``mkstemp`` creates private (0o600) files; a log or plot should be as readable as any
    other file the user writes. The umask can only be read by setting it, so once.
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


NPY_MAGIC = b"\x93NUMPY"
"""The first bytes of a numpy ``.npy`` file."""
ZIP_MAGIC = b"PK"
"""The first bytes of a zip archive, so of a numpy ``.npz`` file."""


def read_data_file(path: Path, error: type[FileFormatError], missing_hint: str, empty_hint: str) -> bytes:
    """The bytes of a data file; ``error`` naming the path if it is missing, empty or unreadable."""
    if not path.is_file():
        raise error(path, "file not found", missing_hint)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(path, f"cannot be read ({exc.strerror or exc})", "check its permissions") from None
    if not raw:
        raise error(path, "file is empty", empty_hint)
    return raw


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, creating the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _file_mode())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))

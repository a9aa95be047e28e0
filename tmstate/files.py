"""Atomic file writes: a temp file in the same folder, then a rename.

A reader (or a crash) never sees half a file: either the old content or the new one.
"""

from __future__ import annotations

import errno
import functools
import io
import os
import stat
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

from tmstate.errors import FileFormatError, FileWriteError


@functools.cache
def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give: 0o666 less the umask.

    ``mkstemp`` creates private (0o600) files; a log or plot should be as readable as any
    other file the user writes. The umask can only be read by setting it, so once.
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def cache_root() -> Path:
    """Where tmstate keeps what it builds (the plugin harness, the simulator's kernel):
    ``$XDG_CACHE_HOME/tmstate``, else ``~/.cache/tmstate``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")) / "tmstate"


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


def load_arrays(path: Path, raw: bytes, error: type[FileFormatError], hint: str) -> dict[str, Any] | Any:
    """The arrays of a ``.npz`` (a dict, every member read now) or the one array of a ``.npy``.

    Never unpickles. A file that only starts like a zip, a damaged member, or a member
    holding Python objects is ``error`` naming the path (and the member), with ``hint`` —
    never numpy's own message, whose advice to allow pickles does not apply.
    """
    import numpy as np

    stream = io.BytesIO(raw)
    if raw.startswith(NPY_MAGIC):
        try:
            return np.load(stream, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise error(path, f"a damaged .npy array ({_numpy_problem(exc)})", hint) from None
    if not raw.startswith(ZIP_MAGIC):
        raise error(path, "neither a .npz archive nor a .npy array (it does not start like one)", hint)
    if not zipfile.is_zipfile(stream):
        raise error(path, "starts like a .npz (zip) archive but is not a whole one (damaged or cut short)", hint)
    arrays: dict[str, Any] = {}
    try:
        archive = np.load(stream, allow_pickle=False)
    except (ValueError, OSError, EOFError, NotImplementedError, zipfile.BadZipFile) as exc:
        raise error(path, f"a damaged .npz archive ({_numpy_problem(exc)})", hint) from None
    with archive:
        for name in archive.files:
            try:
                arrays[name] = archive[name]
            except (ValueError, OSError, EOFError, KeyError, NotImplementedError, zipfile.BadZipFile, zlib.error) as exc:
                raise error(path, f"member {name} is damaged or not a plain array ({_numpy_problem(exc)})", hint) from None
    return arrays


_KINDS = {"float": ("fiu", "numbers"), "int": ("iub", "whole numbers"), "bool": ("biu", "true/false values"),
          "str": ("U", "text")}


def check_array(path: Path, error: type[FileFormatError], name: str, array: Any, kind: str,
                shape: tuple[int, ...] | None = None, dtype: Any = None) -> Any:
    """Member ``name`` of a data file checked: its kind of values (``float``, ``int``, ``bool``,
    ``str``), its shape, every number finite, every whole number within ``dtype``; returned
    as ``dtype``. Anything else is ``error`` naming the file and the member.

    One rule for every array tmstate reads back (episode logs, reference lines), so a
    damaged file fails here, at load, and not as NaN observations or a TypeError later.
    """
    import numpy as np

    accepted, words = _KINDS[kind]
    if not isinstance(array, np.ndarray) or array.dtype.kind not in accepted:
        got = f"{array.dtype} values" if isinstance(array, np.ndarray) else type(array).__name__
        raise error(path, f"{name} holds {got}, expected {words}", "the file is damaged or not written by tmstate")
    if shape is not None and array.shape != shape:
        raise error(path, f"{name} has shape {array.shape}, expected {shape}", "the file is damaged")
    if kind == "float":
        with np.errstate(all="ignore"):
            bad = ~np.isfinite(array.astype(np.float64))
        rows = bad.reshape(len(bad), -1).any(axis=1) if bad.ndim and bad.size else bad.reshape(-1)
        if rows.any():
            raise error(path, f"{name} is NaN/infinite in {int(rows.sum())} row(s) (first: row {int(np.argmax(rows))})",
                        "the file is damaged")
    elif kind in ("int", "bool") and array.dtype.kind in "iu" and array.size:
        low, high = (0, 1) if kind == "bool" else (np.iinfo(dtype or np.int64).min, np.iinfo(dtype or np.int64).max)
        if int(array.min()) < low or int(array.max()) > high:
            raise error(path, f"{name} holds {int(array.min())}..{int(array.max())}, outside {low}..{high}",
                        "the file is damaged")
    return array.astype(dtype) if dtype is not None else array


def _numpy_problem(exc: BaseException) -> str:
    """numpy's reason in words that fit tmstate (its hint about ``allow_pickle`` does not)."""
    text = str(exc)
    if "pickle" in text or "Object arrays" in text:
        return "it holds Python objects, which tmstate never writes and never loads"
    return text.splitlines()[0][:200] if text else type(exc).__name__


TMP_SUFFIX = ".tmp"
STALE_LEGACY_TMP_S = 3600.0
"""A temp file of the older naming (no pid in it) is stale once this old."""

_WRITE_HINTS = {
    errno.ENOSPC: "the disk is full; free some space or choose another folder",
    errno.EDQUOT: "the disk quota is used up; free some space or choose another folder",
    errno.EROFS: "the file system is read-only; choose another folder",
    errno.EACCES: "no permission to write there; choose another folder or fix its permissions",
    errno.EPERM: "no permission to write there; choose another folder or fix its permissions",
    errno.EISDIR: "that is a folder; give a file name",
    errno.ENOTDIR: "a part of the path is a file, not a folder; fix the path",
}


def write_error(path: Path, exc: OSError, what: str = "cannot be written") -> FileWriteError:
    """The one-line FileWriteError for an OSError met while writing ``path``."""
    hint = _WRITE_HINTS.get(exc.errno or 0, "check the path and the disk")
    return FileWriteError(path, f"{what} ({exc.strerror or exc})", hint)


def _special_kind(path: Path) -> str:
    """What ``path`` is when it exists and a file must not replace it ("" for a regular file or nothing)."""
    try:
        mode = path.stat().st_mode  # through a symlink: what it points to
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise write_error(path, exc, "cannot be checked") from None
    if stat.S_ISREG(mode):
        return ""
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def ensure_folder(folder: str | Path, what: str = "folder") -> Path:
    """``folder``, created if needed and proven writable (a probe file is made and removed).

    For output folders (``log_dir``, ``--out``), checked before any work is done, so a
    read-only disk or a file in the way fails now with one line, not at the end.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FileWriteError(folder, f"the {what} is a file, not a folder", "give a folder path") from None
    except OSError as exc:
        raise write_error(folder, exc, f"the {what} cannot be created") from None
    if not folder.is_dir():
        raise FileWriteError(folder, f"the {what} is not a folder", "give a folder path")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".tmstate-probe-{os.getpid()}-", suffix=TMP_SUFFIX)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise write_error(folder, exc, f"the {what} is not writable") from None
    return folder


def check_output(path: str | Path, what: str = "output file") -> Path:
    """Check, before the work starts, that ``path`` can be written as a file: not a folder, a
    pipe or a device, and its folder creatable and writable. Returns the path."""
    path = Path(path)
    kind = _special_kind(path)
    if kind:
        raise FileWriteError(path, f"the {what} is {kind}; tmstate writes only regular files and never replaces "
                             "anything else", "give a file path")
    ensure_folder(path.parent, f"folder of the {what}")
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def clean_stale_temp_files(folder: Path) -> list[Path]:
    """Remove temp files that killed writes left in ``folder``; return what was removed.

    Ours are named ``.<name>.<pid>.<random>.tmp``: one whose writer process is gone is
    stale. One of the older naming (no pid) is stale after an hour. A live writer's temp
    file (another env writing to the same ``log_dir``) is never touched.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(TMP_SUFFIX)) or not entry.is_file(follow_symlinks=False):
            continue
        parts = name[: -len(TMP_SUFFIX)].split(".")
        pid = next((int(p[len("pid"):]) for p in parts if p.startswith("pid") and p[3:].isdigit()), None)
        try:
            stale = not _pid_alive(pid) if pid is not None else now - entry.stat().st_mtime > STALE_LEGACY_TMP_S
            if stale:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def atomic_write_bytes(path: str | Path, data: bytes, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + rename), creating the parent folder.

    The one rule for every file tmstate writes: any failure (read-only or full disk, no
    permission) is a one-line :class:`FileWriteError` naming the path and leaves the old
    file as it was; a folder, pipe or device at ``path`` is never replaced (a symlink is
    written through, to the regular file it points to); temp files that killed writes left
    in the folder are cleaned up. ``mode`` (e.g. 0o600 for a secret) instead of the umask's.
    """
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    kind = _special_kind(path)
    if kind:
        raise FileWriteError(path, f"is {kind}; tmstate writes only regular files and never replaces anything else",
                             "give a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(path.parent, exc, "the folder cannot be created") from None
    clean_stale_temp_files(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.pid{os.getpid()}.", suffix=TMP_SUFFIX)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _file_mode() if mode is None else mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str, mode: int | None = None) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"), mode)

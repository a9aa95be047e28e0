"""Start-state banks: saved game states along a line, for episodes that start along the track.

A bank is a file next to its line, ``<line>.starts.npz`` (``reference_lines/A01.npz`` ->
``reference_lines/A01.starts.npz``), holding, for each saved state in arc-length order:

- ``arc_m`` (K,) float64 — where along the line the car was;
- ``race_time_ms`` (K,) int64 — its race time;
- ``blob_offsets`` (K + 1,) int64 and ``blobs`` (total,) uint8 — the TMInterface save-state
  blobs (``SimulationState.ToArray()``) end to end: entry i is ``blobs[offsets[i]:offsets[i+1]]``;
- ``metadata`` — a JSON string (map name, line file, how it was made) and ``format_version``.

No pickle; written atomically. ``tmstate record-line --save-states-every N`` writes one while a
person drives; the env's ``start`` option (:mod:`tmstate.env.start`) rewinds to one at reset.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tmstate.errors import ReferenceLineError
from tmstate.files import atomic_write_bytes, read_data_file

FORMAT_VERSION = 1
"""Version of the bank layout written by :meth:`StartBank.save`."""


def bank_path(line_path: str | Path) -> Path:
    """The bank file that belongs to a line file: ``A01.npz`` -> ``A01.starts.npz``."""
    path = Path(line_path)
    return path.with_name(path.name.split(".")[0] + ".starts.npz")


@dataclass(frozen=True)
class SavedStart:
    """One saved state of a bank."""

    arc_m: float
    race_time_ms: int
    blob: bytes


class StartBank:
    """Saved states along a line, in arc-length order (see the module doc for the file)."""

    def __init__(self, entries: list[SavedStart] | None = None, metadata: dict[str, Any] | None = None) -> None:
        self.entries = sorted(entries or [], key=lambda e: e.arc_m)
        self.metadata = dict(metadata or {})
        self._arcs = np.array([e.arc_m for e in self.entries], dtype=np.float64)

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, arc_m: float, race_time_ms: int, blob: bytes) -> None:
        """Add a saved state (kept in arc-length order)."""
        self.entries = sorted([*self.entries, SavedStart(float(arc_m), int(race_time_ms), bytes(blob))],
                              key=lambda e: e.arc_m)
        self._arcs = np.array([e.arc_m for e in self.entries], dtype=np.float64)

    def at(self, arc_m: float) -> SavedStart | None:
        """The saved state farthest along the line at or before ``arc_m``; None if there is none."""
        i = int(np.searchsorted(self._arcs, float(arc_m), side="right")) - 1
        return self.entries[i] if i >= 0 else None

    def save(self, path: str | Path) -> Path:
        """Write the bank atomically; returns the path."""
        path = Path(path)
        blobs = [e.blob for e in self.entries]
        offsets = np.concatenate(([0], np.cumsum([len(b) for b in blobs], dtype=np.int64))).astype(np.int64)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            arc_m=np.array([e.arc_m for e in self.entries], dtype=np.float64),
            race_time_ms=np.array([e.race_time_ms for e in self.entries], dtype=np.int64),
            blob_offsets=offsets,
            blobs=np.frombuffer(b"".join(blobs), dtype=np.uint8),
            metadata=np.array(json.dumps(self.metadata, sort_keys=True)),
            format_version=np.array(FORMAT_VERSION, dtype=np.int64),
        )
        atomic_write_bytes(path, buffer.getvalue())
        return path

    @classmethod
    def load(cls, path: str | Path) -> StartBank:
        """Read a bank; ReferenceLineError naming the file when it is missing or unreadable."""
        path = Path(path)
        raw = read_data_file(path, ReferenceLineError, "record one with `tmstate record-line "
                             "--save-states-every 100`, or set start.bank", "record the bank again")
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as data:
                version = int(data["format_version"][()])
                arcs, times = data["arc_m"], data["race_time_ms"]
                offsets, blobs = data["blob_offsets"], data["blobs"]
                metadata = json.loads(str(data["metadata"][()]))
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise ReferenceLineError(path, f"not a start-state bank ({exc})", "record the bank again") from None
        if version > FORMAT_VERSION:
            raise ReferenceLineError(path, f"bank format version {version} is newer than this tmstate ({FORMAT_VERSION})",
                                     "upgrade tmstate")
        if len(offsets) != len(arcs) + 1 or len(times) != len(arcs) or (len(offsets) and offsets[-1] != len(blobs)):
            raise ReferenceLineError(path, "its arrays do not agree in length", "record the bank again")
        data_bytes = blobs.tobytes()
        entries = [SavedStart(float(arcs[i]), int(times[i]), data_bytes[int(offsets[i]):int(offsets[i + 1])])
                   for i in range(len(arcs))]
        return cls(entries, metadata)

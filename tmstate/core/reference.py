"""Reference lines: the path a map is measured along.

A :class:`ReferenceLine` is an (N, 3) polyline in TMNF world metres (y up) with its arc
length and unit tangents. Progress, reward and termination are all measured against it.

Files:

- ``reference_lines/<map>.npz`` — ours: ``points`` (N, 3) float64 plus ``metadata`` (a JSON
  string stored as a numpy unicode scalar, so it loads with ``allow_pickle=False``) and
  ``format_version``.
- plain ``.npy`` holding an (N, 3) float array — how Linesight (``maps/*.npy``) and
  trackmania-gym store their lines; loaded as they are (no resampling).

Every way in validates the points (shape, NaN/inf, fewer than 2 points, consecutive
duplicates) and raises :class:`~tmstate.errors.ReferenceLineError` naming the file.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from tmstate.errors import ReferenceLineError
from tmstate.files import NPY_MAGIC, ZIP_MAGIC, atomic_write_bytes, check_array, load_arrays, read_data_file

FORMAT_VERSION = 2
"""Version of the ``.npz`` layout written by :meth:`ReferenceLine.save`.

Version 2: ``checkpoints_m`` lists the map's checkpoints *without* the finish (the finish is
the end of the line) and ``checkpoint_source`` says where they came from. Version 1 lines
built from a ghost or recorded in the game listed the finish as their last checkpoint; it is
dropped when they load (:func:`upgrade_metadata`)."""

CHECKPOINT_SOURCES = ("", "ghost", "challenge", "recorded", "sim")
"""Where a line's ``checkpoints_m`` came from; "" = not known (a plain ``.npy``, a line in code)."""

MAX_COORDINATE_M = 1e9
"""Largest coordinate a line may have (a TMNF map is a few km across); beyond it lengths and
tangents overflow to inf/NaN, so such a line is refused at load, not at the first step."""

DUPLICATE_TOLERANCE_M = 1e-6
"""Consecutive points closer than this count as duplicates (a zero-length segment)."""


def utc_now_iso() -> str:
    """The current time as ISO-8601 UTC, seconds precision (for ``LineMetadata.created``)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class LineMetadata:
    """What a line is and where it came from; saved with it."""

    map_name: str = ""
    map_uid: str = ""
    source: str = ""  # "replay:<file>", "recorded", "sim-generator", "npy"
    spacing_m: float = 0.5
    created: str = ""  # ISO-8601 UTC
    checkpoints_m: tuple[float, ...] = ()  # arc lengths of the checkpoints along the line, finish excluded
    checkpoint_source: str = ""  # ghost | challenge | recorded | sim; "" = the checkpoints are not known
    track_width_m: float = 0.0  # corridor width when known (sim tracks), else 0
    extra: dict[str, Any] = field(default_factory=dict)  # anything else worth keeping (JSON)

    def to_json(self) -> str:
        data = asdict(self)
        data["checkpoints_m"] = [float(x) for x in self.checkpoints_m]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LineMetadata:
        """Metadata from its JSON; every known key checked against its declared type
        (:func:`tmstate.config.check_type`), so ``track_width_m: "wide"`` fails here.
        Raises ValueError (ConfigError) naming the key."""
        from tmstate.config import from_dict

        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"metadata must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        # Keys written by a newer version are kept rather than dropped.
        extra = kwargs.pop("extra", {})
        if not isinstance(extra, dict):
            raise ValueError(f"metadata.extra: expected a table, got {extra!r}")
        extra = {**extra, **{k: v for k, v in data.items() if k not in known}}
        return from_dict(cls, {**kwargs, "extra": extra}, where="metadata")

    @property
    def checkpoints_known(self) -> bool:
        """True when ``checkpoints_m`` is the map's checkpoint list (possibly empty), not just unknown."""
        return bool(self.checkpoint_source)


def upgrade_metadata(metadata: LineMetadata, version: int, length_m: float) -> LineMetadata:
    """Metadata of a line saved in an older format, in the terms of :data:`FORMAT_VERSION`.

    Version 1 had no ``checkpoint_source``; lines from a ghost (``source`` ``replay:...``)
    or recorded in the game listed the finish as the last checkpoint, sim tracks did not.
    """
    if version >= 2:
        return metadata
    source = metadata.source
    if source.startswith("replay:") or source == "recorded":
        marks = metadata.checkpoints_m
        if marks and marks[-1] >= length_m - 1.0:  # the finish, at the end of the line
            marks = marks[:-1]
        return replace(metadata, checkpoints_m=tuple(marks),
                       checkpoint_source="ghost" if source.startswith("replay:") else "recorded")
    if source == "sim-generator":
        return replace(metadata, checkpoint_source="sim")
    return metadata


def validate_points(points: Any, name: str = "<array>") -> np.ndarray:
    """``points`` as a C-contiguous (N, 3) float64 array, or ReferenceLineError naming ``name``."""
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ReferenceLineError(name, f"points are not numeric ({exc})", "expected an (N, 3) array of metres") from None
    if array.ndim != 2 or array.shape[1] != 3:
        raise ReferenceLineError(name, f"expected an (N, 3) array of points, got shape {array.shape}",
                                 "store x, y, z in metres, one point a row")
    if array.shape[0] < 2:
        raise ReferenceLineError(name, f"a line needs at least 2 points, got {array.shape[0]}",
                                 "record or build the line again")
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise ReferenceLineError(name, f"{int(bad.sum())} point(s) are NaN or infinite (first at row {int(np.argmax(bad))})",
                                 "clean or rebuild the line")
    far = (np.abs(array) > MAX_COORDINATE_M).any(axis=1)
    if far.any():
        raise ReferenceLineError(name, f"{int(far.sum())} point(s) lie beyond +-{MAX_COORDINATE_M:g} metres "
                                 f"(first at row {int(np.argmax(far))}), where lengths are not finite",
                                 "is the line in metres? rebuild it")
    steps = np.linalg.norm(np.diff(array, axis=0), axis=1)
    dup = steps < DUPLICATE_TOLERANCE_M
    if dup.any():
        raise ReferenceLineError(name, f"{int(dup.sum())} consecutive duplicate point(s) (first at row {int(np.argmax(dup)) + 1})",
                                 "drop repeated points (a zero-length segment has no direction)")
    return np.ascontiguousarray(array)


def resample(points: np.ndarray, spacing_m: float) -> np.ndarray:
    """Points at equal arc-length steps (as close to ``spacing_m`` as divides the length).

    Linear interpolation along the polyline (scipy's ``make_interp_spline`` with k=1 on
    arc length); the first and last points are kept exactly.
    """
    from scipy.interpolate import make_interp_spline

    cumulative = np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))))
    length = float(cumulative[-1])
    count = max(1, int(round(length / spacing_m)))
    stations = np.linspace(0.0, length, count + 1)
    spline = make_interp_spline(cumulative, points, k=1)
    out = spline(stations)
    out[0], out[-1] = points[0], points[-1]
    return out


def smooth_points(points: np.ndarray, sigma_m: float, spacing_m: float) -> np.ndarray:
    """Gaussian smoothing along the line with a standard deviation of ``sigma_m`` metres.

    scipy.ndimage's filter on evenly spaced points; the ends are held in place so the
    start and finish do not move.
    """
    from scipy.ndimage import gaussian_filter1d

    out = gaussian_filter1d(points, sigma=sigma_m / spacing_m, axis=0, mode="nearest")
    out[0], out[-1] = points[0], points[-1]
    return out


class ReferenceLine:
    """An (N, 3) polyline in metres with arc length, tangents and metadata.

    Segment ``i`` runs from ``points[i]`` to ``points[i + 1]``; the segment arrays used by
    progress tracking are precomputed here once.
    """

    def __init__(self, points: np.ndarray, metadata: LineMetadata | None = None, name: str = "<array>") -> None:
        self.points: np.ndarray = validate_points(points, name)
        self.metadata: LineMetadata = metadata if metadata is not None else LineMetadata()
        self.name = name
        self.segment_vectors: np.ndarray = np.diff(self.points, axis=0)
        self.segment_lengths: np.ndarray = np.linalg.norm(self.segment_vectors, axis=1)
        self.cumulative_m: np.ndarray = np.concatenate(([0.0], np.cumsum(self.segment_lengths)))
        self.segment_directions: np.ndarray = self.segment_vectors / self.segment_lengths[:, None]
        tangents = np.gradient(self.points, axis=0)
        norms = np.linalg.norm(tangents, axis=1)
        # A point where the line turns back on itself has a zero central difference: use its
        # incoming segment's direction there instead.
        flat = norms < 1e-12
        if flat.any():
            idx = np.clip(np.nonzero(flat)[0] - 1, 0, len(self.segment_directions) - 1)
            tangents[flat] = self.segment_directions[idx]
            norms[flat] = 1.0
        self.tangents: np.ndarray = tangents / norms[:, None]
        for array in (self.points, self.cumulative_m, self.tangents, self.segment_vectors,
                      self.segment_lengths, self.segment_directions):
            array.setflags(write=False)

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_points(cls, points: Any, *, spacing_m: float | None = 0.5, smooth: float = 0.0,
                    metadata: LineMetadata | None = None, name: str = "<array>") -> ReferenceLine:
        """A line through ``points``, resampled to ``spacing_m`` (None keeps them as given).

        ``smooth`` is a Gaussian standard deviation in metres along the line (0 = none);
        smoothing happens between two resamplings so the spacing stays even.
        """
        array = validate_points(points, name)
        metadata = replace(metadata) if metadata is not None else LineMetadata()  # a copy: set spacing below
        if spacing_m is not None:
            if not spacing_m > 0:
                raise ReferenceLineError(name, f"spacing must be > 0 m, got {spacing_m}", "pass e.g. 0.5")
            array = resample(array, spacing_m)
            if smooth > 0:
                array = resample(smooth_points(array, smooth, spacing_m), spacing_m)
            metadata.spacing_m = float(spacing_m)
        elif smooth > 0:
            mean_step = float(np.mean(np.linalg.norm(np.diff(array, axis=0), axis=1)))
            array = smooth_points(array, smooth, mean_step)
        if not metadata.created:
            metadata.created = utc_now_iso()
        return cls(array, metadata, name)

    @classmethod
    def load(cls, path: str | Path, *, spacing_m: float | None = None, smooth: float = 0.0) -> ReferenceLine:
        """Load our ``.npz`` or a plain (N, 3) ``.npy`` (Linesight, trackmania-gym).

        Points are used as stored unless ``spacing_m`` or ``smooth`` is given, which
        resample/smooth them as :meth:`from_points` does. Lines quantised to 0.1 m (Linesight's
        older files) zigzag by a few degrees from point to point; a position several metres
        to the side then projects up to one segment off. ``smooth=1.0`` removes that.
        """
        line = cls._load(Path(path))
        if spacing_m is None and not smooth:
            return line
        return cls.from_points(line.points, spacing_m=spacing_m, smooth=smooth,
                               metadata=line.metadata, name=line.name)

    @classmethod
    def _load(cls, path: Path) -> ReferenceLine:
        hint = "give a line saved by tmstate (.npz) or an (N, 3) array (.npy); rebuild it if damaged"
        raw = read_data_file(path, ReferenceLineError, "check the path, or build the line with "
                             "`tmstate line-from-replay` / `tmstate record-line`", "build or copy the line again")
        if not raw.startswith((NPY_MAGIC, ZIP_MAGIC)):
            raise ReferenceLineError(path, "not a readable .npy/.npz file (it does not start like one)", hint)
        loaded = load_arrays(path, raw, ReferenceLineError, hint)
        if isinstance(loaded, dict):
            return cls._from_npz(path, loaded)
        points = check_array(path, ReferenceLineError, "the .npy array", loaded, "float")
        line = cls(points, LineMetadata(map_name=path.stem, source="npy"), str(path))
        line.metadata.spacing_m = float(np.mean(line.segment_lengths))
        return line

    @classmethod
    def _from_npz(cls, path: Path, archive: dict[str, np.ndarray]) -> ReferenceLine:
        if "points" not in archive:
            raise ReferenceLineError(path, f"no 'points' array (has {', '.join(archive) or 'nothing'})",
                                     "is this a tmstate reference line?")
        points = check_array(path, ReferenceLineError, "points", archive["points"], "float")
        version = 1  # files from before format_version was written
        if "format_version" in archive:
            version = int(check_array(path, ReferenceLineError, "format_version", archive["format_version"], "int", ())[()])
        if version > FORMAT_VERSION:
            raise ReferenceLineError(path, f"format version {version} is newer than this tmstate ({FORMAT_VERSION})",
                                     "upgrade tmstate")
        metadata_text = "{}"
        if "metadata" in archive:
            metadata_text = str(check_array(path, ReferenceLineError, "metadata", archive["metadata"], "str", ())[()])
        try:
            metadata = LineMetadata.from_json(metadata_text)
        except (ValueError, TypeError) as exc:
            raise ReferenceLineError(path, f"bad metadata ({exc})", "rebuild the line") from None
        line = cls(points, metadata, str(path))
        line.metadata = upgrade_metadata(metadata, version, line.length_m)
        return line

    def save(self, path: str | Path) -> Path:
        """Write the line as ``.npz`` atomically (temp file + rename); returns the path."""
        path = Path(path)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            points=np.asarray(self.points, dtype=np.float64),
            metadata=np.array(self.metadata.to_json()),
            format_version=np.array(FORMAT_VERSION, dtype=np.int64),
        )
        atomic_write_bytes(path, buffer.getvalue())
        return path

    # --- queries ------------------------------------------------------------------------

    @property
    def length_m(self) -> float:
        return float(self.cumulative_m[-1])

    def __len__(self) -> int:
        return len(self.points)

    def __repr__(self) -> str:
        return (f"ReferenceLine({self.metadata.map_name or self.name!r}, {len(self.points)} points, "
                f"{self.length_m:.1f} m)")

    def _segment_at(self, arc_length_m: float) -> tuple[int, float]:
        s = min(max(float(arc_length_m), 0.0), self.length_m)
        i = int(np.searchsorted(self.cumulative_m, s, side="right")) - 1
        i = min(max(i, 0), len(self.segment_lengths) - 1)
        t = (s - self.cumulative_m[i]) / self.segment_lengths[i]
        return i, t

    def point_at(self, arc_length_m: float) -> np.ndarray:
        """The (3,) point at an arc length (clamped to the line)."""
        i, t = self._segment_at(arc_length_m)
        return self.points[i] + t * self.segment_vectors[i]

    def tangent_at(self, arc_length_m: float) -> np.ndarray:
        """The (3,) unit tangent at an arc length: point tangents interpolated, normalised."""
        i, t = self._segment_at(arc_length_m)
        v = (1.0 - t) * self.tangents[i] + t * self.tangents[i + 1]
        n = float(np.linalg.norm(v))
        return v / n if n > 1e-12 else self.segment_directions[i].copy()


STATIONARY_M = 0.01
"""Consecutive recorded positions closer than this are one point of a line (the car sat still)."""


def drop_stationary(points: np.ndarray, tolerance_m: float = STATIONARY_M) -> np.ndarray:
    """Points without the ones closer than ``tolerance_m`` to the last one kept."""
    if len(points) == 0:
        return points
    kept = [0]
    for i in range(1, len(points)):
        if np.linalg.norm(points[i] - points[kept[-1]]) >= tolerance_m:
            kept.append(i)
    if len(kept) > 1 and kept[-1] != len(points) - 1:
        kept[-1] = len(points) - 1  # always end exactly at the finish
    return points[kept]

"""Step logs: one ``.npz`` file per episode, written atomically when the episode ends.

Every step's :class:`~tmstate.core.state.GameState`, action, reward terms and flags, in an open
format: a numpy ``.npz`` archive of plain arrays (no pickle; ``np.load(path,
allow_pickle=False)`` reads it) with a JSON metadata string. The schema (version
:data:`FORMAT_VERSION`) is documented in docs/log_format.md; in short, for an episode of
T steps:

- ``format_version`` int64 scalar; ``metadata`` a JSON object as a unicode scalar;
- ``state.<field>`` one array per GameState field, T + 1 rows (row 0 is the state after
  reset, row i the state after step i);
- ``action.steer``, ``action.gas`` float64 and ``action.brake`` bool, T rows;
- ``reward.<term>`` float64, T rows, one per reward term;
- ``step.terminated``, ``step.truncated`` bool and ``step.reason`` unicode, T rows.

A ghost (or any list of states) converts into the same format with no ``action.*``,
``reward.*`` or ``step.*`` arrays (``metadata["kind"] == "ghost"``): a states-only log.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import io
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tmstate._version import __version__
from tmstate.core.state import Action
from tmstate.errors import LogFileError, TmstateError
from tmstate.files import NPY_MAGIC, ZIP_MAGIC, atomic_write_bytes, check_array, load_arrays, read_data_file
from tmstate.core.reference import utc_now_iso
from tmstate.core.state import GameState

FORMAT_VERSION = 1
"""Version of the episode log schema (docs/log_format.md). Bump it when the layout changes."""

STATE_FIELDS: dict[str, tuple[type, tuple[int, ...]]] = {
    "race_time_ms": (np.int64, ()),
    "position": (np.float64, (3,)),
    "velocity": (np.float64, (3,)),
    "yaw": (np.float64, ()),
    "pitch": (np.float64, ()),
    "roll": (np.float64, ()),
    "angular_velocity": (np.float64, (3,)),
    "display_speed_kmh": (np.int32, ()),
    "checkpoint_count": (np.int32, ()),
    "checkpoint_target": (np.int32, ()),
    "lap_count": (np.int32, ()),
    "finished": (np.bool_, ()),
    "gear": (np.int32, ()),
    "rpm": (np.float64, ()),
    "wheel_contact": (np.bool_, (4,)),
    "wheel_material": (np.int32, (4,)),
    "steer": (np.float64, ()),
    "gas": (np.float64, ()),
    "brake": (np.float64, ()),
    "respawn_count": (np.int32, ()),
    "in_race": (np.bool_, ()),
}
"""Every GameState field with its dtype and per-row shape, as stored under ``state.<field>``."""


def states_to_arrays(states: Sequence[GameState]) -> dict[str, np.ndarray]:
    """``{"state.<field>": array}`` for a list of states (rows in order)."""
    out: dict[str, np.ndarray] = {}
    for name, (dtype, shape) in STATE_FIELDS.items():
        values = [getattr(s, name) for s in states]
        array: np.ndarray = np.asarray(values, dtype=dtype)
        out[f"state.{name}"] = array.reshape((len(states),) + shape)
    return out


def arrays_to_states(arrays: dict[str, np.ndarray]) -> list[GameState]:
    """The inverse of :func:`states_to_arrays` (fields absent from the arrays keep defaults)."""
    count = len(arrays["state.race_time_ms"])
    columns = {name: arrays[f"state.{name}"] for name in STATE_FIELDS if f"state.{name}" in arrays}
    lists = {name: col.tolist() for name, col in columns.items() if col.ndim == 1}
    states = []
    for i in range(count):
        kwargs: dict[str, Any] = {}
        for name, col in columns.items():
            if col.ndim == 1:
                kwargs[name] = lists[name][i]
            elif STATE_FIELDS[name][0] is np.float64:
                kwargs[name] = col[i].copy()
            else:
                kwargs[name] = tuple(col[i].tolist())
        kwargs["race_time_ms"] = int(kwargs["race_time_ms"])
        states.append(GameState(**kwargs))
    return states


def _jsonable(value: Any) -> Any:
    """Metadata made JSON-ready: dataclasses to dicts, paths to strings, numpy to Python."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _encode_metadata(metadata: dict) -> str:
    try:
        return json.dumps(_jsonable(metadata), sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise TmstateError(f"log metadata must be JSON-serialisable: {exc} — pass plain values or dataclasses") from None


def _write_npz(path: Path, arrays: dict[str, np.ndarray], metadata: dict) -> Path:
    buffer = io.BytesIO()
    members: dict[str, Any] = {"format_version": np.array(FORMAT_VERSION, dtype=np.int64),
                               "metadata": np.array(_encode_metadata(metadata)), **arrays}
    np.savez_compressed(buffer, **members)
    atomic_write_bytes(path, buffer.getvalue())
    return path


class EpisodeLogWriter:
    """Collects one episode at a time and writes it as one file when it ends.

    ``metadata`` (map/line, backend, action_period_ms, reward config...) goes into every
    file, plus per-episode keys: ``episode`` (index in this writer), ``steps``, ``return``,
    ``reason`` (why it ended), ``created``, ``tmstate_version``, ``kind = "episode"``.
    """

    def __init__(self, directory: str | Path, *, metadata: dict, prefix: str = "episode") -> None:
        self.directory = Path(directory)
        self.metadata = dict(metadata)
        _encode_metadata(self.metadata)  # refuse unserialisable metadata now, not at the end
        self.prefix = prefix
        self.episodes_written = 0
        self._run = uuid.uuid4().hex[:8]
        self._states: list[GameState] | None = None
        self._actions: list[Action] = []
        self._terms: list[dict[str, float]] = []
        self._terminated: list[bool] = []
        self._truncated: list[bool] = []
        self._reasons: list[str] = []

    @property
    def open(self) -> bool:
        """True between :meth:`begin` and :meth:`end`."""
        return self._states is not None

    def begin(self, state: GameState) -> None:
        """Start an episode at ``state`` (the state after reset).

        An episode still open with at least one step is written first, so a reset in the
        middle of an episode never loses it.
        """
        if self._states is not None and self._actions:
            self.end()
        self._states = [state.copy()]
        self._actions, self._terms, self._terminated, self._truncated, self._reasons = [], [], [], [], []

    def add(self, action: Action, state: GameState, reward_terms: dict[str, float],
            terminated: bool, truncated: bool, reason: str = "") -> None:
        """Record one step: the action held, the state after it, its reward terms and flags."""
        if self._states is None:
            raise TmstateError("EpisodeLogWriter.add before begin — call begin(state) after reset")
        if self._terms and set(reward_terms) != set(self._terms[0]):
            raise TmstateError(f"reward terms changed within an episode: {sorted(self._terms[0])} then "
                               f"{sorted(reward_terms)} — log the same terms every step")
        self._states.append(state.copy())
        self._actions.append(action)
        self._terms.append({k: float(v) for k, v in reward_terms.items()})
        self._terminated.append(bool(terminated))
        self._truncated.append(bool(truncated))
        self._reasons.append(str(reason))

    def end(self, cut_reason: str = "") -> Path:
        """Write the episode file atomically; returns its path.

        ``cut_reason`` ends an episode cut short from outside (its game was lost): the
        last logged step is marked truncated with that reason, so the log says why it
        stopped there.
        """
        if self._states is None:
            raise TmstateError("EpisodeLogWriter.end without an open episode — call begin(state) first")
        if cut_reason and self._reasons:
            self._truncated[-1] = True
            self._reasons[-1] = cut_reason
        arrays = states_to_arrays(self._states)
        steps = len(self._actions)
        arrays["action.steer"] = np.array([a.steer for a in self._actions], dtype=np.float64)
        arrays["action.gas"] = np.array([a.gas for a in self._actions], dtype=np.float64)
        arrays["action.brake"] = np.array([a.brake for a in self._actions], dtype=np.bool_)
        names = list(self._terms[0]) if self._terms else []
        total = 0.0
        for name in names:
            column = np.array([t[name] for t in self._terms], dtype=np.float64)
            arrays[f"reward.{name}"] = column
            total += float(column.sum())
        arrays["step.terminated"] = np.array(self._terminated, dtype=np.bool_)
        arrays["step.truncated"] = np.array(self._truncated, dtype=np.bool_)
        arrays["step.reason"] = np.array(self._reasons, dtype=np.str_).reshape(steps)
        metadata = {
            **self.metadata,
            "kind": "episode",
            "episode": self.episodes_written,
            "steps": steps,
            "return": total,
            "reward_terms": names,
            "reason": self._reasons[-1] if self._reasons else cut_reason,
            "created": utc_now_iso(),
            "tmstate_version": __version__,
        }
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        path = self.directory / f"{self.prefix}-{stamp}-{self._run}-{self.episodes_written:05d}.npz"
        self._states = None  # written or not, this episode is over: a failed write is not retried at begin()
        _write_npz(path, arrays, metadata)  # FileWriteError (one line) when it cannot be written
        self.episodes_written += 1
        return path


def write_states_log(states: Sequence[GameState], path: str | Path, metadata: dict) -> Path:
    """A states-only log (no actions, rewards or flags), e.g. a ghost; written atomically."""
    if not states:
        raise TmstateError("write_states_log needs at least one state")
    meta = {"kind": "ghost", **metadata, "steps": len(states) - 1, "created": utc_now_iso(),
            "tmstate_version": __version__}
    return _write_npz(Path(path), states_to_arrays(states), meta)


# --- reading ----------------------------------------------------------------------------


@dataclass
class EpisodeLog:
    """One episode read back. States-only logs have no actions, reward terms or flags."""

    path: Path
    metadata: dict
    states: list[GameState]
    actions: list[Action]
    reward_terms: dict[str, np.ndarray]
    terminated: np.ndarray
    truncated: np.ndarray
    reasons: list[str]
    arrays: dict[str, np.ndarray] = field(repr=False, default_factory=dict)  # the raw state.* arrays

    @property
    def steps(self) -> int:
        return len(self.states) - 1

    @property
    def total_return(self) -> float:
        """Sum of every logged reward term over the episode (0 for a states-only log)."""
        return float(sum(float(v.sum()) for v in self.reward_terms.values()))


_KIND_OF_DTYPE = {np.float64: "float", np.int64: "int", np.int32: "int", np.bool_: "bool"}

PER_STEP_KINDS: dict[str, tuple[str, Any]] = {
    "action.steer": ("float", np.float64),
    "action.gas": ("float", np.float64),
    "action.brake": ("bool", np.bool_),
    "step.terminated": ("bool", np.bool_),
    "step.truncated": ("bool", np.bool_),
    "step.reason": ("str", None),
}
"""The per-step arrays of a log (one row per step); ``reward.<term>`` are float64 too."""


def read_episode(path: str | Path) -> EpisodeLog:
    """Read an episode log; :class:`~tmstate.errors.LogFileError` naming the file (and the
    array) if it is unusable: every array is checked for its kind of values, its shape, and
    every number for being finite, so nothing damaged reaches an observation."""
    path = Path(path)
    raw = read_data_file(path, LogFileError, "check the path to the episode log",
                         "the episode was not written completely; record it again")
    if raw.startswith(NPY_MAGIC):
        raise LogFileError(path, "a plain .npy array, not an episode log archive", "pass a log .npz")
    if not raw.startswith(ZIP_MAGIC):
        raise LogFileError(path, "not an .npz archive", "pass an episode log written by tmstate (.npz)")
    data = load_arrays(path, raw, LogFileError, "the file is damaged; record it again")
    if "format_version" not in data or "metadata" not in data:
        raise LogFileError(path, "no format_version/metadata arrays", "is this a tmstate episode log?")
    version = int(check_array(path, LogFileError, "format_version", data["format_version"], "int", ())[()])
    if version > FORMAT_VERSION:
        raise LogFileError(path, f"log format version {version} is newer than this tmstate reads ({FORMAT_VERSION})",
                           "upgrade tmstate")
    text = str(check_array(path, LogFileError, "metadata", data["metadata"], "str", ())[()])
    try:
        metadata = json.loads(text)
        if not isinstance(metadata, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise LogFileError(path, f"metadata is not a JSON object ({exc})", "the file is damaged") from None
    missing = [f"state.{n}" for n in STATE_FIELDS if f"state.{n}" not in data]
    if missing:
        raise LogFileError(path, f"missing array(s) {', '.join(missing)}", "the file is damaged or not a log")
    times = data["state.race_time_ms"]
    if getattr(times, "ndim", 0) != 1:
        raise LogFileError(path, f"state.race_time_ms has shape {getattr(times, 'shape', '?')}, expected one row per state",
                           "the file is damaged")
    rows = len(times)
    if rows < 1:
        raise LogFileError(path, "the log holds no state", "the episode was empty")
    for name, (dtype, shape) in STATE_FIELDS.items():
        key = f"state.{name}"
        data[key] = check_array(path, LogFileError, key, data[key], _KIND_OF_DTYPE[dtype], (rows,) + shape, dtype)
    steps = rows - 1
    for key in [k for k in data if k.startswith(("action.", "reward.", "step."))]:
        kind, dtype = PER_STEP_KINDS.get(key, ("float", np.float64))
        if not key.startswith("reward.") and key not in PER_STEP_KINDS:
            continue  # an array a newer writer added: kept in the file, not read
        data[key] = check_array(path, LogFileError, key, data[key], kind, (steps,), dtype)
    reward_terms = {k[len("reward."):]: v for k, v in data.items() if k.startswith("reward.")}
    actions: list[Action] = []
    if "action.steer" in data:
        try:
            actions = [Action(steer=float(s), gas=float(g), brake=bool(b)) for s, g, b in
                       zip(data["action.steer"].tolist(), data["action.gas"].tolist(), data["action.brake"].tolist())]
        except KeyError as exc:
            raise LogFileError(path, f"action arrays incomplete (no {exc})", "the file is damaged") from None
        except TmstateError as exc:
            raise LogFileError(path, f"action.* out of range ({exc})", "the file is damaged") from None
    empty = np.zeros(0, dtype=np.bool_)
    state_arrays = {k: v for k, v in data.items() if k.startswith("state.")}
    return EpisodeLog(
        path=path,
        metadata=metadata,
        states=arrays_to_states(state_arrays),
        actions=actions,
        reward_terms=reward_terms,
        terminated=data.get("step.terminated", empty),
        truncated=data.get("step.truncated", empty),
        reasons=[str(r) for r in data["step.reason"].tolist()] if "step.reason" in data else [],
        arrays=state_arrays,
    )


def find_logs(paths: Iterable[str | Path], patterns: tuple[str, ...] = ("*.npz",)) -> list[Path]:
    """Files as given plus, for each folder, the files in it matching ``patterns`` and the
    episode logs in its sub-folders (a vector env's ``env<i>/``: files named ``episode-*.npz``
    as the log writer names them, so reference lines kept beside logs are not taken), sorted."""
    out: list[Path] = []
    for item in paths:
        item = Path(item)
        if item.is_dir():
            below = [p for p in item.rglob("episode-*.npz") if p.parent != item] if "*.npz" in patterns else []
            found = sorted({p for pattern in patterns for p in item.glob(pattern)} | set(below))
            if not found:
                raise LogFileError(item, f"folder has no {' or '.join(patterns)} files", "pass log files or their folder")
            out.extend(found)
        else:
            out.append(item)
    return out

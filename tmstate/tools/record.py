"""``tmstate record-line``: record a reference line by driving the map in the real game.

The plugin is switched to observe mode (it streams every state and never touches the
inputs); you drive. The run in progress is kept and saved when the car finishes (or when
you press Ctrl-C, if at least two distinct points were recorded). Rules:

- states before race time 0 (countdown) are ignored;
- race time going backwards means the race was restarted: the recording starts over;
- a respawn puts the car back at its last checkpoint: the points recorded since that
  checkpoint are dropped, so the line never doubles back;
- checkpoints passed (``checkpoint_count`` rising) become ``checkpoints_m`` of the line (the
  finish, which raises the count too, is the line's end and not listed);
- with ``--save-states-every N`` the game's state is saved every N metres driven (SAVE_STATE
  works in observe mode); the saved states kept (a restart or respawn drops those of the part
  it undoes) are written next to the line as its start-state bank, ``<line>.starts.npz``
  (:mod:`tmstate.formats.starts`), for episodes that start along the track.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tmstate.errors import BridgeError, TmstateError
from tmstate.files import check_output
from tmstate.core.reference import LineMetadata, ReferenceLine, drop_stationary, utc_now_iso
from tmstate.core.state import GameState

OBSERVE_TIMEOUT_S = 3600.0
"""How long to wait for the next streamed state (the game may sit in a menu for a while)."""


class LineRecorder:
    """Keeps the positions of the current run from a stream of states."""

    def __init__(self) -> None:
        self.positions: list[np.ndarray] = []
        self.times_ms: list[int] = []
        self.checkpoint_indices: list[int] = []  # index into positions at each checkpoint
        self.finished = False
        self.restarts = 0
        self.respawns = 0
        self.distance_m = 0.0
        self.saved: list[tuple[float, int, bytes]] = []  # (distance driven, race time ms, save-state blob)
        self._respawn_count: int | None = None

    def clear(self) -> None:
        self.positions, self.times_ms, self.checkpoint_indices = [], [], []
        self.saved = []
        self.finished = False
        self.distance_m = 0.0

    def next_save_m(self, every_m: float) -> float:
        """The distance driven at which the next state is due (every ``every_m`` metres)."""
        return (self.saved[-1][0] if self.saved else 0.0) + every_m

    def keep_saved_state(self, race_time_ms: int, blob: bytes) -> None:
        """A save state taken now (``race_time_ms`` is its own race time) for the start bank."""
        self.saved.append((self.distance_m, int(race_time_ms), bytes(blob)))

    def add(self, state: GameState) -> bool:
        """Take one streamed state; True once the run is finished."""
        if state.race_time_ms < 0 or not state.in_race:
            return False
        if self.times_ms and state.race_time_ms < self.times_ms[-1]:
            self.restarts += 1
            self.clear()
        if self._respawn_count is not None and state.respawn_count > self._respawn_count:
            self.respawns += 1
            keep = self.checkpoint_indices[-1] + 1 if self.checkpoint_indices else 1
            del self.positions[keep:], self.times_ms[keep:]
            self.distance_m = _path_length(self.positions)
            self.saved = [entry for entry in self.saved if entry[1] <= self.times_ms[-1]]
        self._respawn_count = state.respawn_count
        if self.times_ms and state.race_time_ms == self.times_ms[-1]:
            return self.finished
        position = np.asarray(state.position, dtype=np.float64).copy()
        if self.positions:
            self.distance_m += float(np.linalg.norm(position - self.positions[-1]))
        self.positions.append(position)
        self.times_ms.append(int(state.race_time_ms))
        while len(self.checkpoint_indices) < state.checkpoint_count:
            self.checkpoint_indices.append(len(self.positions) - 1)
        self.finished = bool(state.finished)
        return self.finished

    def line(self, *, map_name: str = "", spacing_m: float = 0.5) -> ReferenceLine:
        """The recorded run as a reference line (checkpoints located on it)."""
        points = drop_stationary(np.array(self.positions).reshape(-1, 3))
        if len(points) < 2:
            raise TmstateError("nothing to save: fewer than 2 distinct positions were recorded — "
                               "start a race and drive before stopping")
        metadata = LineMetadata(map_name=map_name, source="recorded", created=utc_now_iso(),
                                extra={"race_time_ms": self.times_ms[-1], "finished": self.finished})
        line = ReferenceLine.from_points(points, spacing_m=spacing_m, metadata=metadata, name="recorded")
        from tmstate.core.progress import ProgressTracker

        tracker = ProgressTracker(line)
        # The finish raises the game's checkpoint count too; it is the end of the line, not a checkpoint.
        indices = self.checkpoint_indices[:-1] if self.finished else self.checkpoint_indices
        line.metadata.checkpoints_m = tuple(
            round(tracker.locate(self.positions[i]).arc_length_m, 3) for i in indices)
        line.metadata.checkpoint_source = "recorded"
        return line


    def bank(self, line: ReferenceLine, metadata: dict | None = None):
        """The kept save states as a :class:`~tmstate.formats.starts.StartBank` along ``line``
        (each located where the run was at its race time)."""
        from tmstate.core.progress import ProgressTracker
        from tmstate.formats.starts import StartBank

        times = np.asarray(self.times_ms, dtype=np.float64)
        points = np.array(self.positions).reshape(-1, 3)
        tracker = ProgressTracker(line)
        bank = StartBank(metadata=metadata)
        seen: set[int] = set()
        for _, race_time_ms, blob in self.saved:
            # The game runs on while a save is asked for: one taken at or after the finish, or
            # twice at the same tick, is no start.
            if race_time_ms in seen or (self.finished and race_time_ms >= self.times_ms[-1]):
                continue
            seen.add(race_time_ms)
            at = np.array([np.interp(race_time_ms, times, points[:, k]) for k in range(3)])
            bank.add(round(tracker.locate(at).arc_length_m, 3), race_time_ms, blob)
        return bank


def _path_length(positions: list[np.ndarray]) -> float:
    if len(positions) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(np.array(positions), axis=0), axis=1).sum())


def record_line(output: str | Path, *, port: int | None = None, map_name: str = "", spacing_m: float = 0.5,
                save_states_every_m: float = 0.0, say: Callable[[str], None] = lambda message: None) -> dict:
    """``tmstate record-line``: observe a person driving the map in the game (plugin observe
    mode) and save the line at the finish (or at Ctrl-C, or when the stream ends) to ``output``.

    With ``save_states_every_m`` > 0 a save state is kept every that many metres and written
    as a start bank beside the line. ``say`` gets the progress messages. Returns what to report.
    """
    from tqdm import tqdm

    from tmstate.link.bridge import Bridge
    from tmstate.link.protocol import DEFAULT_PORT

    output = check_output(output, "line file")  # before driving: a drive must never be lost to a bad -o
    recorder = LineRecorder()
    bridge = Bridge(port=DEFAULT_PORT if port is None else port)
    say(f"connecting to the plugin on {bridge.address} ...")
    bridge.connect()
    say("observing: drive the map; the line is saved at the finish (Ctrl-C saves what you drove)")
    bar = tqdm(desc="record-line", bar_format="{desc}: {postfix}", file=sys.stderr)
    interrupted = False
    every = float(save_states_every_m or 0.0)
    lost: BridgeError | None = None
    try:
        for state in bridge.observe(timeout_s=OBSERVE_TIMEOUT_S):
            done = recorder.add(state)
            if every > 0 and not done and recorder.distance_m >= recorder.next_save_m(every):
                saved = bridge.save_state(OBSERVE_TIMEOUT_S)
                recorder.keep_saved_state(saved.race_time_ms, saved.blob)
            bar.set_postfix_str(f"{recorder.distance_m:8.1f} m  {max(state.race_time_ms, 0) / 1000:7.2f} s  "
                                f"checkpoints {state.checkpoint_count}/{state.checkpoint_target}", refresh=False)
            bar.update(0)
            if done:
                break
    except KeyboardInterrupt:
        interrupted = True
    except BridgeError as exc:  # the game died or hung: keep what was driven, as Ctrl-C does
        lost = exc
    finally:
        bar.close()
        bridge.close()
    if lost is not None:
        say(f"record-line: the game stopped answering ({lost}); saving what was driven")
    try:
        line = recorder.line(map_name=map_name, spacing_m=spacing_m)
    except TmstateError as exc:
        if lost is None:
            raise
        raise TmstateError(f"the game was lost before anything could be recorded ({lost}); {exc}") from None
    path = line.save(output)
    how = ("finished" if recorder.finished else "stopped with Ctrl-C" if interrupted
           else "the game was lost" if lost is not None else "stream ended")
    result = {"output": str(path), "line_points": len(line), "line_length_m": line.length_m,
              "checkpoints": len(line.metadata.checkpoints_m), "race_time_ms": recorder.times_ms[-1],
              "how": how}
    if every > 0:
        from tmstate.formats.starts import bank_path

        bank = recorder.bank(line, {"map": map_name, "line": str(path), "every_m": every})
        result["bank"] = str(bank.save(bank_path(path)))
        result["bank_states"] = len(bank)
    return result


def line_from_log(path: str | Path, *, spacing_m: float = 0.5, map_name: str = "") -> ReferenceLine:
    """A reference line from an episode log: its states through :class:`LineRecorder`, the
    same rules as recording in the game (a respawn drops what was driven since the last
    checkpoint; the checkpoints passed become the line's)."""
    from tmstate.formats.log import read_episode

    log = read_episode(path)
    recorder = LineRecorder()
    for state in log.states:
        recorder.add(state)
    name = map_name or str(log.metadata.get("map") or "")
    line = recorder.line(map_name=name, spacing_m=spacing_m)
    line.metadata.source = f"log:{Path(path).name}"
    return line


def line_from_driven_log(path: str | Path, *, output: str | Path | None = None, spacing_m: float = 0.5) -> dict:
    """``tmstate line-from-replay LOG.npz``: :func:`line_from_log`, saved to ``output`` (default
    ``reference_lines/<map>_driven.npz``); returns what to report."""
    line = line_from_log(path, spacing_m=spacing_m)
    if output:
        target = Path(output)
    else:
        stem = line.metadata.map_name or Path(path).name.split(".")[0]
        target = Path("reference_lines") / f"{stem}_driven.npz"
    line.save(target)
    return {"output": str(target), "line_length_m": round(line.length_m, 3), "line_points": len(line),
            "checkpoints": len(line.metadata.checkpoints_m)}

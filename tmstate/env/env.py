"""The Gymnasium environment: ``TMNFEnv``, registered as ``tmstate/TMNF-v0`` and per-track ids
(:mod:`tmstate.env.registry`).

One env drives one car through a :class:`~tmstate.backends.base.Backend` picked by name:
``"tminterface"`` (TMNF through the plugin), ``"sim"`` (the embedded simulator, a
simplified car — not TMNF physics) or ``"replay"`` (a logged episode played back). Each
step::

    inputs = action_type.to_input(action)        # tmstate.env.action
    state = backend.step(inputs)                 # one action period of race time
    scored = scorer.step(prev, state)            # tmstate.core.scoring: progress, reward terms,
                                                 # termination (the path offline tools share)
    obs = observation.observe(state, scored.location)   # tmstate.env.observation

``info`` carries ``reward_terms``, ``race_time_ms``, ``progress_m``, ``lateral_m``,
``termination_reason`` ("" while the episode goes on) and ``finished``; the full
:class:`~tmstate.core.state.GameState` is ``env.unwrapped.state``. ``reset`` puts the car back at race time 0 (the game backend rewinds to the start
state it saved on its first restart). With ``log_dir`` set, every episode is written there
by :class:`tmstate.formats.log.EpisodeLogWriter`.

Make it with ``TMNFEnv(EnvConfig(...))``, ``TMNFEnv(map="sim_easy", backend="sim")``, or
``gymnasium.make("tmstate/TMNF-v0", map=..., backend=...)`` after ``import tmstate`` (which
registers the ids; ``gymnasium.make("tmstate/SimEasy-v0")`` for a shipped track). Settings are
an :class:`EnvConfig`, loadable from TOML with :func:`load_config`.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from tmstate.env.action import ActionType, action_type
from tmstate.backends.base import Backend, backend_class
from tmstate.config import check_arguments, from_dict, load_toml
from tmstate.errors import (ConfigError, FileWriteError, LogWriteWarning, MapMismatchError, TmstateError,
                            is_connection_lost, is_game_lost)
from tmstate.files import ensure_folder
from tmstate.env.observation import ObservationConfig, RenderedFrames, observation_type
from tmstate.core.progress import Location, ProgressConfig
from tmstate.core.reference import ReferenceLine
from tmstate.core.reward import Reward, RewardConfig, reward_config, reward_table
from tmstate.core.scoring import Scorer
from tmstate.core.state import GameState, check_action_period_ms
from tmstate.core.termination import TerminationConfig
from tmstate.env.start import StartConfig, StartSampler

GAME_LOST_REASON = "game_lost"
"""The termination reason logged for an episode cut short because its game was lost."""


@dataclass
class EnvConfig:
    """Everything an env needs; every field has a default. Loadable from TOML (:func:`load_config`)."""

    backend: str = "sim"  # tminterface | sim | replay
    map: str = ""  # sim track name, a name in reference_lines/, a .npz/.npy line path, or a .Replay.Gbx;
    # "" = the backend's default: sim -> sim_easy, replay -> the line named in the log's
    # metadata; the real game needs one
    action_period_ms: int = 50  # race time per step (a multiple of 10 ms)
    game_speed: float = 10.0  # tminterface: game speed while stepping (1 = real time)
    action: str = "continuous"  # continuous | discrete
    brake_threshold: float = 0.5  # continuous: gas-brake at or below -this presses the brake
    observation: ObservationConfig = field(default_factory=ObservationConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    termination: TerminationConfig = field(default_factory=TerminationConfig)
    progress: ProgressConfig = field(default_factory=ProgressConfig)
    start: StartConfig = field(default_factory=StartConfig)  # where episodes start (tmstate.env.start)
    log_dir: str = ""  # write every episode here ("" = no logs)
    map_check_m: float = 20.0
    """With a game backend: the line's map_uid must match the loaded map's; where either is
    unknown, the car must start within this distance of the line's start (0 = no check)."""
    render_width: int = 320
    render_height: int = 240
    backend_options: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments of the backend: tminterface: GameConfig fields (host, port,
    timeout_s, frame_size, ...); sim: car (CarConfig fields: preset, params, ...), seed, width_m (its frames use
    ``observation.camera``);
    replay: log_path (required)."""

    def __post_init__(self) -> None:
        check_action_period_ms(self.action_period_ms)
        if not self.map_check_m >= 0:
            raise ConfigError(f"map_check_m must be >= 0 metres, got {self.map_check_m}")
        if self.render_width < 1 or self.render_height < 1:
            raise ConfigError(f"render size must be positive, got {self.render_width}x{self.render_height}")


def load_config(path: str | Path, table: str | None = "env") -> EnvConfig:
    """An :class:`EnvConfig` from a TOML file (its ``[env]`` table by default; None = the whole file)."""
    return load_toml(EnvConfig, path, table)


def make_config(config: EnvConfig | dict | None = None, **overrides: Any) -> EnvConfig:
    """``config`` (or the defaults) with ``overrides`` applied; nested tables merge key by key."""
    if config is None:
        base: dict[str, Any] = {}
    elif isinstance(config, EnvConfig):
        base = _as_dict(config)
    elif isinstance(config, dict):
        base = dict(config)
    else:
        raise ConfigError(f"config must be an EnvConfig or a dict, got {type(config).__name__}")
    for key, value in overrides.items():
        if key == "reward":  # a Reward, RewardConfig, or weights by term name (custom ones too)
            value = _as_dict(reward_config(value)) if not isinstance(value, dict) else reward_table(value)
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            base[key] = _as_dict(value)
        else:
            base[key] = value
    return from_dict(EnvConfig, base, where="EnvConfig")


def _as_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a dict, one level of nesting kept as dicts (shallow copies of values)."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = _as_dict(value) if dataclasses.is_dataclass(value) else value
    return out


def resolve_line(name_or_path: str) -> ReferenceLine:
    """The reference line a config's ``map`` names (see :func:`tmstate.backends.sim.track.resolve_line`)."""
    from tmstate.backends.sim.track import resolve_line as resolve

    return resolve(name_or_path)


DEFAULT_SIM_MAP = "sim_easy"
"""The line of a sim env whose ``map`` is empty."""


def _same_line(a: ReferenceLine, b: ReferenceLine) -> bool:
    return a.points.shape == b.points.shape and bool(np.allclose(a.points, b.points, atol=1e-6))


def choose_line(config: EnvConfig, backend: Any) -> ReferenceLine:
    """The line an env runs on: ``config.map``, or the backend's default when it is empty.

    A replay uses the line its log names (:func:`tmstate.backends.replay.line_of_log`, the
    one rule); a ``map`` that is another line than that is an error naming both (rewards on
    the wrong line end the episode early with nothing said)."""
    from tmstate.backends.replay import line_of_log

    if not config.map:
        if config.backend == "sim":
            return resolve_line(DEFAULT_SIM_MAP)
        if config.backend == "replay":
            return line_of_log(backend.metadata, backend.path)
        raise ConfigError(f"map is empty: the {config.backend} backend needs the reference line of the map "
                          "the game is on (make one with tmstate line-from-replay or tmstate record-line)")
    line = resolve_line(config.map)
    if config.backend == "replay" and hasattr(backend, "metadata"):
        try:
            logged = line_of_log(backend.metadata, backend.path)
        except TmstateError:
            return line  # the log names no line that can be found: map is the only word on it
        if not _same_line(line, logged):
            name = backend.metadata.get("map") or logged.metadata.map_name or logged.name
            raise ConfigError(f"map {config.map!r} is not the line the log was driven on ({name!r}); "
                              "leave map empty to use the log's line, or replay a log driven on that map")
    return line


def make_backend(config: EnvConfig, line: ReferenceLine | None) -> Backend:
    """The backend ``config.backend`` names, built with the config's settings.

    ``backend_options`` are checked against the backend's own signature first (names and
    types, like any config table), so an error raised while the backend starts (a bad log,
    a game that does not answer) is reported as itself, never as "bad backend_options".
    """
    cls: Any = backend_class(config.backend)  # each backend takes its own arguments
    options = dict(config.backend_options)
    where = f"backend_options of backend {config.backend!r}"
    if config.backend == "sim":
        if "camera_name" in options:
            raise ConfigError("the simulator's camera is observation.camera (chase | driver | top); "
                              "remove backend_options.camera_name")
        options = check_arguments(cls.__init__, options, where, skip=2)
        return cls(line, action_period_ms=config.action_period_ms, camera_name=config.observation.camera, **options)
    if config.backend == "tminterface":
        options.setdefault("game_speed", config.game_speed)
        return cls(action_period_ms=config.action_period_ms, **options)  # GameConfig checks them
    if config.backend == "replay":
        if "log_path" not in options:
            raise ConfigError("the replay backend needs backend_options={'log_path': <episode log>}")
        options = check_arguments(cls.__init__, options, where, skip=1)
        return cls(options.pop("log_path"), action_period_ms=config.action_period_ms, **options)
    return cls(**check_arguments(cls.__init__, options, where, skip=1))


class TMNFEnv(gym.Env):
    """TrackMania Nations Forever (or the simulator, or a replay) as a Gymnasium env.

    ``TMNFEnv(config=None, *, render_mode=None, backend=None, line=None, **overrides)``:
    ``config`` an :class:`EnvConfig` or dict, ``overrides`` any of its fields (nested
    tables as dicts: ``reward={"time": 0.001}``). ``backend`` is a backend name, or a ready
    :class:`~tmstate.backends.base.Backend` to drive (the env then owns and closes it); ``line``
    a ready :class:`~tmstate.core.reference.ReferenceLine` instead of ``config.map``.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 20}

    def __init__(self, config: EnvConfig | dict | None = None, *, render_mode: str | None = None,
                 backend: Backend | str | None = None, line: ReferenceLine | None = None,
                 **overrides: Any) -> None:
        if isinstance(backend, str):
            overrides["backend"] = backend
            backend = None
        reward = overrides.get("reward")
        self.config = make_config(config, **overrides)
        if self.config.log_dir:  # a read-only disk or a file in the way fails now, not at the first episode's end
            ensure_folder(self.config.log_dir, "log_dir")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode must be None, 'rgb_array' or 'human', got {render_mode!r}")
        self.render_mode = render_mode
        c = self.config
        self.metadata = {**self.metadata, "render_fps": max(1, round(1000 / c.action_period_ms))}
        if c.start.spread and c.backend == "replay" and backend is None:
            raise ConfigError(f"start.mode {c.start.mode!r} needs the sim or the game; the replay backend "
                              "plays a log from where it started (set start.mode = \"line_start\")")
        if line is None and c.backend == "replay" and backend is None:
            backend = make_backend(c, None)  # the line the log was driven on, from its metadata
        if line is None:
            try:
                line = choose_line(c, backend)
            except BaseException:
                if backend is not None:
                    backend.close()
                raise
        self.line = line
        self.backend: Backend = backend if backend is not None else make_backend(c, self.line)
        try:
            self.actions: ActionType = (action_type(c.action, brake_threshold=c.brake_threshold)
                                        if c.action == "continuous" else action_type(c.action))
            self.action_space = self.actions.space()
            self.observation = observation_type(c.observation, self.backend, self.line)
            self.observation_space = self.observation.space()
        except BaseException:
            self.backend.close()  # do not leave a game connection or window behind
            raise
        self.scorer = Scorer(self.line, reward if isinstance(reward, Reward) else c.reward, c.termination,
                             c.progress)
        self.tracker = self.scorer.tracker
        self.starts = StartSampler(c.start, self.line.length_m)
        self._bank: Any = None  # the game's start-state bank (formats.starts.StartBank), loaded at the first spread start
        self._bank_every = float(c.start.bank_every_m)  # grow the bank while episodes run (0 = off)
        self._bank_next = 0.0  # this episode's next arc length to save a state at
        self._bank_grew = False
        self.state: GameState | None = None
        self.location: Location | None = None
        self._progress_m = 0.0
        self._done = True
        self._map_checked = False
        self._checkpoint_check = False  # the first checkpoint still to check (map by position)
        self._log: Any = None  # the EpisodeLogWriter, made at the first logged episode
        self._log_open = False
        self._log_error = ""
        self._cut_reason = ""
        """Why the open episode stopped if a reset comes next (a step that timed out)."""
        self.last_log_path: Path | None = None
        self.log_errors = 0
        """Episode logs that could not be written (reported once, in a LogWriteWarning)."""
        self._render_source: RenderedFrames | None = None
        self._window: Any = None  # tmstate.env.window.Window in human mode, opened on first render

    # --- Gymnasium API ------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self._close_log(self._cut_reason)
        self._cut_reason = ""
        state = self.backend.reset(seed)
        if not self._map_checked:  # at race time 0, before any spread start
            self._check_map(state)
        if self.config.start.spread:
            state = self._start_along_the_track(state)
        location = self.scorer.reset(state)
        self._progress_m = self.scorer.progress_m
        if self._bank_every:
            self._bank_next = (self._progress_m // self._bank_every + 1.0) * self._bank_every
        self.state, self.location = state, location
        self._done = False
        obs = self.observation.reset(state, location)
        if self.config.log_dir:
            self._open_log(state)
        if self.render_mode == "human":
            self.render()
        return obs, self._info(state, location, {}, "")

    def _check_map(self, state: Any) -> None:
        """Refuse a line made on another map than the game's (once per env).

        The loaded map's uid against the line's ``map_uid`` when both are known, else the
        car's start against the line's start: a line that trains on the wrong map gives
        rewards that mean nothing, silently."""
        identity = self.backend.map_identity()
        self._map_checked = True
        if identity is None or self.config.map_check_m == 0:
            return
        uid, name = identity
        meta = self.line.metadata
        line_name = meta.map_name or self.line.name
        if uid and meta.map_uid:
            if uid != meta.map_uid:
                raise MapMismatchError(
                    f"reference line {self.line.name} was made on map {line_name!r} (uid {meta.map_uid}), but the game "
                    f"has {name!r} (uid {uid}) loaded — load that map (GameConfig.challenge) or use the loaded map's line"
                )
            return
        distance = float(np.linalg.norm(np.asarray(state.position) - self.line.points[0]))
        self._checkpoint_check = bool(meta.checkpoints_m) and not self.config.start.spread
        if distance > self.config.map_check_m:
            raise MapMismatchError(
                f"the car starts {distance:.0f} m from the start of reference line {self.line.name} (map {line_name!r}); "
                f"the game has {name or 'another map'!r} loaded — load the line's map or use the loaded map's line "
                f"(map_check_m={self.config.map_check_m:g})"
            )

    def _check_first_checkpoint(self, prev: GameState, state: GameState) -> None:
        """Where the map was checked by the start position only: the car must pass the
        game's first checkpoint near the line's first one (within twice ``map_check_m``,
        a checkpoint block being about 32 m wide)."""
        self._checkpoint_check = False
        if prev.checkpoint_count != 0:
            return
        expected = self.line.point_at(self.line.metadata.checkpoints_m[0])
        distance = float(np.linalg.norm(np.asarray(state.position) - expected))
        if distance > 2 * self.config.map_check_m:
            meta = self.line.metadata
            raise MapMismatchError(
                f"the car passed its first checkpoint {distance:.0f} m from the first checkpoint of reference line "
                f"{self.line.name} (map {meta.map_name or self.line.name!r}); the game has another map loaded — load "
                f"the line's map or use the loaded map's line (map_check_m={self.config.map_check_m:g})"
            )

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if self.state is None or self._done:
            raise TmstateError("step() called before reset() or after the episode ended; call reset() first")
        inputs = self.actions.to_input(action)
        prev = self.state
        try:
            state = self.backend.step(inputs)
        except BaseException as exc:
            self._step_failed(exc)
            raise
        self._cut_reason = ""
        if self._checkpoint_check and state.checkpoint_count > prev.checkpoint_count:
            self._check_first_checkpoint(prev, state)
        scored = self.scorer.step(prev, state)
        location, terms, reason = scored.location, scored.terms, scored.reason
        terminated, truncated = scored.terminated, scored.truncated
        self._progress_m = scored.progress_m
        if self._bank_every and scored.progress_m >= self._bank_next and location.credited:
            self._grow_bank(state, scored)
        self.state, self.location = state, location
        obs = self.observation.observe(state, location)
        info = self._info(state, location, terms, reason)
        if self._log_open:
            self._log.add(inputs, state, terms, terminated, truncated, reason)
        if terminated or truncated:
            self._done = True
            self.starts.record_end(scored.progress_m)
            if self._bank_grew:
                self._save_bank()
            path = self._close_log()
            if path is not None:
                info["log_path"] = str(path)
            elif self._log_error:
                info["log_error"] = self._log_error
        if self.render_mode == "human":
            self.render()
        return obs, float(scored.reward), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """The current frame as (render_height, render_width, 3) uint8 (``render_mode="rgb_array"``);
        in ``"human"`` mode it is shown in a window (pygame, extra ``[human]``) with the speed
        and race time, at ``render_fps`` (``reset`` and ``step`` call this themselves)."""
        if self.render_mode == "human":
            from tmstate.env.window import Window

            if self._window is None:
                self._window = Window(self.config.render_width, self.config.render_height,
                                      title=f"tmstate: {self.line.metadata.map_name or self.line.name}",
                                      fps=self.metadata["render_fps"])
            self._window.show(self.frame(), self.status_lines())
            if self._window.poll().quit:
                self._window.close()
            return None
        if self.render_mode != "rgb_array":
            return None
        return self.frame()

    def status_lines(self) -> list[str]:
        """The text a window shows over the frame: speed, race time, checkpoints."""
        state = self.state if self.state is not None else GameState()
        text = f"{state.speed * 3.6:5.0f} km/h   {max(state.race_time_ms, 0) / 1000:6.2f} s"
        if state.checkpoint_target:
            text += f"   cp {state.checkpoint_count}/{state.checkpoint_target}"
        return [text + ("   finished" if state.finished else "")]

    def frame(self) -> np.ndarray:
        """The current view at the render size: the backend's frame, else the schematic one."""
        w, h = self.config.render_width, self.config.render_height
        frame = self.backend.frame(w, h) if self.state is not None else None
        if frame is None:
            if self._render_source is None:
                self._render_source = RenderedFrames(self.line, w, h, self.config.observation.camera)
            state = self.state if self.state is not None else GameState()
            frame = self._render_source(state)
        return frame

    def close(self) -> None:
        self._close_log()
        if self._bank_grew:  # an episode cut short still leaves its saved states
            self._save_bank()
        if self._window is not None:
            self._window.close()
            self._window = None
        self.observation.close()
        self.backend.close()
        super().close()

    # --- helpers ------------------------------------------------------------------------

    def _start_along_the_track(self, state: GameState) -> GameState:
        """``start.mode`` spreads starts: place the sim car at a drawn arc length, or rewind the
        game to the bank's saved state at or before it (the line's start if there is none)."""
        start = self.starts.draw(self.np_random)
        place = getattr(self.backend, "place", None)
        if callable(place):
            return place(start.arc_m, lateral_m=start.lateral_m, speed_mps=start.speed_mps,
                         yaw_offset_rad=start.yaw_offset_rad)
        if self._bank is None:
            from tmstate.formats.starts import StartBank, bank_path

            self._bank = StartBank.load(self.config.start.bank or bank_path(self.line.name))
        saved = self._bank.at(start.arc_m)
        return state if saved is None else self.backend.restore(saved.blob)

    def _bank_file(self) -> Path:
        from tmstate.formats.starts import bank_path

        return Path(self.config.start.bank) if self.config.start.bank else bank_path(self.line.name)

    def _grow_bank(self, state: GameState, scored: Any) -> None:
        """``start.bank_every_m``: save the game's state here unless the bank has one nearby."""
        from tmstate.formats.starts import StartBank

        every = self._bank_every
        self._bank_next = (scored.progress_m // every + 1.0) * every
        if state.finished or scored.respawned:
            return
        if self._bank is None:
            path = self._bank_file()
            self._bank = StartBank.load(path) if path.is_file() else StartBank(metadata={"line": self.line.name})
        near = self._bank.at(scored.progress_m + 0.5 * every)
        if near is not None and near.arc_m >= scored.progress_m - 0.5 * every:
            return
        self._bank.add(scored.progress_m, state.race_time_ms, self.backend.save())
        self._bank_grew = True

    def _save_bank(self) -> None:
        self._bank.save(self._bank_file())
        self._bank_grew = False

    def _info(self, state: GameState, location: Location, terms: dict[str, float], reason: str) -> dict[str, Any]:
        return {
            "reward_terms": terms,
            "race_time_ms": state.race_time_ms,
            "progress_m": self._progress_m,
            "lateral_m": location.lateral_m,
            "termination_reason": reason,
            "finished": state.finished,
        }

    def log_metadata(self) -> dict[str, Any]:
        """What each episode log records about this env."""
        c = self.config
        meta = {
            "map": self.line.metadata.map_name or c.map,
            "line": self.line.name,
            "line_length_m": self.line.length_m,
            "backend": c.backend,
            "action_period_ms": c.action_period_ms,
            "action": c.action,
            "reward": dataclasses.asdict(c.reward),
            "termination": dataclasses.asdict(c.termination),
        }
        describe = getattr(self.backend, "describe", None)
        if callable(describe):
            meta["backend_details"] = describe()
        return meta

    def _open_log(self, state: GameState) -> None:
        from tmstate.formats.log import EpisodeLogWriter

        if self._log is None:
            self._log = EpisodeLogWriter(self.config.log_dir, metadata=self.log_metadata())
        self._log.begin(state)
        self._log_open = True

    def _step_failed(self, exc: BaseException) -> None:
        """The same rule as the vector env (:func:`tmstate.errors.is_game_lost`): a lost
        connection ends the episode, its log written with the last step truncated for
        ``game_lost``; a timeout leaves it open (the next step resumes the plugin's answer),
        and a reset after it logs the episode as cut for ``game_lost`` too."""
        if is_connection_lost(exc):
            self.abort_episode(GAME_LOST_REASON)
        elif is_game_lost(exc):
            self._cut_reason = GAME_LOST_REASON

    def abort_episode(self, reason: str) -> Path | None:
        """End the episode from outside (e.g. its game was lost); its log, if any, is written
        with the last step truncated for ``reason``. Returns the log's path."""
        self._done = True
        return self._close_log(reason)

    def _close_log(self, cut_reason: str = "") -> Path | None:
        """Write the open episode's log. A log that cannot be written (disk full, folder
        gone read-only) does not stop the env: the first failure is reported in a
        :class:`~tmstate.errors.LogWriteWarning`, each one in ``info["log_error"]`` of the
        episode's last step and counted in :attr:`log_errors`; later episodes are tried again."""
        self._log_error = ""
        if not self._log_open:
            return None
        self._log_open = False
        try:
            self.last_log_path = Path(self._log.end(cut_reason))
        except FileWriteError as exc:
            self.log_errors += 1
            self._log_error = str(exc)
            if self.log_errors == 1:
                warnings.warn(f"episode log not written: {exc}; the env goes on (later episodes are tried again, "
                              "each failure is in info['log_error'])", LogWriteWarning, stacklevel=3)
            return None
        return self.last_log_path


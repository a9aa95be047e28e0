"""The ``"tminterface"`` backend: the real TMNF (or the plugin harness) through the bridge.

Reset is rewind-based: the first reset restarts the race, takes the STATE at race time 0
and saves a state there; every later reset rewinds to that save state, which is faster
than a restart and skips the countdown. The game runs sped up (``game_speed``, 10× by
default) since the plugin pauses it at every action step anyway.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from tmstate.backends.base import Backend
from tmstate.core.state import Action
from tmstate.link.bridge import DEFAULT_HOST, Bridge
from tmstate.link.protocol import DEFAULT_PORT
from tmstate.config import check_port, from_dict
from tmstate.errors import BridgeError, ConfigError, PluginError
from tmstate.core.state import GameState, check_action_period_ms
from tmstate.link.protocol import MAX_GAME_SPEED, ErrorCode

STEER_MODES = ("analog", "binary")
"""Values of :attr:`GameConfig.steer_mode`."""


@dataclass
class GameConfig:
    """How to reach and drive one game instance (TOML table ``[game]``)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    action_period_ms: int = 50
    """Race time per step; a multiple of the game's 10 ms tick."""
    game_speed: float = 10.0
    """Game speed while stepping (1 = real time), at most 100: above that TMInterface may
    drop inputs (its SetInputState docs), so the plugin refuses it."""
    steer_mode: str = "analog"
    """How steering reaches TMNF: ``"analog"`` (TMInterface's analog Steer, the default)
    or ``"binary"`` (the Left/Right keys, full deflection for |steer| >= 0.5), for a game
    that ignores analog steering (``tmstate check --game`` tells; docs/env.md)."""
    timeout_s: float = 10.0
    """How long the client waits for any answer (a restart with countdown takes ~2 s at speed 1)."""
    plugin_timeout_ms: int = 500_000
    """How long the plugin waits for the next action before it releases inputs and drops us.
    Long on purpose (Linesight uses 500 s too): a learner's update between two steps can
    take minutes. A client that dies is replaced at once by the next one that connects
    (docs/protocol.md), so a long wait never locks a restarted trainer out."""
    challenge: str = ""
    """A map to load before the first race (the console's ``map`` command, e.g.
    ``"A01-Race.Challenge.Gbx"``); "" = race on whatever map the game has loaded."""
    challenge_timeout_s: float = 120.0
    """How long to wait for that map to load and its race to run."""
    frame_size: tuple[int, int] | None = None
    """(width, height) of a frame sent with every STATE (auto frames), or None for none."""
    prevent_finish: bool = True
    """Keep the race going after the finish line (the finishing STATE still arrives)."""
    rewind_reset: bool = True
    """Reset by rewinding to the state saved at race time 0 (False: restart every time)."""
    connect_retries: int = 20
    retry_delay_s: float = 0.1
    spin_us: float = 100.0
    """How long a receive polls before it sleeps (``Bridge.spin_us``): a fast answer then
    costs no wake-up. 0 when several games are stepped from threads (the vector env does
    that), where polling threads would only fight over the GIL."""
    token: str = field(default="", repr=False)
    """The instance's auth token ("" = none): a game started by ``tmstate launch`` refuses
    clients without it (its pid file holds it; the vector env passes it for you). Kept out
    of repr so it never lands in a log."""

    def __post_init__(self) -> None:
        check_port(self.port, "GameConfig port")
        check_action_period_ms(self.action_period_ms)
        if not 0 < self.game_speed <= MAX_GAME_SPEED:
            raise ConfigError(
                f"game_speed must be > 0 and <= {MAX_GAME_SPEED:g}, got {self.game_speed} — above "
                f"{MAX_GAME_SPEED:g}x TMInterface may drop inputs; run more game instances instead"
            )
        if self.steer_mode not in STEER_MODES:
            raise ConfigError(f"steer_mode must be one of {', '.join(STEER_MODES)}, got {self.steer_mode!r}")
        if self.challenge_timeout_s <= 0:
            raise ConfigError(f"challenge_timeout_s must be > 0, got {self.challenge_timeout_s}")
        if self.timeout_s <= 0 or self.plugin_timeout_ms < 100:
            raise ConfigError(
                f"timeout_s must be > 0 and plugin_timeout_ms >= 100, got {self.timeout_s} "
                f"and {self.plugin_timeout_ms}"
            )
        if self.frame_size is not None:
            size = tuple(int(v) for v in self.frame_size)
            if len(size) != 2 or min(size) <= 0:
                raise ConfigError(f"frame_size must be (width, height) > 0, got {self.frame_size}")
            self.frame_size = size


class GameBackend(Backend):
    """One TMNF instance driven through :class:`tmstate.link.bridge.Bridge`.

    ``GameBackend(GameConfig(port=8478))`` or ``GameBackend(port=8478, game_speed=5)``.
    Connects on the first :meth:`reset`; after the connection was lost (game restarted),
    the next reset connects again and rewinds to the same start state.
    """

    def __init__(self, config: GameConfig | None = None, **overrides: Any) -> None:
        config = config or GameConfig()
        if overrides:
            merged = {**dataclasses.asdict(config), **overrides}
            config = from_dict(GameConfig, merged, where="GameConfig")
        self.config = config
        self.action_period_ms = config.action_period_ms
        self.bridge = Bridge(
            config.host,
            config.port,
            config.timeout_s,
            connect_retries=config.connect_retries,
            retry_delay_s=config.retry_delay_s,
            spin_us=config.spin_us,
            token=config.token,
        )
        self.start_blob: bytes | None = None
        """The save state at race time 0 that resets rewind to."""
        self._frame_for_seq = -1
        self._challenge_loaded = not config.challenge

    # --- connection --------------------------------------------------------------------

    def _ensure_connected(self) -> None:
        if self.bridge.connected:
            return
        c = self.config
        self.bridge.connect()
        self.bridge.set_timeout(c.plugin_timeout_ms)
        self.bridge.set_action_period(c.action_period_ms)
        self.bridge.set_speed(c.game_speed)
        if c.steer_mode == "binary":
            self.bridge.set_steer_mode(True)
        self.bridge.prevent_finish(c.prevent_finish)
        if c.frame_size is not None:
            self.bridge.set_auto_frame(*c.frame_size)
        if not self._challenge_loaded:
            self._load_challenge()

    def _load_challenge(self) -> None:
        """``map <challenge>`` in the console, then wait until a new map is loaded.

        The load is seen as a change of ``GetCurrentChallenge()``'s uid (the game's map
        name need not match the file name); a map already loaded under the file's name is
        not loaded again."""
        c = self.config
        stem = c.challenge.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
        stem = stem[: -len(".Challenge.Gbx")] if stem.lower().endswith(".challenge.gbx") else stem
        before = self.bridge.get_map()
        if before.name and before.name.lower() == stem.lower():
            self._challenge_loaded = True
            return
        self.bridge.execute(f"map {c.challenge}")
        try:  # the plugin runs console commands in Render(): let the game run out of its wait
            self.bridge.restart()
        except PluginError as exc:
            if exc.code != ErrorCode.NOT_IN_RACE:  # in the menus nothing waits: nothing to end
                raise
        deadline = time.monotonic() + c.challenge_timeout_s
        while time.monotonic() < deadline:
            now = self.bridge.get_map()
            if now.uid and now.uid != before.uid:
                self._challenge_loaded = True
                self.start_blob = None  # the old map's start state means nothing now
                return
            time.sleep(0.2)
        raise BridgeError(
            f"map {c.challenge!r} did not load within {c.challenge_timeout_s:g} s (the game still has "
            f"{before.name or before.uid or 'no map'!r}) — check the file name is in the game's Challenges folder"
        )

    # --- Backend -----------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> GameState:
        """Back to race time 0: rewind to the start save state (restart the first time)."""
        self._ensure_connected()
        if self.start_blob is not None and self.config.rewind_reset:
            return self._mark_frame(self.bridge.rewind(self.start_blob))
        state = self.bridge.restart()
        if state.race_time_ms != 0:
            raise BridgeError(
                f"expected the STATE at race time 0 after RESTART, got race time "
                f"{state.race_time_ms} ms — is the action period a divisor of the race start?"
            )
        self.start_blob = self.bridge.save_state().blob
        return self._mark_frame(state)

    def step(self, action: Action) -> GameState:
        return self._mark_frame(self.bridge.act(action))

    def save(self) -> bytes:
        return self.bridge.save_state().blob

    def restore(self, snapshot: bytes) -> GameState:
        return self._mark_frame(self.bridge.rewind(snapshot))

    def frame(self, width: int, height: int) -> np.ndarray:
        """The current image as (height, width, 3) uint8 RGB.

        The auto frame of the current state when auto frames of this size are on,
        otherwise a REQUEST_FRAME round trip. A frame of another size than asked (a game
        window that cannot capture at that size) is resized.
        """
        bgra = None
        if (
            self.config.frame_size == (width, height)
            and self.bridge.last_frame is not None
            and self._frame_for_seq == self.bridge.last_seq
        ):
            bgra = self.bridge.last_frame
        if bgra is None:
            bgra = self.bridge.request_frame(width, height)
        if bgra.shape[:2] != (height, width):
            bgra = cv2.resize(bgra, (width, height), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB)

    def map_identity(self) -> tuple[str, str] | None:
        """The loaded map's uid and name, as the plugin reads ``GetCurrentChallenge()``."""
        self._ensure_connected()
        info = self.bridge.get_map()
        return info.uid, info.name

    def close(self) -> None:
        self.bridge.close()

    def _mark_frame(self, state: GameState) -> GameState:
        if self.bridge.auto_frame is not None:
            self._frame_for_seq = self.bridge.last_seq
        return state

"""The ``"tminterface"`` backend: the real TMNF (or the plugin harness) through the bridge.

Reset is rewind-based: the first reset restarts the race, takes the STATE at race time 0
and saves a state there; every later reset rewinds to that save state, which is faster
than a restart and skips the countdown. The game runs sped up (``game_speed``, 10× by
default) since the plugin pauses it at every action step anyway.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from tmstate.backends.base import Backend
from tmstate.core.state import Action
from tmstate.link.bridge import DEFAULT_HOST, Bridge
from tmstate.link.protocol import DEFAULT_PORT
from tmstate.config import check_port, from_dict
from tmstate.errors import BridgeError, ConfigError
from tmstate.core.state import GameState, check_action_period_ms


@dataclass
class GameConfig:
    """How to reach and drive one game instance (TOML table ``[game]``)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    action_period_ms: int = 50
    """Race time per step; a multiple of the game's 10 ms tick."""
    game_speed: float = 10.0
    """Game speed while stepping (1 = real time). Speed-up is the default."""
    timeout_s: float = 10.0
    """How long the client waits for any answer (a restart with countdown takes ~2 s at speed 1)."""
    plugin_timeout_ms: int = 500_000
    """How long the plugin waits for the next action before it releases inputs and drops us.
    Long on purpose (Linesight uses 500 s too): a learner's update between two steps can
    take minutes. A client that dies is replaced at once by the next one that connects
    (docs/protocol.md), so a long wait never locks a restarted trainer out."""
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
        if not self.game_speed > 0:
            raise ConfigError(f"game_speed must be > 0, got {self.game_speed}")
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

    # --- connection --------------------------------------------------------------------

    def _ensure_connected(self) -> None:
        if self.bridge.connected:
            return
        c = self.config
        self.bridge.connect()
        self.bridge.set_timeout(c.plugin_timeout_ms)
        self.bridge.set_action_period(c.action_period_ms)
        self.bridge.set_speed(c.game_speed)
        self.bridge.prevent_finish(c.prevent_finish)
        if c.frame_size is not None:
            self.bridge.set_auto_frame(*c.frame_size)

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

    def close(self) -> None:
        self.bridge.close()

    def _mark_frame(self, state: GameState) -> GameState:
        if self.bridge.auto_frame is not None:
            self._frame_for_seq = self.bridge.last_seq
        return state

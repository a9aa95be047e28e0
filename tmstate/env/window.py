"""A window on the screen for ``render_mode="human"`` and ``tmstate drive`` (pygame, extra ``[human]``).

:class:`Window` shows RGB frames with a line of text over them (speed, race time), keeps a
steady frame rate, and reports the keyboard: the arrow keys (or WASD) as a
``(steer, gas - brake)`` action, Esc or closing the window to quit, R or Backspace to
restart. pygame is imported only when a window opens, so the env needs it only in human
mode; ``SDL_VIDEODRIVER=dummy`` runs it with no display (tests).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from tmstate.errors import TmstateError

TEXT_COLOUR = (255, 255, 255)
TEXT_SHADOW = (0, 0, 0)


@dataclass
class Keys:
    """What the keyboard says after :meth:`Window.poll`."""

    steer: float = 0.0  # -1 left, +1 right
    gas: bool = False
    brake: bool = False
    restart: bool = False  # pressed since the last poll
    quit: bool = False  # Esc, Q or the window closed

    @property
    def action(self) -> np.ndarray:
        """The continuous action ``(steer, gas - brake)`` the keys make."""
        return np.array([self.steer, float(self.gas) - float(self.brake)], dtype=np.float32)


def _pygame():
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError:
        raise TmstateError('a window needs pygame: pip install -e ".[human]" (or bash scripts/setup.sh human)') from None
    return pygame


def overlay_text(frame: np.ndarray, lines: list[str]) -> np.ndarray:
    """``frame`` with ``lines`` written at its top left (white on a black outline), in place."""
    height = frame.shape[0]
    scale = max(0.5, height / 480 * 0.8)
    thickness = max(1, int(round(scale * 2)))
    step = int(round(28 * scale)) + 4
    for i, text in enumerate(lines):
        origin = (8, 8 + step * (i + 1) - 6)
        cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_SHADOW, thickness + 2, cv2.LINE_AA)
        cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_COLOUR, thickness, cv2.LINE_AA)
    return frame


class Window:
    """A window of ``width`` x ``height`` titled ``title`` that shows frames at up to ``fps``."""

    def __init__(self, width: int, height: int, title: str = "tmstate", fps: float = 20.0) -> None:
        pygame = _pygame()
        self._pg = pygame
        try:
            pygame.display.init()
            self.screen = pygame.display.set_mode((int(width), int(height)))
        except pygame.error as exc:
            raise TmstateError(f"cannot open a window ({exc}); set DISPLAY to an X server, "
                               "or SDL_VIDEODRIVER=dummy for no screen") from None
        pygame.display.set_caption(title)
        self.width, self.height = int(width), int(height)
        self.fps = float(fps)
        self.clock = pygame.time.Clock()
        self.closed = False
        self._restart = False

    def show(self, frame: np.ndarray, lines: list[str] | None = None) -> None:
        """Draw ``frame`` (H, W, 3) RGB uint8, resized to the window, with ``lines`` of text; then wait
        so frames come no faster than ``fps``."""
        if self.closed:
            return
        if frame.shape[0] != self.height or frame.shape[1] != self.width:
            frame = cv2.resize(frame, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        else:
            frame = frame.copy()
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        if lines:
            overlay_text(frame, lines)
        surface = self._pg.image.frombuffer(np.ascontiguousarray(frame).tobytes(), (self.width, self.height), "RGB")
        self.screen.blit(surface, (0, 0))
        self._pg.display.flip()
        if self.fps > 0:
            self.clock.tick(self.fps)

    def poll(self) -> Keys:
        """Handle the window's events; the keys held now and whether to quit or restart."""
        pg = self._pg
        keys = Keys()
        if self.closed:
            keys.quit = True
            return keys
        for event in pg.event.get():
            if event.type == pg.QUIT:
                keys.quit = True
            elif event.type == pg.KEYDOWN:
                if event.key in (pg.K_ESCAPE, pg.K_q):
                    keys.quit = True
                elif event.key in (pg.K_r, pg.K_BACKSPACE):
                    keys.restart = True
        held = pg.key.get_pressed()
        left = held[pg.K_LEFT] or held[pg.K_a]
        right = held[pg.K_RIGHT] or held[pg.K_d]
        keys.steer = float(right) - float(left)
        keys.gas = bool(held[pg.K_UP] or held[pg.K_w])
        keys.brake = bool(held[pg.K_DOWN] or held[pg.K_s])
        return keys

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._pg.display.quit()

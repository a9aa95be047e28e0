"""X11 window capture under Xvfb, on a real window whose pixels the test draws."""

from __future__ import annotations


import numpy as np
import pytest

pytestmark = pytest.mark.xvfb

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (12, 34, 56)]


@pytest.fixture(scope="module")
def xvfb(xvfb_display: str) -> str:
    """The private Xvfb display of tests/conftest.py, under this module's shorter name."""
    return xvfb_display


class PaintedWindow:
    """A mapped window titled like the game, with _NET_WM_PID, painted in four colour bands."""

    def __init__(self, display_name: str, title: str = "TrackMania Modded", pid: int = 4242) -> None:
        from Xlib import X, Xatom, display

        self.X = X
        self.dpy = display.Display(display_name)
        screen = self.dpy.screen()
        self.window = screen.root.create_window(
            10, 20, 200, 100, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
            background_pixel=0, event_mask=X.StructureNotifyMask,
        )
        self.window.set_wm_name(title)
        self.window.change_property(self.dpy.get_atom("_NET_WM_PID"), Xatom.CARDINAL, 32, [pid])
        self.window.map()
        while self.dpy.next_event().type != X.MapNotify:
            pass
        self.paint(200, 100)

    def paint(self, width: int, height: int) -> None:
        band = width // len(COLOURS)
        for i, (r, g, b) in enumerate(COLOURS):
            gc = self.window.create_gc(foreground=(r << 16) | (g << 8) | b)
            self.window.fill_rectangle(gc, i * band, 0, band, height)
        self.dpy.sync()

    def close(self) -> None:
        self.window.destroy()
        self.dpy.close()


@pytest.fixture
def game_window(xvfb):
    window = PaintedWindow(xvfb)
    yield window
    window.close()


def check_bands(image: np.ndarray, width: int, height: int) -> None:
    assert image.shape == (height, width, 3) and image.dtype == np.uint8
    band = width // len(COLOURS)
    for i, colour in enumerate(COLOURS):
        block = image[:, i * band:(i + 1) * band]
        assert np.all(block == np.array(colour, dtype=np.uint8)), f"band {i} is not {colour}"


@pytest.mark.parametrize("use_shm", [True, False], ids=["mit-shm", "getimage"])
def test_capture_returns_the_known_pixels(game_window, xvfb, use_shm):
    from tmstate.env.xwindow import WindowCapture

    with WindowCapture.find(title="trackmania", display=xvfb, use_shm=use_shm) as capture:
        check_bands(capture.capture(), 200, 100)
        assert capture.shm_active is use_shm
        small = capture.grab(100, 50)
        assert small.shape == (50, 100, 3)
        assert np.all(small[25, 10] == COLOURS[0]) and np.all(small[25, 90] == COLOURS[3])


def test_find_by_title_and_pid(game_window, xvfb):
    from tmstate.env.xwindow import find_windows, open_display

    dpy = open_display(xvfb)
    try:
        by_title = find_windows(dpy, title="Modded")
        by_pid = find_windows(dpy, pid=4242)
        assert [w.id for w in by_title] == [w.id for w in by_pid] == [game_window.window.id]
        assert by_title[0].title == "TrackMania Modded" and by_title[0].pid == 4242
        assert by_title[0].viewable and (by_title[0].width, by_title[0].height) == (200, 100)
        assert find_windows(dpy, title="Modded", pid=1) == []
        assert find_windows(dpy, title="Notepad") == []
    finally:
        dpy.close()


def test_move_resize_focus_then_capture_again(game_window, xvfb):
    from tmstate.env.xwindow import WindowCapture

    with WindowCapture.find(pid=4242, display=xvfb) as capture:
        capture.move_resize(30, 40, 320, 240)
        assert capture.geometry() == (30, 40, 320, 240)
        capture.focus()
        assert game_window.dpy.get_input_focus().focus.id == game_window.window.id
        game_window.paint(320, 240)
        check_bands(capture.capture(), 320, 240)


def test_missing_window_and_display_are_clear_errors(xvfb):
    from tmstate.errors import WindowError
    from tmstate.env.xwindow import WindowCapture

    with pytest.raises(WindowError, match="no window with title"):
        WindowCapture.find(title="TrackMania Nowhere", display=xvfb)
    with pytest.raises(WindowError, match="cannot open X display"):
        WindowCapture.find(title="x", display=":987")


def test_x11_frame_source_feeds_frame_observations(game_window, xvfb, monkeypatch):
    from tmstate.env.observation import ObservationConfig, observation_type
    from tmstate.core.progress import Location
    from tmstate.core.reference import ReferenceLine
    from tmstate.core.state import GameState

    monkeypatch.setenv("DISPLAY", xvfb)
    line = ReferenceLine.from_points([[0.0, 0.0, 0.0], [0.0, 0.0, 100.0]])
    config = ObservationConfig(type="frames", frame_source="x11", window_title="TrackMania", window_pid=4242,
                               width=40, height=20, grayscale=False, stack=1)
    frames = observation_type(config, backend=None, line=line)
    try:
        obs = frames.reset(GameState(), Location(0.0, 0.0, 0.0, 0))
        assert obs.shape == (20, 40, 3)
        for i, colour in enumerate(COLOURS):  # 10-pixel bands after resizing 200 -> 40
            assert np.all(obs[:, i * 10 + 2:i * 10 + 8] == np.array(colour, dtype=np.uint8))
    finally:
        frames.close()


def test_window_of_an_undecodable_layout_is_refused_and_its_connection_closed(xvfb, monkeypatch):
    """An InputOnly window has depth 0: refused, and the display opened for it is closed."""
    from Xlib import X, display
    from Xlib.error import ConnectionClosedError

    from tmstate.env import xwindow
    from tmstate.errors import WindowError

    owner = display.Display(xvfb)
    window = owner.screen().root.create_window(0, 0, 10, 10, 0, 0, X.InputOnly, X.CopyFromParent)
    owner.sync()
    opened = []

    def recording_open(name=None):
        dpy = xwindow.open_display.__wrapped__(name)
        opened.append(dpy)
        return dpy

    recording_open.__wrapped__ = xwindow.open_display
    monkeypatch.setattr(xwindow, "open_display", recording_open)
    try:
        with pytest.raises(WindowError, match="not the 24-bit"):
            xwindow.WindowCapture(window.id, display=xvfb)
        assert len(opened) == 1
        with pytest.raises(ConnectionClosedError):  # a closed connection refuses requests
            opened[0].screen().root.get_geometry()
    finally:
        window.destroy()
        owner.close()


def test_not_found_by_pid_only_does_not_name_a_title(xvfb):
    from tmstate.errors import WindowError
    from tmstate.env.xwindow import WindowCapture

    with pytest.raises(WindowError, match=r"^no window with _NET_WM_PID 999999 on display") as caught:
        WindowCapture.find(pid=999999, display=xvfb)
    assert "None" not in str(caught.value)


def test_an_unmapped_window_of_the_process_is_never_captured(xvfb):
    """Wine gives each GUI process an unmapped 1x1 "Default IME" window with the game's
    _NET_WM_PID: finding by pid before the game window shows must not pick that one."""
    from Xlib import Xatom, display

    from tmstate.env.xwindow import WindowCapture
    from tmstate.errors import WindowError

    owner = display.Display(xvfb)
    helper = owner.screen().root.create_window(0, 0, 1, 1, 0, owner.screen().root_depth)
    helper.set_wm_name("Default IME")
    helper.change_property(owner.get_atom("_NET_WM_PID"), Xatom.CARDINAL, 32, [5151])
    owner.sync()
    try:
        with pytest.raises(WindowError, match=r"_NET_WM_PID 5151 .*none mapped"):
            WindowCapture.find(pid=5151, display=xvfb)
    finally:
        helper.destroy()
        owner.close()

"""The game window under Wine, through X11 (python-xlib): find, focus, move/resize, capture.

- :func:`find_windows` walks the window tree and matches a title substring (``WM_NAME`` or
  ``_NET_WM_NAME``; TMNF under TMLoader is "TrackMania Modded") and/or the process id in
  ``_NET_WM_PID``, which tells several game instances apart. Wine sets it to the Unix pid
  of the Windows process that owns the window: the game that TMLoader started, not the
  ``wine TMLoader.exe`` the launcher ran (``Launcher.game_pid`` finds it). Each Wine GUI
  process also owns an unmapped 1x1 "Default IME" window with the same pid; only mapped
  windows are captured.
- :class:`WindowCapture` grabs the window's client area as RGB. It uses the MIT-SHM
  extension when the X server offers it (the server writes the pixels into shared memory:
  no image data through the socket), else the core ``GetImage`` request.

python-xlib has no MIT-SHM binding, so the three requests needed (Attach, Detach,
GetImage) are declared here with python-xlib's own request framework, and the System V
shared memory segment comes from libc through ctypes.

Capture reads what the X server holds for the window: it must be mapped and not covered
(without a compositor, covered parts read as whatever covers them). Run each game in its
own Xvfb display, or keep its window on top and never minimised.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass

import cv2
import numpy as np
from Xlib import X, Xatom, display as xdisplay, error as xerror
from Xlib.protocol import rq

from tmstate.errors import WindowError

# --- MIT-SHM requests (shmproto.h), declared with python-xlib's request framework ------


class _ShmAttach(rq.Request):
    _request = rq.Struct(
        rq.Card8("opcode"), rq.Opcode(1), rq.RequestLength(),
        rq.Card32("shmseg"), rq.Card32("shmid"), rq.Bool("read_only"), rq.Pad(3),
    )


class _ShmDetach(rq.Request):
    _request = rq.Struct(rq.Card8("opcode"), rq.Opcode(2), rq.RequestLength(), rq.Card32("shmseg"))


class _ShmGetImage(rq.ReplyRequest):
    _request = rq.Struct(
        rq.Card8("opcode"), rq.Opcode(4), rq.RequestLength(),
        rq.Drawable("drawable"), rq.Int16("x"), rq.Int16("y"), rq.Card16("width"), rq.Card16("height"),
        rq.Card32("plane_mask"), rq.Card8("format"), rq.Pad(3), rq.Card32("shmseg"), rq.Card32("offset"),
    )
    _reply = rq.Struct(
        rq.ReplyCode(), rq.Card8("depth"), rq.Card16("sequence_number"), rq.ReplyLength(),
        rq.Card32("visual"), rq.Card32("size"), rq.Pad(16),
    )


_IPC_PRIVATE, _IPC_CREAT, _IPC_RMID = 0, 0o1000, 0


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
    libc.shmget.restype = ctypes.c_int
    libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
    libc.shmat.restype = ctypes.c_void_p
    libc.shmdt.argtypes = [ctypes.c_void_p]
    libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    return libc


class _SharedImage:
    """A System V shared memory segment attached to the X server for ShmGetImage."""

    def __init__(self, dpy: xdisplay.Display, size: int) -> None:
        # python-xlib only knows the extensions it binds: ask the server for MIT-SHM's opcode.
        info = dpy.query_extension("MIT-SHM")
        if info is None or not info.present:
            raise OSError("the X server has no MIT-SHM extension")
        self.dpy = dpy
        self.size = size
        self.libc = _libc()
        self.opcode = info.major_opcode
        self.addr = None
        self.shmid = self.libc.shmget(_IPC_PRIVATE, size, _IPC_CREAT | 0o600)
        if self.shmid < 0:
            raise OSError(ctypes.get_errno(), "shmget failed")
        addr = self.libc.shmat(self.shmid, None, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            self.libc.shmctl(self.shmid, _IPC_RMID, None)
            raise OSError(ctypes.get_errno(), "shmat failed")
        self.addr = addr
        self.array = np.ctypeslib.as_array((ctypes.c_ubyte * size).from_address(addr))
        self.shmseg = dpy.display.allocate_resource_id()
        catcher = xerror.CatchError()
        _ShmAttach(display=dpy.display, onerror=catcher, opcode=self.opcode, shmseg=self.shmseg,
                   shmid=self.shmid, read_only=False)
        dpy.sync()
        # Marked for removal now: the segment lives until both sides detach.
        self.libc.shmctl(self.shmid, _IPC_RMID, None)
        if catcher.get_error() is not None:
            self.libc.shmdt(ctypes.c_void_p(self.addr))
            self.addr = None
            raise OSError(f"the X server could not attach the segment ({catcher.get_error()})")

    def get(self, drawable, width: int, height: int) -> np.ndarray:
        reply = _ShmGetImage(display=self.dpy.display, opcode=self.opcode, drawable=drawable, x=0, y=0,
                             width=width, height=height, plane_mask=0xFFFFFFFF, format=X.ZPixmap,
                             shmseg=self.shmseg, offset=0)
        return self.array[: reply.size]

    def close(self) -> None:
        if self.addr is None:
            return
        try:
            _ShmDetach(display=self.dpy.display, opcode=self.opcode, shmseg=self.shmseg)
            self.dpy.sync()
        except (xerror.XError, OSError, ConnectionError):
            pass
        self.libc.shmdt(ctypes.c_void_p(self.addr))
        self.addr = None


# --- finding windows ------------------------------------------------------------------


@dataclass(frozen=True)
class WindowInfo:
    """A window found by :func:`find_windows`."""

    id: int
    title: str
    pid: int | None
    width: int
    height: int
    viewable: bool


def open_display(name: str | None = None) -> xdisplay.Display:
    """Connect to the X display ``name`` (default: $DISPLAY)."""
    try:
        return xdisplay.Display(name)
    except (xerror.DisplayError, xerror.ConnectionClosedError, OSError) as exc:
        shown = name or os.environ.get("DISPLAY") or "(DISPLAY not set)"
        raise WindowError(f"cannot open X display {shown}: {exc} — set DISPLAY or start Xvfb") from None


def _title(dpy: xdisplay.Display, window) -> str:
    net_name = dpy.get_atom("_NET_WM_NAME")
    utf8 = dpy.get_atom("UTF8_STRING")
    prop = window.get_full_property(net_name, utf8)
    if prop is not None and prop.value:
        value = prop.value
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    prop = window.get_full_property(Xatom.WM_NAME, X.AnyPropertyType)
    if prop is not None and prop.value:
        value = prop.value
        return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return ""


def _pid(dpy: xdisplay.Display, window) -> int | None:
    prop = window.get_full_property(dpy.get_atom("_NET_WM_PID"), Xatom.CARDINAL)
    if prop is None or len(prop.value) == 0:
        return None
    return int(prop.value[0])


def find_windows(dpy: xdisplay.Display, title: str | None = None, pid: int | None = None) -> list[WindowInfo]:
    """Every window whose title contains ``title`` (case-insensitive) and whose ``_NET_WM_PID``
    is ``pid`` (each criterion only when given), viewable and largest first."""
    found: list[WindowInfo] = []
    stack = [dpy.screen().root]
    wanted = title.lower() if title else None
    while stack:
        window = stack.pop()
        try:
            children = window.query_tree().children
            stack.extend(children)
            if window == dpy.screen().root:
                continue
            name = _title(dpy, window)
            if wanted is not None and wanted not in name.lower():
                continue
            window_pid = _pid(dpy, window)
            if pid is not None and window_pid != pid:
                continue
            if wanted is None and pid is None:
                continue
            geometry = window.get_geometry()
            viewable = window.get_attributes().map_state == X.IsViewable
        except xerror.BadWindow:  # the window went away while we looked
            continue
        found.append(WindowInfo(window.id, name, window_pid, geometry.width, geometry.height, viewable))
    found.sort(key=lambda w: (not w.viewable, -w.width * w.height))
    return found


# --- the capture ----------------------------------------------------------------------


class WindowCapture:
    """Grabs one window's pixels; also focuses and moves/resizes it.

    ``use_shm``: True = MIT-SHM or fail, False = GetImage only, None = MIT-SHM when it works.
    """

    def __init__(self, window_id: int, display: str | None = None, use_shm: bool | None = None) -> None:
        self.dpy = open_display(display)
        self.window = self.dpy.create_resource_object("window", int(window_id))
        self.use_shm = use_shm
        self._shm: _SharedImage | None = None
        self._shm_failed = use_shm is False
        try:
            self.window.get_geometry()
        except xerror.BadDrawable:
            self.dpy.close()
            raise WindowError(f"no X window with id {window_id:#x} on {self.dpy.get_display_name()}") from None
        try:
            self._check_visual()
        except WindowError:
            self.dpy.close()  # do not leave the connection behind
            raise

    @classmethod
    def find(cls, title: str | None = None, pid: int | None = None, display: str | None = None,
             use_shm: bool | None = None) -> WindowCapture:
        """The best match of :func:`find_windows` (viewable, largest)."""
        if not title and not pid:
            raise WindowError("give a window title and/or a process id to find the game window")
        dpy = open_display(display)
        try:
            found = find_windows(dpy, title, pid)
        finally:
            dpy.close()
        wanted = " and ".join(([f"title containing {title!r}"] if title else [])
                              + ([f"_NET_WM_PID {pid}"] if pid else []))
        shown = display or os.environ.get("DISPLAY", "")
        if not found:
            raise WindowError(f"no window with {wanted} on display {shown} — is the game running and its window mapped?")
        if not found[0].viewable:
            # Under Wine a process also owns unmapped helper windows (a 1x1 "Default IME" per
            # GUI thread, with the same _NET_WM_PID): never capture one of those instead.
            raise WindowError(
                f"{len(found)} window(s) with {wanted} on display {shown}, none mapped — "
                "wait until the game shows its window, and never minimise it"
            )
        return cls(found[0].id, display, use_shm)

    def _check_visual(self) -> None:
        """Only the usual 24/32-bit TrueColor layout (bytes B, G, R, X) is decoded."""
        depth = self.window.get_geometry().depth
        screen = self.dpy.screen()
        visual = next((v for d in screen.allowed_depths if d.depth == depth for v in d.visuals), None)
        formats = {f.depth: f.bits_per_pixel for f in self.dpy.display.info.pixmap_formats}
        if depth not in (24, 32) or formats.get(depth) != 32 or visual is None or visual.red_mask != 0xFF0000 \
                or self.dpy.display.info.image_byte_order != X.LSBFirst:
            raise WindowError(
                f"window depth {depth} with {formats.get(depth)} bits per pixel is not the 24-bit "
                "BGRX TrueColor layout this capture decodes — run the game on a 24-bit display"
            )

    @property
    def shm_active(self) -> bool:
        """Whether the last capture went through MIT-SHM."""
        return self._shm is not None

    def geometry(self) -> tuple[int, int, int, int]:
        """(x, y, width, height) of the window relative to its parent."""
        g = self.window.get_geometry()
        return g.x, g.y, g.width, g.height

    def capture(self) -> np.ndarray:
        """The window's client area as (height, width, 3) uint8 RGB."""
        _, _, width, height = self.geometry()
        raw = self._grab_shm(width, height) if not self._shm_failed else None
        if raw is None:
            try:
                reply = self.window.get_image(0, 0, width, height, X.ZPixmap, 0xFFFFFFFF)
            except xerror.XError as exc:
                raise WindowError(f"GetImage of window {self.window.id:#x} failed ({exc}) — is it mapped and on screen?") from None
            raw = np.frombuffer(reply.data, dtype=np.uint8)
        bgrx = raw[: width * height * 4].reshape(height, width, 4)
        return cv2.cvtColor(bgrx, cv2.COLOR_BGRA2RGB)

    def grab(self, width: int | None = None, height: int | None = None) -> np.ndarray:
        """:meth:`capture`, resized to ``width`` x ``height`` when given."""
        image = self.capture()
        if width and height and image.shape[:2] != (height, width):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        return image

    def _grab_shm(self, width: int, height: int) -> np.ndarray | None:
        size = width * height * 4
        try:
            if self._shm is None or self._shm.size < size:
                if self._shm is not None:
                    self._shm.close()
                    self._shm = None
                self._shm = _SharedImage(self.dpy, size)
            return self._shm.get(self.window.id, width, height)
        except (OSError, xerror.XError) as exc:
            if self._shm is not None:
                self._shm.close()
                self._shm = None
            if self.use_shm:
                raise WindowError(f"MIT-SHM capture is not available: {exc}") from None
            self._shm_failed = True
            return None

    def focus(self) -> None:
        """Raise the window and give it the input focus (also asks the window manager)."""
        root = self.dpy.screen().root
        from Xlib.protocol import event

        message = event.ClientMessage(window=self.window, client_type=self.dpy.get_atom("_NET_ACTIVE_WINDOW"),
                                      data=(32, [1, X.CurrentTime, 0, 0, 0]))
        root.send_event(message, event_mask=X.SubstructureRedirectMask | X.SubstructureNotifyMask)
        self.window.configure(stack_mode=X.Above)
        self.window.set_input_focus(X.RevertToParent, X.CurrentTime)
        self.dpy.sync()

    def move_resize(self, x: int, y: int, width: int, height: int) -> None:
        """Move the window to (x, y) and give it a client area of width x height."""
        if width < 1 or height < 1:
            raise WindowError(f"window size must be positive, got {width}x{height}")
        self.window.configure(x=int(x), y=int(y), width=int(width), height=int(height))
        self.dpy.sync()

    def close(self) -> None:
        """Detach shared memory and close the display connection. Safe to call twice."""
        if self._shm is not None:
            self._shm.close()
            self._shm = None
        if self.dpy is not None:
            self.dpy.close()
            self.dpy = None

    def __enter__(self) -> WindowCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

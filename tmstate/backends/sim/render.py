"""Pictures of a car on a track corridor, drawn with OpenCV — a schematic view, not the game's.

The track (asphalt corridor, red/white kerbs, dashed centre line, blue checkpoint bands,
a chequered finish) is drawn once into a top-down raster (0.25 m per pixel by default).
Because the ground is flat, any pinhole camera's view of it is a homography of that
raster, so one ``cv2.warpPerspective`` per frame gives an egocentric view: ``chase``
(behind and above the car), ``driver`` (at the driver's eyes), or ``top`` (from above,
the car pointing up). The car is drawn as a box; walls are only coloured kerbs on the
ground; the sky is a flat colour above the horizon.

Works for any :class:`~tmstate.core.reference.ReferenceLine` (corridor width from its metadata,
else a default), which is also how frame observations are made for the replay backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from typing import Any

import cv2
import numpy as np

from tmstate.errors import ConfigError
from tmstate.core.reference import ReferenceLine
from tmstate.backends.sim.track import Corridor

GRASS = (70, 125, 55)
ASPHALT = (95, 95, 100)
KERB_RED = (200, 40, 40)
KERB_WHITE = (235, 235, 235)
LINE_WHITE = (220, 220, 220)
CHECKPOINT = (40, 90, 220)
SKY = (150, 190, 235)
CAR_BODY = (230, 200, 30)
CAR_ROOF = (150, 120, 10)

_GRASS_GREY = int(cv2.cvtColor(np.array([[GRASS]], np.uint8), cv2.COLOR_RGB2GRAY)[0, 0])
"""Grass as the grey raster has it (OpenCV's own conversion, so the border matches)."""

MAX_RASTER_PX = 8192
"""Largest raster side; a larger track gets a coarser resolution."""


@dataclass(frozen=True)
class Camera:
    """A camera fixed to the car. ``back_m`` behind the car's centre, ``height_m`` above the
    ground, pitched down by ``pitch_deg``, horizontal field of view ``fov_deg``.
    ``top`` cameras look straight down and show ``span_m`` metres across."""

    kind: str
    back_m: float = 0.0
    height_m: float = 0.0
    pitch_deg: float = 0.0
    fov_deg: float = 75.0
    span_m: float = 60.0
    draw_car: bool = True


CAMERAS: dict[str, Camera] = {
    # Pitched down so the track fills the frame: at 64x64 the sky is ~19 % of a chase view
    # and ~31 % of a driver view (it was 39 % and 47 % at 10 and 3 degrees), tested.
    "chase": Camera("chase", back_m=6.0, height_m=5.0, pitch_deg=26.0, fov_deg=75.0),
    "driver": Camera("driver", back_m=-0.2, height_m=1.1, pitch_deg=18.0, fov_deg=80.0, draw_car=False),
    "top": Camera("top", span_m=60.0),
}

_CAR_HALF_WIDTH, _CAR_HALF_LENGTH, _CAR_HEIGHT = 1.0, 2.1, 1.2


def camera(name: str) -> Camera:
    try:
        return CAMERAS[name]
    except KeyError:
        raise ConfigError(f"unknown camera {name!r}; choose one of {', '.join(CAMERAS)}") from None


class TrackRenderer:
    """Draws views of one track; the raster is built on first use and then reused."""

    def __init__(self, line: ReferenceLine, width_m: float | None = None, resolution_m: float = 0.25) -> None:
        self.corridor = Corridor(line, width_m)
        self.line = line
        left, right = self.corridor.edges()
        both = np.vstack([left, right])
        margin = 20.0
        lo = both.min(axis=0) - margin
        hi = both.max(axis=0) + margin
        self.resolution_m = max(resolution_m, float((hi - lo).max()) / MAX_RASTER_PX)
        self.x0 = float(lo[0])
        self.z1 = float(hi[1])
        self.size = (int(math.ceil((hi[0] - lo[0]) / self.resolution_m)) + 1,
                     int(math.ceil((hi[1] - lo[1]) / self.resolution_m)) + 1)
        self._rgb: np.ndarray | None = None
        self._gray: np.ndarray | None = None
        self._car_cache: dict[tuple, Any] = {}

    # --- the raster ---------------------------------------------------------------------

    def to_pixels(self, xz: np.ndarray) -> np.ndarray:
        """World (x, z) points to raster pixel coordinates (u right, v down), float."""
        return np.stack([(xz[:, 0] - self.x0) / self.resolution_m, (self.z1 - xz[:, 1]) / self.resolution_m], axis=1)

    def raster(self, gray: bool = False) -> np.ndarray:
        """The whole track seen from above: (H, W, 3) RGB, or (H, W) grey."""
        if self._rgb is None:
            self._rgb = self._draw()
        if gray:
            if self._gray is None:
                self._gray = cv2.cvtColor(self._rgb, cv2.COLOR_RGB2GRAY)
            return self._gray
        return self._rgb

    def _draw(self) -> np.ndarray:
        width, height = self.size
        img = np.empty((height, width, 3), dtype=np.uint8)
        img[:] = GRASS
        shift = 4
        scale = float(1 << shift)

        def fixed(xz: np.ndarray) -> np.ndarray:
            return np.round(self.to_pixels(xz) * scale).astype(np.int32)

        left, right = self.corridor.edges()
        kerb_px = max(1, int(round(0.8 / self.resolution_m)))
        # The corridor as quads between consecutive edge points (robust where it bends sharply).
        quads = np.stack([left[:-1], left[1:], right[1:], right[:-1]], axis=1)
        for quad in fixed(quads.reshape(-1, 2)).reshape(-1, 4, 2):
            cv2.fillConvexPoly(img, quad, ASPHALT, cv2.LINE_AA, shift)
        cum = self.corridor.cumulative_m
        chunk = np.floor(cum / 4.0).astype(np.int64)  # kerb stripes 4 m long
        for edge in (left, right):
            pts = fixed(edge)
            for k in np.unique(chunk):
                sel = np.nonzero(chunk == k)[0]
                sel = np.append(sel, min(sel[-1] + 1, len(pts) - 1))
                colour = KERB_RED if k % 2 == 0 else KERB_WHITE
                cv2.polylines(img, [pts[sel]], False, colour, kerb_px, cv2.LINE_AA, shift)
        centre = fixed(self.line.points[:, [0, 2]])
        dash = (cum % 9.0) < 3.0
        line_px = max(1, int(round(0.3 / self.resolution_m)))
        for k in np.unique(np.floor(cum / 9.0).astype(np.int64)):
            sel = np.nonzero(dash & (np.floor(cum / 9.0) == k))[0]
            if len(sel) > 1:
                cv2.polylines(img, [centre[sel]], False, LINE_WHITE, line_px, cv2.LINE_AA, shift)
        for arc in self.corridor.checkpoints_m:
            self._band(img, arc, 2.0, CHECKPOINT, fixed)
        self._band(img, 0.0, 0.6, LINE_WHITE, fixed)
        self._finish(img, fixed)
        return img

    def _band(self, img: np.ndarray, arc_m: float, depth_m: float, colour, fixed) -> None:
        """A band across the corridor starting at ``arc_m``, ``depth_m`` long."""
        a = self._across(arc_m)
        b = self._across(min(arc_m + depth_m, self.corridor.length_m))
        quad = np.array([a[0], b[0], b[1], a[1]])
        cv2.fillConvexPoly(img, fixed(quad), colour, cv2.LINE_AA, 4)

    def _across(self, arc_m: float) -> np.ndarray:
        """Left and right edge points at an arc length, (2, 2) in (x, z)."""
        p = self.line.point_at(arc_m)[[0, 2]]
        t = self.line.tangent_at(arc_m)[[0, 2]]
        t = t / max(float(np.linalg.norm(t)), 1e-12)
        n = np.array([t[1], -t[0]]) * self.corridor.half_width_m
        return np.array([p - n, p + n])

    def _finish(self, img: np.ndarray, fixed) -> None:
        """A chequered band ending at the finish line."""
        end = self.corridor.length_m
        rows, cols, cell = 2, max(2, int(self.corridor.width_m // 2)), 2.0
        for r in range(rows):
            a = self._across(max(end - (r + 1) * cell, 0.0))
            b = self._across(max(end - r * cell, 0.0))
            for c in range(cols):
                f0, f1 = c / cols, (c + 1) / cols
                quad = np.array([a[0] + f0 * (a[1] - a[0]), a[0] + f1 * (a[1] - a[0]),
                                 b[0] + f1 * (b[1] - b[0]), b[0] + f0 * (b[1] - b[0])])
                colour = (20, 20, 20) if (r + c) % 2 else (240, 240, 240)
                cv2.fillConvexPoly(img, fixed(quad), colour, cv2.LINE_AA, 4)

    # --- views --------------------------------------------------------------------------

    def view(self, x: float, z: float, yaw: float, width: int, height: int,
             camera_name: str = "chase", gray: bool = False) -> np.ndarray:
        """The view from a car at (x, z) heading ``yaw``: (height, width, 3) RGB or (height, width) grey uint8."""
        return self.views(np.array([x]), np.array([z]), np.array([yaw]), width, height, camera_name, gray)[0]

    def views(self, x: np.ndarray, z: np.ndarray, yaw: np.ndarray, width: int, height: int,
              camera_name: str = "chase", gray: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """The views of N cars: (N, height, width, 3) RGB or (N, height, width) grey uint8.

        The homographies are built for all cars at once; each view is then one
        ``cv2.warpPerspective`` of the track raster; the sky and the car (the same pixels in
        every view of a camera fixed to the car) are painted on all views together.
        """
        if width < 1 or height < 1:
            raise ConfigError(f"frame size must be at least 1x1, got {width}x{height}")
        cam = camera(camera_name)
        src = self.raster(gray)
        grass = _GRASS_GREY if gray else GRASS
        homographies, horizon = self._homographies(cam, np.asarray(x, dtype=np.float64),
                                                   np.asarray(z, dtype=np.float64),
                                                   np.asarray(yaw, dtype=np.float64), width, height)
        n = len(homographies)
        shape = (n, height, width) if gray else (n, height, width, 3)
        if out is None or out.shape != shape:
            out = np.empty(shape, dtype=np.uint8)
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)  # a small view is slower split over OpenCV's threads (and takes CPU from others)
        try:
            for i in range(n):
                cv2.warpPerspective(src, homographies[i], (width, height), dst=out[i], flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=grass)
        finally:
            cv2.setNumThreads(threads)
        if horizon is not None and horizon >= 0:
            out[:, : min(height, int(math.floor(horizon)) + 1)] = _grey(SKY) if gray else SKY
        if cam.draw_car:
            overlay = self._car_overlay(cam, width, height, gray)
            if overlay is not None:
                (lo, hi), alpha, inverse, colour = overlay
                band = out[:, lo:hi].astype(np.uint16)
                band *= inverse
                band += colour
                band >>= 8
                out[:, lo:hi] = band
        return out

    def _homographies(self, cam: Camera, x: np.ndarray, z: np.ndarray, yaw: np.ndarray, width: int,
                      height: int) -> tuple[np.ndarray, float | None]:
        """Raster pixels -> image pixels for N cars (N, 3, 3), and the horizon row (None for a top camera)."""
        s, c = np.sin(yaw), np.cos(yaw)
        res = self.resolution_m
        n = len(x)
        # Raster pixel (u, v, 1) -> world offset from the car (dx, dz), then into the car's
        # frame (right, forward): [[c, -s], [s, c]] @ offset.
        m = np.zeros((n, 3, 3))
        m[:, 0, 0] = c * res
        m[:, 0, 1] = s * res
        m[:, 0, 2] = c * (self.x0 - x) - s * (self.z1 - z)
        m[:, 1, 0] = s * res
        m[:, 1, 1] = -c * res
        m[:, 1, 2] = s * (self.x0 - x) + c * (self.z1 - z)
        m[:, 2, 2] = 1.0
        if cam.kind == "top":
            scale = width / cam.span_m
            to_img = np.array([[scale, 0.0, (width - 1) / 2], [0.0, -scale, 0.7 * (height - 1)], [0.0, 0.0, 1.0]])
            return to_img @ m, None
        focal, cx, cy, pitch = self._intrinsics(cam, width, height)
        sp, cp = math.sin(pitch), math.cos(pitch)
        # A ground point at car-frame (right R, forward F) seen from the camera at height h,
        # ``back`` behind the car, pitched down by p: x_c = R,
        # y_c (image down) = h cos p - (F + back) sin p, z_c (depth) = h sin p + (F + back) cos p.
        h, back = cam.height_m, cam.back_m
        ground_to_cam = np.array([
            [1.0, 0.0, 0.0],
            [0.0, -sp, h * cp - back * sp],
            [0.0, cp, h * sp + back * cp],
        ])
        intr = np.array([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]])
        return (intr @ ground_to_cam) @ m, cy - focal * math.tan(pitch)

    def _car_overlay(self, cam: Camera, width: int, height: int, gray: bool):
        """(row range, alpha, 256 - alpha, premultiplied colour) of the car drawn over a view
        (uint16, in 1/256ths, for the rows the car covers)."""
        key = (cam, width, height, gray)
        if key not in self._car_cache:
            self._car_cache[key] = self._make_overlay(cam, width, height, gray)
        return self._car_cache[key]

    def _make_overlay(self, cam: Camera, width: int, height: int, gray: bool):
        polygons = self._car_polygons(cam, width, height)
        if polygons is None:
            return None
        body, roof = polygons
        alpha = np.zeros((height, width), dtype=np.uint8)
        cv2.fillConvexPoly(alpha, body, 255, cv2.LINE_AA, 4)
        shape = (height, width) if gray else (height, width, 3)
        colour = np.zeros(shape, dtype=np.uint8)
        body_colour = _grey(CAR_BODY) if gray else CAR_BODY
        roof_colour = _grey(CAR_ROOF) if gray else CAR_ROOF
        cv2.fillConvexPoly(colour, body, body_colour, cv2.LINE_AA, 4)
        colour[alpha > 0] = body_colour
        roof_alpha = np.zeros((height, width), dtype=np.uint8)
        cv2.fillConvexPoly(roof_alpha, roof, 255, cv2.LINE_AA, 4)
        a_roof = roof_alpha.astype(np.float32)[..., None] / 255.0 if not gray else roof_alpha.astype(np.float32) / 255.0
        base = colour.astype(np.float32)
        base += (np.asarray(roof_colour, dtype=np.float32) - base) * a_roof
        rows = np.flatnonzero(alpha.any(axis=1))
        if not len(rows):
            return None
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        # Integer blending in 1/256ths: view = (view * (256 - a) + colour * a + 128) >> 8.
        a = (alpha[lo:hi].astype(np.uint16) * 256 + 127) // 255
        if not gray:
            a = a[..., None]
        premultiplied = (np.rint(base[lo:hi]).astype(np.uint16) * a + 128).astype(np.uint16)
        return (lo, hi), a, (256 - a).astype(np.uint16), premultiplied

    @staticmethod
    def _intrinsics(cam: Camera, width: int, height: int) -> tuple[float, float, float, float]:
        focal = (width / 2) / math.tan(math.radians(cam.fov_deg) / 2)
        return focal, (width - 1) / 2, (height - 1) / 2, math.radians(cam.pitch_deg)

    def _car_polygons(self, cam: Camera, width: int, height: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The car's outline and roof in image pixels (fixed for a camera fixed to the car)."""
        corners = np.array([(r, u, f) for r in (-_CAR_HALF_WIDTH, _CAR_HALF_WIDTH) for u in (0.0, _CAR_HEIGHT)
                            for f in (-_CAR_HALF_LENGTH, _CAR_HALF_LENGTH)])
        if cam.kind == "top":
            scale = width / cam.span_m
            px = np.stack([(width - 1) / 2 + scale * corners[:, 0], 0.7 * (height - 1) - scale * corners[:, 2]], axis=1)
            body = px
            roof = np.array([[(width - 1) / 2 + scale * r, 0.7 * (height - 1) - scale * f]
                             for r, f in ((-0.8, -1.2), (0.8, -1.2), (0.8, 0.6), (-0.8, 0.6))])
        else:
            focal, cx, cy, pitch = self._intrinsics(cam, width, height)
            sp, cp = math.sin(pitch), math.cos(pitch)
            d = corners - np.array([0.0, cam.height_m, -cam.back_m])
            xc = d[:, 0]
            yc = -d[:, 1] * cp - d[:, 2] * sp
            zc = d[:, 2] * cp - d[:, 1] * sp
            if (zc <= 0.1).any():
                return None
            px = np.stack([cx + focal * xc / zc, cy + focal * yc / zc], axis=1)
            body = px
            roof = px[corners[:, 1] > 0]
        hull = cv2.convexHull(np.round(body * 16).astype(np.int32))
        roof_hull = cv2.convexHull(np.round(roof * 16).astype(np.int32))
        return hull, roof_hull


def _grey(rgb: tuple[int, int, int]) -> int:
    """The grey level OpenCV's RGB2GRAY gives a colour."""
    return int(round(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]))

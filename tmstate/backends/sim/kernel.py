"""The calibrated car's ticks compiled from C, when a C compiler is at hand (else ``None``).

:class:`~tmstate.backends.sim.car.SimCars` steps its cars in Python: plain floats for one
car, numpy for many. For the calibrated car the per-tick work is the same small sum for
every car, and in numpy most of its cost is numpy's own per-call overhead (about 120 calls
per 10 ms tick), so ``kernel.c`` does the same arithmetic, in the same order as the
plain-float path, in one call per step for all cars: one car and 64 cars step several
times faster, bit for bit the same (tests/test_sim.py compares them).

The source ships with the package; it is compiled on first use with ``cc`` (``$CC``) into
``$XDG_CACHE_HOME/tmstate/sim-kernel/<hash of the source>/`` (never next to the source) and
loaded with ctypes. Without a compiler, or with ``TMSTATE_SIM_KERNEL=0``, the Python paths
run instead (same results, slower); :func:`status` says which and why.

Why hand-written C and not a library: the library for this is numba, which would add
llvmlite (a bundled LLVM, about 100 MB installed) to every install for one loop, and
compile it again at each start; the C here is ~100 lines that any Debian machine with the
harness's build tools compiles once, and the Python paths stay the reference it is tested
against.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from tmstate.files import cache_root

SOURCE = Path(__file__).resolve().parent / "kernel.c"
FLAGS = ("-O2", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math")
"""Compiler flags: no fused multiply-adds and no fast-math, so the doubles round as Python's do."""

_P, _I = ctypes.c_void_p, ctypes.c_int64
_ARGTYPES: list[Any] = [_I, _I, _P, _P, _P, _I, _P, _P, _I, _P, _P, _I, _P, _P, _P, _I, _P] + [_P] * 19
_why_not = ""


def _library_path(compiler: str) -> Path:
    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join((compiler, *FLAGS)).encode()).hexdigest()[:16]
    return cache_root() / "sim-kernel" / digest / "libtmstate_sim.so"


@functools.cache
def library() -> Any:
    """The loaded kernel (a ctypes library), or None: then :func:`status` says why."""
    global _why_not
    if os.environ.get("TMSTATE_SIM_KERNEL", "1") == "0":
        _why_not = "switched off by TMSTATE_SIM_KERNEL=0"
        return None
    compiler = os.environ.get("CC") or "cc"
    if shutil.which(compiler) is None:
        _why_not = f"no C compiler ({compiler!r} not found; install gcc, or set CC)"
        return None
    path = _library_path(compiler)
    try:
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path.parent / ".build.lock", "w") as lock:  # several processes may build at once
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not path.is_file():
                    partial = path.with_suffix(f".{os.getpid()}.tmp")
                    result = subprocess.run([compiler, *FLAGS, "-o", str(partial), str(SOURCE), "-lm"],
                                            capture_output=True, text=True, check=False)
                    if result.returncode != 0:
                        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
                        _why_not = f"{compiler} could not build {SOURCE.name}: " + " | ".join(tail)
                        partial.unlink(missing_ok=True)
                        return None
                    os.replace(partial, path)  # whole or absent, for the other processes
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        _why_not = f"the kernel could not be built or loaded ({exc})"
        return None
    lib.sim_ticks.argtypes = _ARGTYPES
    lib.sim_ticks.restype = None
    return lib


def status() -> str:
    """"compiled (PATH)" when the kernel runs, else why the Python paths run."""
    lib = library()
    return f"compiled ({lib._name})" if lib is not None else f"not used: {_why_not}"


class Kernel:
    """The kernel bound to one :class:`~tmstate.backends.sim.car.SimCars` (calibrated car).

    Holds the addresses of the cars' arrays (they are made once and only written in place)
    and of the car's constants and tables, so a step is one foreign call.
    """

    def __init__(self, lib: Any, cars: Any) -> None:
        k, cor, c = cars._k, cars.corridor, cars.config
        t = k.arrays
        constants = np.array([
            k.steer_step, k.yaw_base, k.yaw_k, k.yaw_alpha, k.slip_rate, k.dead, k.corner, k.steer_drag,
            k.steer_fade, k.slide_free, k.slide_drag, k.drag, k.coast, k.brake, k.gas_brake, k.reverse,
            k.reverse_max, cor.half_width_m - c.car_half_width_m, c.wall_keep_per_tick, cor.last_length2d,
            cor.direction_list[0][0], cor.direction_list[0][1]], dtype=np.float64)
        segments = np.array(cor.segment_list, dtype=np.float64)  # (S, 5): start x, z, direction x, z, length
        normals = np.ascontiguousarray(cor.normal, dtype=np.float64)
        self._held = [constants, t.steer_v, t.steer_max, t.grip_v, t.grip, t.thrust_v, t.thrust, t.up, t.down,
                      segments, normals]  # kept alive: the kernel reads them by address
        self._fixed = (constants.ctypes.data, t.steer_v.ctypes.data, t.steer_max.ctypes.data, len(t.steer_v),
                       t.grip_v.ctypes.data, t.grip.ctypes.data, len(t.grip_v),
                       t.thrust_v.ctypes.data, t.thrust.ctypes.data, len(t.thrust_v),
                       t.up.ctypes.data, t.down.ctypes.data, segments.ctypes.data, cor.segments, normals.ctypes.data)
        arrays = [cars.steer, cars.gas, cars.brake, cars.x, cars.z, cars.yaw, cars.vx, cars.vz, cars.omega,
                  cars.delta, cars.gear, cars.shift, cars.index, cars.along_m, cars.lateral_m, cars.ticks,
                  cars.finished, cars.wall_contact, cars.sliding]
        for a in arrays:
            if not (a.flags.c_contiguous and a.dtype in (np.float64, np.int64)):
                raise TypeError("SimCars arrays must be contiguous float64/int64 for the kernel")
        self._arrays = arrays
        self._addresses = tuple(a.ctypes.data for a in arrays)
        self._n = cars.n
        self._call = lib.sim_ticks

    def ticks(self, ticks: int) -> None:
        """Step every car ``ticks`` ticks with the inputs in its steer/gas/brake arrays."""
        self._call(self._n, ticks, *self._fixed, *self._addresses)

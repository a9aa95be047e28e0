"""``tmstate sim-calibrate``: fit the simulator car to real TMNF ghosts.

Two stages, on the ghosts given (``.Replay.Gbx``, read through tmnf-gbx):

1. **Measured directly**: the grip table (:func:`measure_grip`: how hard the real car
   turns without sliding, by speed) and the four upshift speeds, from the samples where the ghost's shift
   flag rises with an rpm drop at full gas (see :func:`measure_upshifts`); after stage 2
   each is refined by a search within -2..+1 km/h on the one-step speed errors.
2. **Least squares** (scipy, soft-L1 loss) on every "flat" one-step pair (state at t, the
   recorded 10 ms inputs -> the state 100 ms later; see :mod:`tmstate.backends.sim.fidelity`)
   and every flat open-loop 1 s segment (overlapping): residuals are the errors in speed,
   heading and position, scaled by :data:`SCALES` and :data:`LOOP_SCALES`. Free parameters: the full-lock wheel
   angle at 100 km/h and above, the steering rate, the yaw law (base, speed term, lag), the
   lateral slip decay, the shift dead time, the thrust table, the cornering drag, the steering drag, the slide cost, the deceleration under gas + brake, and thrust, grip and drag factors
   on dirt and grass (used by the fidelity test only: the simulator's corridor is road).

Everything else keeps its prior (:data:`PRIORS`, with the reason the data cannot pin it);
the parameter file says which is which, lists the ghosts, and holds the fit's residuals.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from tmstate.backends.sim.fidelity import OPEN_LOOP_S, STEP_S, build_cases, errors, periods, predict, read_ghosts
from tmstate.backends.sim.ghosts import GhostMotion
from tmstate.backends.sim.model import PARAMS_PATH, CarParams, Prepared, gear_for_speed
from tmstate.errors import ConfigError
from tmstate.files import atomic_write_text

PRIORS: dict[str, str] = {
    "steer_max_deg[0:2]": "full lock below 100 km/h: 16 deg, from one sample at 30 km/h (2 samples below 100 km/h)",
    "grip_mps2[0]": "grip below 100 km/h: the 100-150 km/h value (no data below)",
    "downshift_margin_kmh": "downshift 15 km/h below the upshift speed (no clean downshifts in the data)",
    "thrust_mps2[-1]": "thrust at 530 km/h and above: 4.6 m/s^2, the one pair there (SIM_CALIBRATION_NOTES.md); with the drag prior the top speed is about 550 km/h, not measured",
    "slide_free_mps": "slip up to 8 m/s costs no thrust (SIM_CALIBRATION_NOTES.md measurement, not refitted)",
    "drag_per_m": "air drag 0.0002 v^2 (physical prior; at full gas it is inside the fitted thrust)",
    "coast_mps2": "coasting (gas off) 1.0 m/s^2 plus drag (5 coasting pairs, all under full steer)",
    "brake_mps2": "braking without gas 16 m/s^2 (no clean straight-line braking in the data: the ghosts brake only with gas held, to drift)",
    "reverse_mps2": "reverse 5 m/s^2 up to 10 m/s (not in the data)",
    "reverse_max_mps": "reverse 5 m/s^2 up to 10 m/s (not in the data)",
    "rpm_idle": "rpm idle and ceiling 1500 / 11000, linear in speed within a gear (the ghost's rpm unit is unconfirmed)",
    "rpm_max": "rpm idle and ceiling 1500 / 11000, linear in speed within a gear (the ghost's rpm unit is unconfirmed)",
    "surfaces": "dirt and grass factors are fitted on few pairs; the simulator's corridor is all road; ice, boosters, ramps, jumps and heights are not simulated",
}
"""What the data cannot pin, and the prior used instead."""

PRIOR_VALUES: dict[str, Any] = {"drag_per_m": 0.0002, "coast_mps2": 1.0}

# (field, index or None, lower bound, upper bound)
FREE: list[Any] = (
    [("steer_max_deg", i, 4.0, 20.0) for i in range(2, 8)]
    + [("steer_rate_rad_s", None, 0.5, 20.0), ("yaw_base_m", None, 1.0, 10.0), ("yaw_speed_k", None, 0.0, 0.01),
       ("yaw_lag_s", None, 0.011, 0.6)]
    + [("slip_keep", None, 0.01, 1.0), ("shift_dead_s", None, 0.0, 0.5)]
    + [("thrust_mps2", i, 0.0, 25.0) for i in range(13)]
    + [("corner_drag", None, 0.0, 0.3), ("slide_drag_mps2", None, 0.0, 20.0),
       ("steer_drag_mps2_per_rad", None, 0.0, 200.0), ("steer_drag_fade_kmh", None, 20.0, 600.0),
       ("gas_brake_mps2", None, 0.0, 40.0)]
    + [(f"{s}_{q}", None, lo, hi) for s in ("dirt", "grass")
       for q, lo, hi in (("thrust_factor", 0.2, 1.5), ("grip_factor", 0.2, 1.5), ("drag_mps2", -5.0, 15.0))]
)
FITTED_FIELDS = sorted({name for name, *_ in FREE} | {"upshift_kmh", "grip_speeds_kmh", "grip_mps2"})
RPM_LIMITER = 24000.0
"""The ghosts' rpm ceiling (24029 in their unit): wheels free or spinning."""
SCALES = {"speed": 0.015, "heading": 0.0007, "position": 0.05}
"""Residual scales of the one-step pairs (m/s, rad, m)."""
LOOP_SCALES = {"speed": 0.5, "heading": 0.01, "position": 0.5}
"""Residual scales of the open-loop 1 s segments (every flat start, overlapping)."""


def _vector(car: CarParams) -> np.ndarray:
    out = []
    for name, index, _, _ in FREE:
        value = getattr(car, name)
        out.append(value[index] if index is not None else value)
    return np.asarray(out, dtype=np.float64)


def _car(base: CarParams, vector: np.ndarray) -> CarParams:
    values: dict[str, Any] = {}
    for (name, index, _, _), v in zip(FREE, vector, strict=True):
        if index is None:
            values[name] = float(v)
        else:
            current = list(values.get(name, getattr(base, name)))
            current[index] = float(v)
            values[name] = tuple(current)
    return replace(base, **values)


GRIP_BINS_KMH = (100.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0, 450.0, 500.0)


def measure_grip(ghosts: list[GhostMotion]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(speeds km/h, grip m/s^2): the 95th percentile of v * |yaw rate| on ground samples
    without a slide (|lateral speed| < 1 m/s), per 50 km/h bin from 100 km/h, kept rising
    with speed; below 100 km/h the first bin's value (a prior: no data there)."""
    from tmstate.backends.sim.ghosts import pair_masks

    speeds, lateral = [], []
    for g in ghosts:
        ground = pair_masks(g)["ground"]
        ok = np.zeros(len(g.times_ms), dtype=bool)
        ok[:-1] |= ground
        ok[1:] |= ground
        v = g.velocities
        v_lat = np.abs(v[:, 0] * np.cos(g.yaw) - v[:, 2] * np.sin(g.yaw))
        keep = ok & (v_lat < 1.0)
        speed = np.hypot(v[:, 0], v[:, 2])
        speeds.append(speed[keep])
        lateral.append(speed[keep] * np.abs(g.yaw_rate[keep]))
    speed_a = np.concatenate(speeds) * 3.6
    lat_a = np.concatenate(lateral)
    knots: list[float] = [0.0]
    grips: list[float] = []
    for lo, hi in zip(GRIP_BINS_KMH, GRIP_BINS_KMH[1:], strict=False):
        sel = lat_a[(speed_a >= lo) & (speed_a < hi)]
        if len(sel) < 10:
            continue
        knots.append(0.5 * (lo + hi))
        grips.append(max(float(np.percentile(sel, 95)), grips[-1] if grips else 0.0))
    if not grips:
        raise ConfigError("the ghosts have no ground samples above 100 km/h; give ghosts of whole runs")
    return tuple(knots), tuple(round(g, 3) for g in [grips[0]] + grips)


def measure_upshifts(ghosts: list[GhostMotion]) -> tuple[float, ...]:
    """The four upshift speeds (km/h) seen in the ghosts.

    An upshift shows as the shift flag rising with an rpm drop, at full gas. During its dead
    time the car barely gains speed, so when the speed at the flag is within 3 km/h of the
    speed one sample before, the shift began between the two and the speed at the flag is
    the threshold; the median of those per gear. Samples at the rpm limiter (wheels off the
    ground or spinning) are left out.
    """
    found: list[float] = []
    for g in ghosts:
        speed = np.hypot(g.velocities[:, 0], g.velocities[:, 2]) * 3.6
        rises = np.flatnonzero(g.shifting[1:] & ~g.shifting[:-1]) + 1
        for i in rises:
            gas = g.tick_gas[min(g.times_ms[i] // 10 - 1, len(g.tick_gas) - 1)]
            if g.rpm[i] < g.rpm[i - 1] < RPM_LIMITER and gas > 0.5 and abs(speed[i] - speed[i - 1]) <= 3.0 and speed[i] < 600:
                found.append(float(speed[i]))
    found_a = np.asarray(found)
    edges = (60.0, 130.0, 200.0, 290.0, 400.0)
    shifts = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        sel = found_a[(found_a > lo) & (found_a < hi)]
        if len(sel) < 1:
            raise ConfigError(f"the ghosts show no clean upshift between {lo:.0f} and {hi:.0f} km/h; "
                              "give ghosts that accelerate through all five gears")
        shifts.append(round(float(np.median(sel)), 2))
    return tuple(shifts)


def residual_stats(car: CarParams, ghosts: list[GhostMotion], filter_name: str = "flat") -> dict:
    """Mean and 95th percentile of the one-step errors of ``car`` on ``ghosts`` (the fit residuals)."""
    k = Prepared(car)
    out: dict = {}
    groups = build_cases(ghosts, filter_name, periods(STEP_S), k)
    errs = [errors(predict("calibrated", car, c, k), c) for c in groups.values()]
    for key in ("speed_kmh", "heading_deg", "position_m"):
        v = np.concatenate([e[key] for e in errs])
        out[key] = {"mean": round(float(v.mean()), 4), "p95": round(float(np.percentile(v, 95)), 4)}
    out["pairs"] = int(sum(len(c) for c in groups.values()))
    return out


def fit(ghosts: list[GhostMotion], start: CarParams | None = None, max_nfev: int = 120) -> tuple[CarParams, dict]:
    """The fitted car and a summary of the fit (cost, evaluations, residuals)."""
    from scipy.optimize import least_squares

    base = start or CarParams()
    grip_speeds, grip = measure_grip(ghosts)
    base = replace(base, upshift_kmh=measure_upshifts(ghosts), grip_speeds_kmh=grip_speeds, grip_mps2=grip,
                   **PRIOR_VALUES)
    k0 = Prepared(base)
    groups = list(build_cases(ghosts, "flat", periods(STEP_S), k0).values())
    loops = list(build_cases(ghosts, "flat", periods(OPEN_LOOP_S), k0).values())
    if not groups or sum(len(c) for c in groups) < 50:
        raise ConfigError("fewer than 50 flat one-step pairs in the ghosts; give more ghosts of whole runs")
    lo = np.array([b[2] for b in FREE])
    hi = np.array([b[3] for b in FREE])

    def residuals(vector: np.ndarray) -> np.ndarray:
        car = _car(base, vector)
        k = Prepared(car)
        parts = []
        for cases in groups:
            pred = predict("calibrated", car, cases, k)
            speed = np.hypot(pred.vx, pred.vz) - cases.end_speed
            heading = np.angle(np.exp(1j * (pred.yaw - cases.end_yaw)))
            position = np.hypot(pred.x - cases.end_xz[:, 0], pred.z - cases.end_xz[:, 1])
            parts += [speed / SCALES["speed"], heading / SCALES["heading"], position / SCALES["position"]]
        for cases in loops:
            pred = predict("calibrated", car, cases, k)
            speed = np.hypot(pred.vx, pred.vz) - cases.end_speed
            heading = np.angle(np.exp(1j * (pred.yaw - cases.end_yaw)))
            position = np.hypot(pred.x - cases.end_xz[:, 0], pred.z - cases.end_xz[:, 1])
            parts += [speed / LOOP_SCALES["speed"], heading / LOOP_SCALES["heading"],
                      position / LOOP_SCALES["position"]]
        return np.concatenate(parts)

    x0 = np.clip(_vector(base), lo + 1e-9, hi - 1e-9)
    result = least_squares(residuals, x0, bounds=(lo, hi), loss="soft_l1", f_scale=2.0, max_nfev=max_nfev,
                           diff_step=1e-3, x_scale="jac")
    car = _car(base, result.x)
    # The thresholds move the gear boxes' steps, which a finite-difference Jacobian cannot
    # see: refine each upshift speed by a small search around the measured value.
    def total(c: CarParams) -> float:
        k = Prepared(c)
        out = 0.0
        for cases in groups:
            cases.start.gear[:] = gear_for_speed(k, np.hypot(cases.start.vx, cases.start.vz))
            pred = predict("calibrated", c, cases, k)
            out += float(np.sum(np.abs(np.hypot(pred.vx, pred.vz) - cases.end_speed)))
        return out

    ups = list(car.upshift_kmh)
    for i in range(4):
        trials = [ups[i] + d for d in np.arange(-2.0, 1.01, 0.25)]
        costs = [total(replace(car, upshift_kmh=tuple(ups[:i] + [v] + ups[i + 1:]))) for v in trials]
        ups[i] = round(float(trials[int(np.argmin(costs))]), 2)
    car = replace(car, upshift_kmh=tuple(ups))
    summary = {"cost": round(float(result.cost), 3), "evaluations": int(result.nfev), "status": result.message,
               "residuals_flat_one_step": residual_stats(car, ghosts, "flat"),
               "residuals_ground_one_step": residual_stats(car, ghosts, "ground")}
    return car, summary


def params_document(car: CarParams, ghosts: list[GhostMotion], summary: dict) -> dict:
    """The parameter file's content: the car, what is fitted and what is a prior, data and residuals."""
    return {
        "format": "tmstate-car-params/1",
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "car": car.to_dict(),
        "fitted": FITTED_FIELDS,
        "priors": PRIORS,
        "fitted_on": [g.name for g in ghosts],
        "fit": summary,
        "note": "fitted to real TMNF ghosts on flat ground; see docs/sim.md for what the simulator does not model",
    }


def calibrate(ghosts: list[str], output: str | Path | None = None, max_evaluations: int = 120) -> tuple[Path, dict]:
    """``tmstate sim-calibrate``: fit on the ghosts (files or folders), write the parameter
    file (default: the shipped one) atomically; returns its path and content."""
    motions = read_ghosts(ghosts)
    car, summary = fit(motions, max_nfev=max_evaluations)
    path = Path(output) if output else PARAMS_PATH
    document = params_document(car, motions, summary)
    atomic_write_text(path, json.dumps(document, indent=1) + "\n")
    return path, document

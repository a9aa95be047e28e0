"""``tmstate sim-fidelity``: how well car models predict real TMNF ghosts.

For each ghost, and over all of them, two tests on the ghost's own states and inputs:

- **one step**: the state at sample t plus the ten recorded 10 ms inputs -> the predicted
  state at t + 100 ms (two sample periods in the ghosts sampled every 50 ms), compared with
  the recorded one: speed error (km/h), heading error (degrees);
- **open loop 1 s**: from the state at t, the recorded inputs for one second with no
  correction -> the state at t + 1 s: speed, heading and position (m) errors. Segments do not
  overlap, and every sample pair inside one passes the filter.

Filters (:func:`tmstate.backends.sim.ghosts.pair_masks`): ``ground`` (four wheels on a
non-turbo surface, no glitch) and ``flat`` (ground and level: |pitch| < 1.5 deg,
|roll| < 2.5 deg, |vy| < 1 m/s). Models: ``calibrated`` (the shipped or given parameters),
``constant_velocity`` and ``previous`` (the simulator's car before calibration). The
calibrated car gets the slope under it (gravity 24.9 m/s^2 times the ghost's pitch);
the others get none, as before. The calibrated car also gets the surface under it (road,
dirt or grass: two or more wheels; its dirt and grass factors are fitted on few pairs, and
the simulator's corridor is all road). The JSON shape is documented in docs/sim.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tmstate.errors import ConfigError

from tmstate.backends.sim.ghosts import GhostMotion, pair_masks, read_motion
from tmstate.backends.sim.model import CarParams, CarState, Prepared, PreviousCar, gear_for_speed, load_car, rollout

GRAVITY_MPS2 = 24.9
"""TMNF's gravity, measured from 54 airborne parabolas (SIM_CALIBRATION_NOTES.md)."""
FILTERS = ("flat", "ground")
MODELS = ("calibrated", "constant_velocity", "previous")
OPEN_LOOP_S = 1.0
STEP_S = 0.1
"""The one-step horizon: 100 ms, as in SIM_CALIBRATION_NOTES.md."""


def periods(seconds: float):
    """``steps_of`` for :func:`build_cases`: sample periods in ``seconds``."""
    return lambda period: max(1, round(seconds * 1000 / period))


@dataclass
class Cases:
    """Start states, inputs and recorded end states of N prediction cases of one length."""

    ghost: np.ndarray  # (N,) index into the ghost list
    start: CarState
    shift_elapsed_s: np.ndarray  # (N,) time the shift flag has been on at the start (NaN: not shifting)
    surface: np.ndarray  # (N, S) surface class per sample period: 0 road, 1 dirt, 2 grass
    steer: np.ndarray  # (N, T)
    gas: np.ndarray
    brake: np.ndarray
    slope: np.ndarray  # (N, S) per sub-step of one sample period
    end_xz: np.ndarray  # (N, 2)
    end_speed: np.ndarray  # (N,) horizontal m/s
    end_yaw: np.ndarray  # (N,)
    steps: int  # sample periods per case

    def __len__(self) -> int:
        return len(self.ghost)


def _start_state(g: GhostMotion, idx: np.ndarray, k: Prepared | None) -> CarState:
    v = g.velocities[idx]
    speed = np.hypot(v[:, 0], v[:, 2])
    gear = gear_for_speed(k, speed).astype(np.int64) if k is not None else np.zeros(len(idx), dtype=np.int64)
    shift = np.zeros(len(idx))  # set from the shift flag's age by predict()
    return CarState(x=g.positions[idx, 0].copy(), z=g.positions[idx, 2].copy(), yaw=g.yaw[idx].copy(),
                    vx=v[:, 0].copy(), vz=v[:, 2].copy(), omega=g.yaw_rate[idx].copy(),
                    delta=g.wheel_angle[idx].copy(), gear=gear, shift=shift)


DIRT_MATERIALS = (6,)
GRASS_MATERIALS = (2,)


def surface_class(g: GhostMotion) -> np.ndarray:
    """Per sample: 1 if two or more wheels are on dirt, 2 on grass, else 0 (road)."""
    dirt = np.isin(g.materials, DIRT_MATERIALS).sum(axis=1) >= 2
    grass = np.isin(g.materials, GRASS_MATERIALS).sum(axis=1) >= 2
    return np.where(grass, 2, np.where(dirt, 1, 0)).astype(np.int64)


def _shift_age(g: GhostMotion) -> np.ndarray:
    """Per sample: how long the shift flag has been on (half a period at its first sample), NaN if off."""
    age = np.full(len(g.shifting), np.nan)
    run = 0
    for i, on in enumerate(g.shifting.tolist()):
        run = run + 1 if on else 0
        if on:
            age[i] = (run - 0.5) * g.period_ms / 1000.0
    return age


def build_cases(ghosts: list[GhostMotion], filter_name: str, steps_of, k: Prepared | None = None,
                overlap: bool = True) -> dict[int, Cases]:
    """Cases per sample period (ms): ``steps_of(period)`` sample periods each.

    With ``overlap`` every start sample is used (one-step); without, segments are laid end
    to end (open loop).
    """
    grouped: dict[int, list] = {}
    for gi, g in enumerate(ghosts):
        mask = pair_masks(g)[filter_name]
        n = steps_of(g.period_ms)
        starts = []
        i = 0
        while i + n <= len(mask):
            if mask[i:i + n].all():
                starts.append(i)
                i += 1 if overlap else n
            else:
                i += 1
        if not starts:
            continue
        idx = np.asarray(starts)
        ticks = g.period_ms // 10
        t0 = g.times_ms[idx] // 10
        cols = t0[:, None] + np.arange(n * ticks)[None, :]
        end = idx + n
        ev = g.velocities[end]
        slope = GRAVITY_MPS2 * np.sin(g.pitch[idx[:, None] + np.arange(n)[None, :]])
        grouped.setdefault(g.period_ms, []).append(Cases(
            ghost=np.full(len(idx), gi), start=_start_state(g, idx, k), shift_elapsed_s=_shift_age(g)[idx],
            surface=surface_class(g)[idx[:, None] + np.arange(n)[None, :]], steer=g.tick_steer[cols],
            gas=g.tick_gas[cols], brake=g.tick_brake[cols], slope=slope,
            end_xz=g.positions[end][:, [0, 2]], end_speed=np.hypot(ev[:, 0], ev[:, 2]), end_yaw=g.yaw[end], steps=n))
    return {period: _concat(parts) for period, parts in grouped.items()}


def _concat(parts: list[Cases]) -> Cases:
    def cat(name):
        return np.concatenate([getattr(p, name) for p in parts])

    start = CarState(*(np.concatenate([getattr(p.start, f) for p in parts])
                       for f in ("x", "z", "yaw", "vx", "vz", "omega", "delta", "gear", "shift")))
    return Cases(ghost=cat("ghost"), start=start, shift_elapsed_s=cat("shift_elapsed_s"), surface=cat("surface"), steer=cat("steer"), gas=cat("gas"), brake=cat("brake"),
                 slope=cat("slope"), end_xz=cat("end_xz"), end_speed=cat("end_speed"), end_yaw=cat("end_yaw"),
                 steps=parts[0].steps)


def predict(model: str, car: Any, cases: Cases, k: Prepared | None = None) -> CarState:
    """The predicted end state of every case."""
    s = cases.start
    if model == "constant_velocity":
        duration = cases.steer.shape[1] * 0.01
        out = s.copy()
        out.x = s.x + s.vx * duration
        out.z = s.z + s.vz * duration
        return out
    if model == "previous":
        return rollout(car, s, cases.steer, cases.gas, cases.brake)
    ticks = cases.steer.shape[1] // cases.steps
    k = k or Prepared(car)
    state = s.copy()
    age = cases.shift_elapsed_s
    state.shift = np.where(np.isnan(age), 0.0, np.maximum(k.dead - np.nan_to_num(age), 0.0))
    for j in range(cases.steps):  # the slope of each sample period's start
        cols = slice(j * ticks, (j + 1) * ticks)
        state = rollout(car, state, cases.steer[:, cols], cases.gas[:, cols], cases.brake[:, cols],
                        slope=cases.slope[:, j], prepared=k, surface=cases.surface[:, j])
    return state


def errors(pred: CarState, cases: Cases) -> dict[str, np.ndarray]:
    """Absolute errors per case: speed (km/h), heading (deg), position (m)."""
    speed = np.hypot(pred.vx, pred.vz)
    heading = np.angle(np.exp(1j * (pred.yaw - cases.end_yaw)))
    return {"speed_kmh": np.abs(speed - cases.end_speed) * 3.6,
            "heading_deg": np.degrees(np.abs(heading)),
            "position_m": np.hypot(pred.x - cases.end_xz[:, 0], pred.z - cases.end_xz[:, 1])}


def _stats(values: np.ndarray) -> dict[str, float | None]:
    if len(values) == 0:
        return {"mean": None, "p95": None}
    return {"mean": round(float(np.mean(values)), 4), "p95": round(float(np.percentile(values, 95)), 4)}


def evaluate(ghosts: list[GhostMotion], car: CarParams | None = None) -> dict:
    """The fidelity report (docs/sim.md) of ``car`` (default: the shipped calibrated car)."""
    car = car if car is not None else load_car("calibrated")
    k = Prepared(car)
    previous = PreviousCar()
    names = [g.name for g in ghosts]
    collected: dict[str, dict[str, dict[str, Any]]] = {}
    for filter_name in FILTERS:
        one = build_cases(ghosts, filter_name, periods(STEP_S), k)
        loop = build_cases(ghosts, filter_name, periods(OPEN_LOOP_S), k, overlap=False)
        for model in MODELS:
            m = car if model == "calibrated" else previous
            for test, groups in (("one_step", one), ("open_loop_1s", loop)):
                errs, which = [], []
                for cases in groups.values():
                    errs.append(errors(predict(model, m, cases, k), cases))
                    which.append(cases.ghost)
                collected.setdefault(filter_name, {}).setdefault(model, {})[test] = (errs, which)

    def report(select) -> dict:
        out: dict = {}
        for filter_name, models in collected.items():
            out[filter_name] = {}
            for model, tests in models.items():
                entry = {}
                for test, (errs, which) in tests.items():
                    keep = [select(w) for w in which]
                    fields_ = ("speed_kmh", "heading_deg") + (("position_m",) if test == "open_loop_1s" else ())
                    merged = {f: np.concatenate([e[f][kp] for e, kp in zip(errs, keep, strict=True)])
                              if errs else np.zeros(0) for f in fields_}
                    block: dict[str, Any] = {f: _stats(merged[f]) for f in fields_}
                    block["pairs" if test == "one_step" else "segments"] = int(len(merged["speed_kmh"]))
                    entry[test] = block
                out[filter_name][model] = entry
        return out

    result = {"overall": report(lambda w: np.ones(len(w), dtype=bool)),
              "per_ghost": {name: report(lambda w, gi=gi: w == gi) for gi, name in enumerate(names)},
              "ghosts": names, "car": car.name}
    return result


def format_report(result: dict) -> str:
    """The overall figures as a table for people."""
    lines = [f"tmstate sim-fidelity on {len(result['ghosts'])} ghost(s), car {result['car']!r}"]
    for filter_name, models in result["overall"].items():
        one = models["calibrated"]["one_step"]["pairs"]
        seg = models["calibrated"]["open_loop_1s"]["segments"]
        lines.append(f"  filter {filter_name}: {one} one-step pairs, {seg} open-loop 1 s segments (mean / p95)")
        lines.append(f"    {'model':<18} {'1-step km/h':>16} {'1-step deg':>16} {'1 s km/h':>16} {'1 s deg':>16} {'1 s m':>16}")
        for model, tests in models.items():
            cells = []
            for test, key in (("one_step", "speed_kmh"), ("one_step", "heading_deg"), ("open_loop_1s", "speed_kmh"),
                              ("open_loop_1s", "heading_deg"), ("open_loop_1s", "position_m")):
                s = tests[test][key]
                cells.append("-" if s["mean"] is None else f"{s['mean']:.3f} / {s['p95']:.3f}")
            lines.append(f"    {model:<18} " + " ".join(f"{c:>16}" for c in cells))
    return "\n".join(lines)


def read_ghosts(paths: list[str]) -> list[GhostMotion]:
    """Ghost motions from files and folders (every ``*.Replay.Gbx`` in a folder)."""
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        files.extend(sorted(path.glob("*.Replay.Gbx")) if path.is_dir() else [path])
    return [read_motion(f) for f in files]


def fidelity(ghosts: list[str], car_path: str | None = None) -> dict:
    """``tmstate sim-fidelity``: the report on the ghosts (files or folders) for the shipped
    calibrated car, or the one in ``car_path``."""
    car = load_car(car_path) if car_path else None
    if isinstance(car, PreviousCar):
        raise ConfigError("sim-fidelity --car takes a parameter file of the calibrated car; the previous car is always compared")
    return evaluate(read_ghosts(ghosts), car)

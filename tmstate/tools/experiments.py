"""Experiments built on :func:`tmstate.tools.train.train`, each a grid of training runs.

- ``tmstate experiment time-penalty``: one agent per time-penalty weight and seed; finish
  rate and race time against the weight, mean and spread over the seeds.
- ``tmstate experiment random-starts``: PPO with starts at the line's start against starts
  spread along the track, per seed, every run evaluated from the start line.
- ``tmstate experiment tracks``: the training table, one agent per track and seed (tracks
  such as real campaign ghosts, ``A01-Race.Replay.Gbx``), with finish rate and race time
  per track, mean and spread over the seeds.

Each writes ``results.json`` (every run's summary and curve) and a picture into ``--out``,
one sub-folder per run. Figures of a run are its final evaluation (deterministic episodes
from the start line, :func:`tmstate.tools.train.evaluation_config`). A run folder that
already holds a finished run of the same settings is reused, so an experiment that was
stopped resumes where it was (delete the folder to train it again).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from tmstate.env.env import resolve_line
from tmstate.errors import ConfigError
from tmstate.files import atomic_write_text, ensure_folder
from tmstate.tools.train import TrainConfig, run_record, train


def spread(values: list[float]) -> dict[str, Any]:
    """Mean, standard deviation (over runs, ddof 0), min and max of ``values``; None when empty."""
    if not values:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    array = np.asarray(values, dtype=float)
    return {"n": len(values), "mean": float(array.mean()), "std": float(array.std()),
            "min": float(array.min()), "max": float(array.max())}


def _check_seeds(seeds: list[int]) -> None:
    if not seeds or any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds needs one or more whole numbers >= 0, e.g. 0,1,2 (got {seeds})")


def _run(base: TrainConfig, folder: Path, **changes: Any) -> dict[str, Any]:
    """Train one run of a grid into ``folder``; its summary and evaluation curve.

    A finished run of the same settings there is reused, and an unfinished one (stopped
    mid-training) trained again; a run of other settings is refused, as ``tmstate train``
    refuses it.
    """
    config = dataclasses.replace(base, out=str(folder), **changes)
    same_settings = _read_json(folder / "config.json") == json.loads(json.dumps(run_record(config), default=str))
    summary = _read_json(folder / "summary.json") if same_settings else None
    if summary is None or summary.get("timesteps", 0) < config.timesteps or not (folder / "curve.json").is_file():
        summary = train(config, force=same_settings)
    return {"summary": summary, "curve": json.loads((folder / "curve.json").read_text())}


def _read_json(path: Path) -> Any:
    """A JSON file's content, or None if it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def final_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Finish rate and race time over ``runs`` (one value per run, its final evaluation).

    The race time is over the runs whose final evaluation finished; ``finished_runs`` says
    how many did. ``first_finish_timesteps`` is over the runs that ever finished.
    """
    finals = [r["summary"]["final"] or {} for r in runs]
    times = [f["mean_race_time_s"] for f in finals if f.get("mean_race_time_s") is not None]
    firsts = [r["summary"]["first_finish_timesteps"] for r in runs if r["summary"]["first_finish_timesteps"]]
    return {
        "runs": len(runs),
        "finished_runs": len(times),
        "finish_rate": spread([f.get("finish_rate", 0.0) for f in finals]),
        "race_time_s": spread(times),
        "progress_m": spread([f.get("mean_progress_m", 0.0) for f in finals]),
        "return": spread([f.get("mean_return", 0.0) for f in finals]),
        "first_finish_timesteps": spread(firsts),
    }


# --- time penalty -----------------------------------------------------------------------


def time_penalty_experiment(weights: list[float], track: str, timesteps: int, out: str | Path,
                            seeds: list[int] | None = None, base: TrainConfig | None = None) -> dict[str, Any]:
    """Train one agent per time-penalty weight and seed; plot finish rate and race time
    (mean and spread over the seeds) against the weight, with every run's learning curve."""
    if not weights:
        raise ConfigError("--weights needs at least one number, e.g. 0,0.0005,0.001")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ConfigError(f"time-penalty weights must be finite and >= 0, got {weights}")
    seeds = [0] if seeds is None else seeds
    _check_seeds(seeds)
    out = ensure_folder(out, "--out folder")
    base = base or TrainConfig()
    runs = []
    for weight in weights:
        for seed in seeds:
            folder = out / (f"w{weight:g}" if len(seeds) == 1 else f"w{weight:g}-s{seed}")
            run = _run(base, folder, track=track, timesteps=timesteps, time_penalty=weight, seed=seed)
            runs.append({"weight": weight, "seed": seed, **run})
    per_weight = {f"{w:g}": final_figures([r for r in runs if r["weight"] == w]) for w in weights}
    results = {"track": track, "timesteps": timesteps, "algo": base.algo, "seeds": seeds,
               "per_weight": per_weight, "runs": runs}
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    plot_time_penalty(results, out / "time_penalty.png")
    return results


def plot_time_penalty(results: dict[str, Any], path: Path) -> Path:
    """Three panels: finish rate vs weight, race time vs weight (mean, one dot per seed),
    and the learning curves (a colour per weight)."""
    plt = _pyplot()
    from tmstate.tools.plot import save_figure

    weights = list(results["per_weight"])
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), dpi=110)
    for i, key in enumerate(weights):
        runs = [r for r in results["runs"] if f"{r['weight']:g}" == key]
        finals = [r["summary"]["final"] or {} for r in runs]
        rates = [f.get("finish_rate", 0.0) for f in finals]
        axes[0].bar(i, float(np.mean(rates)), color="tab:green", alpha=0.6)
        axes[0].scatter([i] * len(rates), rates, color="k", s=12, zorder=3)
        times = [f["mean_race_time_s"] for f in finals if f.get("mean_race_time_s") is not None]
        if times:
            axes[1].bar(i, float(np.mean(times)), color="tab:blue", alpha=0.6)
            axes[1].scatter([i] * len(times), times, color="k", s=12, zorder=3)
        axes[1].text(i, max(times, default=0.0), f"{len(times)}/{len(runs)} finish", ha="center", va="bottom")
        colour = f"C{i}"
        for j, run in enumerate(runs):
            curve = run["curve"]
            axes[2].plot([p["timesteps"] for p in curve], [p["mean_progress_m"] for p in curve], color=colour,
                         alpha=0.7, label=key if j == 0 else None)
    for ax in axes[:2]:
        ax.set_xticks(range(len(weights)), weights)
        ax.set_xlabel("time penalty per ms")
    axes[0].set_ylim(0, 1.05)
    axes[0].set_ylabel("finish rate (final evaluation)")
    axes[1].set_ylabel("race time of finished runs (s)")
    axes[2].set_xlabel("timesteps")
    axes[2].set_ylabel("evaluation progress (m)")
    axes[2].legend(title="weight")
    fig.suptitle(f"Time-penalty sweep, {results['algo'].upper()} on {track_name(results['track'])} "
                 f"({results['timesteps']:,} steps, seeds {','.join(map(str, results['seeds']))}; dots: one run each)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


# --- random starts ----------------------------------------------------------------------


def start_spread_experiment(track: str, timesteps: int, seeds: list[int], out: str | Path,
                            modes: tuple[str, ...] = ("line_start", "uniform"),
                            base: TrainConfig | None = None) -> dict[str, Any]:
    """PPO with starts at the line's start against starts spread along the track, per seed.

    Every run is evaluated from the start line (:func:`tmstate.tools.train.evaluation_config`), so the
    curves compare how fast each learns the whole track. Results in ``<out>/results.json``
    and ``starts.png``.
    """
    _check_seeds(seeds)
    out = Path(out)
    base = base or TrainConfig(envs=2, eval_every=10_000, eval_episodes=1, tensorboard=False, checkpoint_every=10**9)
    runs = []
    for mode in modes:
        for seed in seeds:
            run = _run(base, out / f"{mode}-s{seed}", track=track, timesteps=timesteps, seed=seed, start=mode)
            runs.append({"mode": mode, "seed": seed, **run})
    per_mode = {mode: final_figures([r for r in runs if r["mode"] == mode]) for mode in modes}
    results = {"track": track, "timesteps": timesteps, "algo": base.algo, "envs": base.envs, "seeds": seeds,
               "per_mode": per_mode, "runs": runs}
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    plot_start_experiment(results, out / "starts.png")
    return results


def plot_start_experiment(results: dict[str, Any], path: Path) -> Path:
    """Evaluation progress and return against timesteps, one line per run, a colour per mode."""
    plt = _pyplot()
    from tmstate.tools.plot import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), dpi=110)
    colours = {"line_start": "tab:blue", "uniform": "tab:orange", "ended": "tab:green"}
    seen = set()
    for run in results["runs"]:
        curve, mode = run["curve"], run["mode"]
        steps = [p["timesteps"] for p in curve]
        label = None if mode in seen else f"start: {mode}"
        seen.add(mode)
        axes[0].plot(steps, [p["mean_progress_m"] for p in curve], color=colours.get(mode), alpha=0.8, label=label)
        axes[1].plot(steps, [p["mean_return"] for p in curve], color=colours.get(mode), alpha=0.8, label=label)
    axes[0].set_ylabel("evaluation progress from the start line (m)")
    axes[1].set_ylabel("evaluation return")
    for ax in axes:
        ax.set_xlabel("timesteps")
        ax.legend()
    fig.suptitle(f"{results['algo'].upper()} on {track_name(results['track'])}: starts at the line's start vs spread "
                 f"along the track ({len(results['runs'])} runs, {results['timesteps']:,} steps each)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


# --- the training table on several tracks ------------------------------------------------


def tracks_experiment(tracks: list[str], seeds: list[int], timesteps: int, out: str | Path,
                      base: TrainConfig | None = None) -> dict[str, Any]:
    """One agent per track and seed; finish rate and race time per track over the seeds.

    A track is anything ``map=`` takes: a sim track, a line file, or a ``.Replay.Gbx`` ghost
    (its line built on the fly). The sub-folder of a run is ``<track name>-s<seed>``.
    """
    if not tracks:
        raise ConfigError("--tracks needs at least one track, e.g. ../shared/realdata/replays/A01-Race_TAS_00_17_61.Replay.Gbx")
    _check_seeds(seeds)
    for track in tracks:  # every map is read before any run trains: a typo in the last fails now
        resolve_line(track)
    out = ensure_folder(out, "--out folder")
    base = base or TrainConfig(tensorboard=False)
    runs = []
    for track in tracks:
        for seed in seeds:
            run = _run(base, out / f"{track_name(track)}-s{seed}", track=track, timesteps=timesteps, seed=seed)
            runs.append({"track": track, "seed": seed, **run})
    per_track = {track_name(t): final_figures([r for r in runs if r["track"] == t]) for t in tracks}
    results = {"timesteps": timesteps, "algo": base.algo, "envs": base.envs, "seeds": seeds,
               "start": base.start_mode(), "per_track": per_track, "runs": runs}
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    atomic_write_text(out / "table.md", tracks_table(results))
    plot_tracks(results, out / "tracks.png")
    return results


def track_name(track: str) -> str:
    """A track's short name: a file's name without ``.Replay.Gbx`` / ``.npz``, or the sim track."""
    name = Path(track).name
    for suffix in (".Replay.Gbx", ".replay.gbx", ".npz", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _mean_spread(figure: dict[str, Any], fmt: str, unit: str = "") -> str:
    if figure["mean"] is None:
        return "—"
    return f"{figure['mean']:{fmt}}{unit} ± {figure['std']:{fmt}}{unit}"


def tracks_table(results: dict[str, Any]) -> str:
    """The markdown table of :func:`tracks_experiment`: a row per track."""
    rows = ["| track | finish rate | race time | runs that finish | progress | first finish at |",
            "|---|---|---|---|---|---|"]
    for name, f in results["per_track"].items():
        rate = f["finish_rate"]
        first = f["first_finish_timesteps"]["mean"]
        first_text = "—" if first is None else f"{first:,.0f} steps"
        rows.append(f"| {name} | {rate['mean']:.0%} ± {rate['std']:.0%} | {_mean_spread(f['race_time_s'], '.2f', ' s')} "
                    f"| {f['finished_runs']}/{f['runs']} | {_mean_spread(f['progress_m'], '.0f', ' m')} "
                    f"| {first_text} |")
    return "\n".join(rows) + "\n"


def plot_tracks(results: dict[str, Any], path: Path) -> Path:
    """Evaluation progress against timesteps, a panel per track, a line per seed."""
    plt = _pyplot()
    from tmstate.tools.plot import save_figure

    names = list(results["per_track"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 3.8), dpi=110, squeeze=False)
    for ax, name in zip(axes[0], names):
        for run in (r for r in results["runs"] if track_name(r["track"]) == name):
            curve = run["curve"]
            ax.plot([p["timesteps"] for p in curve], [p["mean_progress_m"] for p in curve], label=f"seed {run['seed']}")
            finished = [p for p in curve if p["finish_rate"] > 0]
            ax.scatter([p["timesteps"] for p in finished], [p["mean_progress_m"] for p in finished], s=10, color="k")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("timesteps")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("evaluation progress (m); dots: finished")
    fig.suptitle(f"{results['algo'].upper()} per track, {results['timesteps']:,} steps, {len(results['seeds'])} seeds")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

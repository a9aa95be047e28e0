"""``tmstate rewards compare``: returns of logged episodes under several time penalties.

Each episode's states are scored by the env's own :class:`~tmstate.core.scoring.Scorer`
(progress with the logged checkpoint counts, respawn rule, reward terms) once per time-penalty weight, all other weights from
``--config`` (``[reward]`` and optional ``[progress]`` tables) or the defaults. Episodes
are taken as logged: termination is not re-applied. Logs may be episode ``.npz`` files,
folders of them, or ``.Replay.Gbx`` ghosts (a ghost without ``--line`` is measured along
a line built from itself).

Output: a table of returns (episode x setting) with each episode's checkpoint-confirmed
resyncs (count and metres credited by them), a PNG of return against time penalty, and with
``--json`` one JSON object.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from tmstate.config import from_dict, read_toml
from tmstate.errors import ConfigError
from tmstate.core.progress import ProgressConfig
from tmstate.core.reference import ReferenceLine
from tmstate.core.reward import RewardConfig, reward_config, total
from tmstate.core.scoring import Scored, Scorer
from tmstate.core.state import GameState


@dataclass
class Episode:
    """States of one logged run and the line to measure them along."""

    name: str
    states: list[GameState]
    line: ReferenceLine
    metadata: dict


def episode_steps(episode: Episode, reward_config: RewardConfig | None = None,
                  progress_config: ProgressConfig | None = None) -> list[Scored]:
    """Every step of the episode scored by the env's own :class:`~tmstate.core.scoring.Scorer`."""
    return Scorer(episode.line, reward_config, progress=progress_config).run(episode.states)


def episode_return(steps: list[Scored]) -> dict[str, float]:
    """Per-term sums and the total return of scored steps."""
    sums: dict[str, float] = {}
    for step in steps:
        for name, value in step.terms.items():
            sums[name] = sums.get(name, 0.0) + value
    sums["return"] = total(sums)
    return sums


def compare(episodes: list[Episode], penalties: list[float], reward_config: RewardConfig | None = None,
            progress_config: ProgressConfig | None = None) -> dict:
    """``{"penalties": [...], "episodes": [{name, race_time_ms, finished, returns: [...]}, ...]}``."""
    base = reward_config if reward_config is not None else RewardConfig()
    rows = []
    for episode in episodes:
        runs = [episode_steps(episode, dataclasses.replace(base, time=float(w)), progress_config)
                for w in penalties]
        returns = [episode_return(steps)["return"] for steps in runs]
        steps = runs[0] if runs else episode_steps(episode, base, progress_config)
        last = episode.states[-1]
        rows.append({
            "name": episode.name,
            "steps": len(episode.states) - 1,
            "race_time_ms": int(last.race_time_ms - episode.states[0].race_time_ms),
            "finished": bool(last.finished),
            "progress_m": float(sum(step.progress_delta_m for step in steps)),
            "resyncs": sum(step.resynced for step in steps),
            "resync_m": round(sum(step.resync_m for step in steps), 3),
            "line_length_m": episode.line.length_m,
            "returns": returns,
        })
    return {"penalties": [float(w) for w in penalties], "reward": dataclasses.asdict(base), "episodes": rows}


def format_table(result: dict) -> str:
    """The comparison as a fixed-width text table."""
    penalties = result["penalties"]
    name_width = max([len("episode")] + [len(r["name"]) for r in result["episodes"]])
    head = f"{'episode':<{name_width}}  {'time s':>7}  {'fin':>3}  {'progress m':>10}  {'resyncs (m)':>14}  " + "  ".join(
        f"{'w=' + format(w, 'g'):>12}" for w in penalties)
    lines = [head, "-" * len(head)]
    for row in result["episodes"]:
        lines.append(f"{row['name']:<{name_width}}  {row['race_time_ms'] / 1000:>7.2f}  {'yes' if row['finished'] else 'no':>3}  "
                     f"{row['progress_m']:>10.1f}  {_resyncs(row):>14}  " + "  ".join(f"{r:>12.4f}" for r in row["returns"]))
    return "\n".join(lines)


def _resyncs(row: dict) -> str:
    """``count (metres)`` of an episode's checkpoint-confirmed resyncs, e.g. ``3 (2122.2)``."""
    return f"{row['resyncs']} ({row['resync_m']:.1f})" if row["resyncs"] else "0"


def plot(result: dict, output: str | Path) -> Path:
    """PNG: return against time-penalty weight, one line per episode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output = Path(output)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    penalties = result["penalties"]
    for row in result["episodes"]:
        style = "-" if row["finished"] else "--"
        ax.plot(penalties, row["returns"], style, marker="o", label=f"{row['name']} ({row['race_time_ms'] / 1000:.2f} s)")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("time penalty weight (per ms of race time)")
    ax.set_ylabel("episode return")
    ax.set_title("Returns under time penalties (dashed: did not finish)")
    if len(result["episodes"]) <= 12:
        ax.legend(fontsize=7)
    fig.tight_layout()
    from tmstate.tools.plot import save_figure

    save_figure(fig, output)
    plt.close(fig)
    return output


def load_episodes(paths: list[str], line_path: str | None = None) -> list[Episode]:
    """Episodes from log files, folders and ghosts; the line from ``line_path``, else the one the
    log names (:func:`~tmstate.backends.replay.line_of_log`), else (ghosts) one built from itself."""
    from tmstate.backends.replay import line_of_log, load_states
    from tmstate.formats.log import find_logs

    shared = ReferenceLine.load(line_path) if line_path else None
    episodes = []
    for path, name in labelled(find_logs(paths, patterns=("*.npz", "*.Replay.Gbx")), paths):
        if path.name.lower().endswith(".gbx"):
            from tmstate.formats.gbx import ghost_metadata, read_ghost
            from tmstate.tools.lines import line_from_ghost

            ghost = read_ghost(path)
            line = shared if shared is not None else line_from_ghost(ghost)
            episodes.append(Episode(name, ghost.states(), line, ghost_metadata(ghost)))
            continue
        states, metadata = load_states(path)
        line = shared if shared is not None else line_of_log(metadata, path)
        episodes.append(Episode(name, states, line, metadata))
    return episodes


def labelled(files: list[Path], roots: list[str]) -> list[tuple[Path, str]]:
    """Each file with a short row label: the run's folder below the folder given (a vector
    env's ``env1``), then the episode: ``episode-...-00003.npz`` -> ``env1 #3``. Other files
    keep their name; an episode file with no sub-folder is labelled by its own folder."""
    folders = [Path(r).resolve() for r in roots if Path(r).is_dir()]
    out = []
    for path in files:
        parent = path.resolve().parent
        number = path.stem.rsplit("-", 1)[-1]
        numbered = path.stem.startswith("episode-") and number.isdigit()
        episode = f"#{int(number)}" if numbered else path.name
        root = next((f for f in folders if parent == f or f in parent.parents), None)
        if root is not None and parent != root:
            folder = parent.relative_to(root).as_posix()
        else:
            folder = parent.name if numbered else ""
        out.append((path, f"{folder} {episode}" if folder else episode))
    return out


def load_configs(path: str | None) -> tuple[RewardConfig, ProgressConfig]:
    """``[reward]`` and ``[progress]`` tables of a TOML file (each optional)."""
    if not path:
        return RewardConfig(), ProgressConfig()
    data = read_toml(path)
    table = data.get("reward", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}[reward]: expected a table of term weights, got {table!r}")
    reward = reward_config(table, where=f"{path}[reward]")  # registered custom terms by name too
    progress = from_dict(ProgressConfig, data.get("progress", {}), where=f"{path}[progress]")
    return reward, progress

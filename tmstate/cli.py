"""The ``tmstate`` command line.

Each command is a thin layer: it parses arguments here and calls one function
``handler(args) -> int`` in the module that owns the concept, imported only when the
command runs (so ``tmstate --help`` stays fast and never needs the game or a display).
Errors from the tmstate family print as one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from collections.abc import Callable, Sequence

from tmstate import __version__
from tmstate.errors import TmstateError


def _handler(target: str) -> Callable[[argparse.Namespace], int]:
    """A handler that imports ``module:function`` when the command runs."""

    def run(args: argparse.Namespace) -> int:
        module_name, _, function_name = target.partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        return int(function(args) or 0)

    return run


def _csv_floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _size(text: str) -> tuple[int, int]:
    from tmstate.tools.drive import parse_size

    return parse_size(text)


def line_from_replay(args: argparse.Namespace) -> int:
    """``tmstate line-from-replay FILE``: a ghost (``.Replay.Gbx``, :func:`tmstate.tools.lines.line_from_replay`)
    or an episode log (``.npz``, :func:`tmstate.tools.record.line_from_driven_log`)."""
    if str(args.replay).lower().endswith(".gbx"):
        from tmstate.tools.lines import line_from_replay as from_ghost

        figures = from_ghost(args.replay, output=args.output, spacing_m=args.spacing, smooth=args.smooth,
                             check=args.check, other_line=args.line, log_path=args.log)
        if args.json:
            print(json.dumps(figures))
        elif args.check:
            for key, value in figures.items():
                print(f"  {key:<24} {value}")
        else:
            print(f"{figures['output']}: {figures['line_points']} points, {figures['line_length_m']:.1f} m, "
                  f"from {figures['replay']} ({figures['race_time_ms'] / 1000:.2f} s)")
        return 0
    if args.check or args.log or args.line:
        raise TmstateError("--check, --line and --log are for ghosts; an episode log already is a log "
                           "(replay it with backend='replay')")
    from tmstate.tools.record import line_from_driven_log

    result = line_from_driven_log(args.replay, output=args.output, spacing_m=args.spacing)
    if args.json:
        print(json.dumps({k: result[k] for k in ("output", "line_length_m", "line_points")}))
    else:
        print(f"{result['output']}: {result['line_points']} points, {result['line_length_m']:.1f} m, "
              f"{result['checkpoints']} checkpoint(s), from {Path(args.replay).name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tmstate",
        description="RL environment for TrackMania Nations Forever (TMInterface 2), "
        "with an embedded simulator (a simplified car, not TMNF physics).",
    )
    parser.add_argument("--version", action="version", version=f"tmstate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("check", help="what is installed and ready, and what to do if not")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_handler("tmstate.ops.check:main"))

    p = sub.add_parser("demo", help="drive a simulator track with a line-following controller")
    p.add_argument("--track", default=None, help="shipped sim track name (default: the first)")
    p.add_argument("--out", default="out/demo", help="folder for the log, PNG summary and GIF")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-video", action="store_true", help="skip the GIF")
    p.set_defaults(run=_handler("tmstate.tools.demo:main"))

    p = sub.add_parser("harness-demo", help="run the plugin in the AngelScript harness and drive it")
    p.add_argument("--steps", type=int, default=200)
    p.set_defaults(run=_handler("tmstate.link.harness:demo_main"))

    p = sub.add_parser("bench", help="benchmarks (bridge, progress, env, vector)")
    p.add_argument("name", choices=["bridge", "progress", "env", "vector"])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--steps", type=int, default=None, help="override the number of steps")
    p.set_defaults(run=_handler("tmstate.tools.bench:main"))

    p = sub.add_parser("line-from-replay", help="build a reference line from a .Replay.Gbx ghost or an episode log")
    p.add_argument("replay", help="a .Replay.Gbx ghost, or an episode log .npz (the path the car drove)")
    p.add_argument("-o", "--output", default=None, help="default: reference_lines/<map>.npz")
    p.add_argument("--spacing", type=float, default=0.5, help="point spacing in metres")
    p.add_argument("--smooth", type=float, default=0.0, help="smoothing (0 = none)")
    p.add_argument("--check", action="store_true", help="replay the ghost through the reward")
    p.add_argument("--json", action="store_true", help="with --check: print one JSON object")
    p.add_argument("--log", default=None, help="also write the ghost as a states-only episode log (.npz)")
    p.add_argument("--line", default=None, help="with --check: score the ghost along this line instead "
                   "(nothing is built or written)")
    p.set_defaults(run=line_from_replay)

    p = sub.add_parser("drive", help="drive the simulator with the keyboard in a window (extra: [human])",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--track", default="sim_easy",
                   help="a shipped sim track, a .npz/.npy line, or a .Replay.Gbx ghost (its path becomes the track)")
    p.add_argument("--camera", choices=["chase", "driver", "top"], default="chase", help="view")
    p.add_argument("--record-line", default=None, metavar="OUT.npz",
                   help="save the driven run as a reference line (at the finish, or on quitting)")
    p.add_argument("--spacing", type=float, default=0.5, help="recorded line: point spacing in metres")
    p.add_argument("--map", default="", help="recorded line: map name for the metadata (default: the track's)")
    p.add_argument("--size", type=_size, default=(640, 480), metavar="WxH", help="window size in pixels")
    p.add_argument("--once", action="store_true", help="quit at the first finish")
    p.set_defaults(run=_handler("tmstate.tools.drive:main"))

    p = sub.add_parser("record-line", help="record a reference line by driving in the real game")
    p.add_argument("-o", "--output", required=True, help="reference_lines/<map>.npz")
    p.add_argument("--port", type=int, default=None, help="the plugin's port (default: its default port)")
    p.add_argument("--map", default="", help="map name for the metadata")
    p.add_argument("--spacing", type=float, default=0.5)
    p.add_argument("--save-states-every", type=float, default=0.0, metavar="METRES",
                   help="also save the game's state every METRES driven, as the line's start bank "
                   "(<line>.starts.npz) for episodes that start along the track (0 = off)")
    p.set_defaults(run=_handler("tmstate.tools.record:main"))

    p = sub.add_parser("plot-line", help="PNG top view of a reference line")
    p.add_argument("line", help="a .npz or .npy reference line")
    p.add_argument("-o", "--output", default=None, help="default: <line>.png")
    p.add_argument("--ghost", default=None, help="overlay a .Replay.Gbx ghost")
    p.add_argument("--episode", default=None, help="overlay an episode log")
    p.add_argument("--challenge", default=None, help="mark checkpoints from a .Challenge.Gbx")
    p.set_defaults(run=_handler("tmstate.tools.plot:plot_line_main"))

    p = sub.add_parser("plot-progress", help="PNG of a run's credited progress along a line, resync on and off")
    p.add_argument("path", metavar="RUN", help="a .Replay.Gbx ghost or an episode log")
    p.add_argument("--line", required=True, help="the reference line (.npz/.npy)")
    p.add_argument("-o", "--output", default=None, help="default: <run>.progress.png")
    p.set_defaults(run=_handler("tmstate.tools.plot:plot_progress_main"))

    p = sub.add_parser("rewards", help="reward experiments on logged episodes")
    rsub = p.add_subparsers(dest="rewards_command", metavar="SUBCOMMAND", required=True)
    c = rsub.add_parser("compare", help="returns per episode under several time penalties")
    c.add_argument("logs", nargs="+", help="episode log files or folders")
    c.add_argument("--time-penalty", type=_csv_floats, default=[0.0, 0.0005, 0.001])
    c.add_argument("--config", default=None, help="TOML with [reward] weights")
    c.add_argument("--line", default=None, help="reference line (default: from the log)")
    c.add_argument("-o", "--output", default="out/rewards_compare.png")
    c.add_argument("--json", action="store_true")
    c.set_defaults(run=_handler("tmstate.tools.compare:main"))

    p = sub.add_parser("launch", help="start TMNF instances under Wine with the plugin")
    p.add_argument("-n", "--instances", type=int, default=1)
    p.add_argument("--config", default=None, help="launch TOML (paths, profile, ports)")
    p.add_argument("--dry-run", action="store_true", help="print the exact commands only")
    p.add_argument("--stop", action="store_true", help="stop the instances in the pid file")
    p.set_defaults(run=_handler("tmstate.ops.launch:main"))

    p = sub.add_parser("train", help="train PPO/SAC with stable-baselines3 (extra: [train])")
    p.add_argument("--algo", choices=["ppo", "sac"], default="ppo")
    p.add_argument("--track", default=None)
    p.add_argument("--timesteps", type=int, default=200_000)
    p.add_argument("--envs", type=int, default=4, help="sub-envs stepped together")
    p.add_argument("--out", default="runs/train")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-penalty", type=float, default=None)
    p.set_defaults(run=_handler("tmstate.tools.train:main"))

    p = sub.add_parser("experiment", help="reward-design experiments on the simulator")
    esub = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    e = esub.add_parser("time-penalty", help="one agent per time-penalty weight")
    e.add_argument("--weights", type=_csv_floats, default=[0.0, 0.0005, 0.001, 0.002])
    e.add_argument("--track", default=None)
    e.add_argument("--timesteps", type=int, default=100_000)
    e.add_argument("--out", default="runs/time_penalty")
    e.set_defaults(run=_handler("tmstate.tools.train:experiment_main"))

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except TmstateError as exc:
        print(f"tmstate {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tmstate {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

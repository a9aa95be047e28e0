"""The ``tmstate`` command line.

The only module with argparse and print: each command parses its arguments here, calls the
module that owns the concept (imported only when the command runs, so ``tmstate --help``
stays fast and never needs the game or a display) and prints what it returned.
Errors from the tmstate family (and any OSError, such as a full disk) print as one line
and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from collections.abc import Callable, Sequence

from tmstate._version import __version__
from tmstate.errors import TmstateError


def _csv_floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _csv_ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def _csv_ports(text: str) -> list[int]:
    """Comma-separated ports, each checked by the one port rule (:func:`_port`)."""
    return [_port(x.strip()) for x in text.split(",") if x.strip()]


def _size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> (640, 480), at least 16x16 (``tmstate drive --size``)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 640x480, got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"the window must be at least 16x16, got {text!r}")
    return w, h


# --- commands: each calls the module that owns the concept, then prints what it returned.
# Library modules are imported inside the command, so `tmstate --help` stays fast and never
# needs the game, a display or the optional dependencies.


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    """``tmstate check [--json]``: exit status 1 when a required dependency is missing.
    ``tmstate check --game [--port N]``: the input self-test on a running game instead."""
    from dataclasses import asdict

    if args.game:
        return cmd_check_game(args)
    from tmstate.ops import check

    items = check.collect()
    failed = any(i.required and i.status != check.OK for i in items)
    if args.json:
        print(json.dumps({"ok": not failed, "items": [asdict(i) for i in items]}))
    else:
        print(check.format_table(items))
        print("\nrequired Python dependencies missing — see above" if failed else "\nready (MISSING lines are optional parts)")
    return 1 if failed else 0


def cmd_check_game(args: argparse.Namespace) -> int:
    """``tmstate check --game``: exit status 1 when the game did not take an input."""
    from tmstate.link.protocol import DEFAULT_PORT
    from tmstate.ops import input_check

    port = DEFAULT_PORT if args.port is None else args.port
    try:
        results = input_check.check_game(port, binary_steering=args.steer_mode == "binary", speed=args.speed)
    except TmstateError as exc:
        print(f"FAIL     game link on port {port}: {exc}")
        return 1
    print(input_check.format_results(results))
    failed = [r for r in results if not r.ok]
    print("\nthe game takes tmstate's inputs" if not failed else f"\n{len(failed)} of {len(results)} input checks failed")
    return 1 if failed else 0


def cmd_plugin_check(args: argparse.Namespace) -> int:
    """``tmstate plugin-check PLUGIN... [--engine VERSION | --harness BINARY]``: exit status 1
    when a plugin compiles with no AngelScript engine."""
    from tmstate.link.harness import GET_ENGINE_SCRIPT
    from tmstate.ops import plugin_check

    if args.harness:
        harnesses = [plugin_check.harness_of_binary(Path(args.harness))]
    else:
        harnesses = plugin_check.available_harnesses(args.engine)
    print("engines: " + ", ".join(f"AngelScript {h.version} ({h.where})" for h in harnesses))
    if len(harnesses) == 1 and not args.engine and not args.harness:
        print(f"only AngelScript {harnesses[0].version} is here; TMInterface's compiler lies between 2.35 and 2.38 "
              f"— `bash {GET_ENGINE_SCRIPT}` gets Debian sid's 2.38.0 (plugins/API.md, Engine)")
    results = [plugin_check.check_plugin(p, harnesses) for p in args.plugins]
    print(plugin_check.format_results(results, harnesses))
    return 0 if all(r.ok for r in results) else 1


def cmd_demo(args: argparse.Namespace) -> int:
    """``tmstate demo [--track NAME | --map GHOST.Replay.Gbx] [--out DIR] [--seed N] [--no-video]``; status 1 if it did not finish."""
    from tmstate.tools.demo import run_demo

    result = run_demo(args.track, args.out, seed=args.seed, video=not args.no_video, progress=True)
    state = "finished" if result.finished else f"did not finish ({result.termination_reason})"
    print(f"track {result.track} (simulator — a car fitted to TMNF ghosts on a flat corridor, not TMNF physics): {state}")
    print(f"race time {result.race_time_ms / 1000:.2f} s, return {result.episode_return:+.4f}, {result.steps} steps")
    print("reward terms: " + ", ".join(f"{k} {v.sum():+.4f}" for k, v in result.reward_terms.items()))
    if result.log_path is not None:
        print(f"episode log: {result.log_path}")
    print(f"summary: {result.summary_path}")
    if result.video_path is not None:
        print(f"video: {result.video_path}")
    return 0 if result.finished else 1


def cmd_sim_calibrate(args: argparse.Namespace) -> int:
    """``tmstate sim-calibrate GHOSTS... [-o params.json] [--max-evaluations N]``."""
    from tmstate.backends.sim.calibrate import calibrate
    from tmstate.backends.sim.model import PARAMS_PATH
    from tmstate.errors import ConfigError
    from tmstate.files import check_output

    if args.max_evaluations < 1:
        raise ConfigError(f"--max-evaluations must be >= 1, got {args.max_evaluations}")
    check_output(args.output or PARAMS_PATH, "parameter file")  # before the fit, so no fit is lost to it
    output, document = calibrate(args.ghosts, args.output, max_evaluations=args.max_evaluations)
    r = document["fit"]["residuals_flat_one_step"]
    print(f"{output}: fitted on {len(document['fitted_on'])} ghost(s), {r['pairs']} flat pairs; one-step residuals "
          f"speed {r['speed_kmh']['mean']:.3f} km/h, heading {r['heading_deg']['mean']:.4f} deg (mean)")
    return 0


def cmd_sim_fidelity(args: argparse.Namespace) -> int:
    """``tmstate sim-fidelity GHOSTS... [--car params.json] [--json]``."""
    from tmstate.backends.sim.fidelity import fidelity, format_report

    result = fidelity(args.ghosts, args.car)
    print(json.dumps(result) if args.json else format_report(result))
    return 0


def cmd_harness_demo(args: argparse.Namespace) -> int:
    """``tmstate harness-demo [--steps N]``: run the plugin in the harness and drive it for N steps."""
    from tmstate.core.state import Action
    from tmstate.errors import ConfigError
    from tmstate.link.bridge import Bridge
    from tmstate.link.harness import HarnessProcess

    steps = int(args.steps)
    if steps <= 0:
        raise ConfigError(f"--steps must be > 0, got {steps}")
    every = max(1, steps // 10)
    with HarnessProcess() as harness:
        print(f"harness pid {harness.pid} listening on 127.0.0.1:{harness.port} "
              "(a point-mass stand-in for the game, not TMNF physics)")
        with Bridge(port=harness.port) as bridge:
            print(f"connected: plugin {bridge.plugin_version!r}")
            state = bridge.next_state()
            print(f"{'step':>6} {'race_ms':>8} {'x_m':>8} {'z_m':>8} {'yaw':>7} {'km/h':>6} {'cp':>5} fin")
            for step in range(1, steps + 1):
                steer = -0.3 if (step // 40) % 2 else 0.3
                state = bridge.act(Action(steer=steer, gas=1.0))
                if step % every == 0 or step == steps or state.finished:
                    x, _, z = state.position
                    print(
                        f"{step:>6} {state.race_time_ms:>8} {x:>8.2f} {z:>8.2f} {state.yaw:>7.3f} "
                        f"{state.speed * 3.6:>6.1f} {state.checkpoint_count:>2}/{state.checkpoint_target:<2} "
                        f"{'yes' if state.finished else 'no'}"
                    )
                if state.finished:
                    print(f"finished at race time {state.race_time_ms} ms")
                    break
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """``tmstate bench NAME [--json] [--steps N]``."""
    from tmstate.tools.bench import format_report

    figures = importlib.import_module(f"tmstate.tools.bench.{args.name}").run(args.steps)
    if args.json:
        print(json.dumps({"bench": args.name, **figures}))
    else:
        print(format_report(args.name, figures))
    return 0


def cmd_drive(args: argparse.Namespace) -> int:
    """``tmstate drive [--track T] [--camera C] [--record-line OUT.npz] [--size WxH] [--once]``."""
    from tmstate.errors import ConfigError
    from tmstate.tools.drive import drive

    if args.record_line and not args.record_line.endswith((".npz", ".npy")):
        raise ConfigError(f"--record-line writes a .npz reference line, got {args.record_line!r}")
    if args.record_line:
        from tmstate.files import check_output

        check_output(args.record_line, "--record-line file")  # before driving, so no drive is lost to it
    drive(args.track, camera=args.camera, size=args.size, record_line=args.record_line,
          spacing_m=args.spacing, once=args.once, map_name=args.map, say=_stderr, report=print)
    return 0


def cmd_record_line(args: argparse.Namespace) -> int:
    """``tmstate record-line -o reference_lines/MAP.npz [--port] [--map] [--spacing] [--save-states-every M]``."""
    from tmstate.tools.record import record_line

    r = record_line(args.output, port=args.port, map_name=args.map, spacing_m=args.spacing,
                    save_states_every_m=float(getattr(args, "save_states_every", 0.0) or 0.0), say=_stderr)
    print(f"{r['output']}: {r['line_points']} points, {r['line_length_m']:.1f} m, {r['checkpoints']} checkpoint(s) "
          f"({r['how']} at {r['race_time_ms'] / 1000:.2f} s)")
    if "bank" in r:
        print(f"{r['bank']}: {r['bank_states']} saved state(s), every {args.save_states_every:g} m")
    return 0


def cmd_plot_line(args: argparse.Namespace) -> int:
    """``tmstate plot-line LINE [-o PNG] [--ghost REPLAY] [--episode LOG] [--challenge MAP]``."""
    from tmstate.core.reference import ReferenceLine
    from tmstate.tools.plot import plot_line

    from tmstate.files import check_output

    line = ReferenceLine.load(args.line)
    output = check_output(Path(args.output) if args.output else Path(args.line).with_suffix(".png"), "plot")
    ghost_positions = episode_positions = None
    if args.ghost:
        from tmstate.formats.gbx import read_ghost

        ghost_positions = read_ghost(args.ghost).positions
    if args.episode:
        from tmstate.formats.log import read_episode

        episode_positions = read_episode(args.episode).arrays["state.position"]
    markers = None
    if args.challenge:
        from tmstate.formats.gbx import read_challenge_markers

        _, markers = read_challenge_markers(args.challenge)
    print(plot_line(line, output, ghost_positions=ghost_positions, episode_positions=episode_positions,
                    markers=markers))
    return 0


def cmd_plot_progress(args: argparse.Namespace) -> int:
    """``tmstate plot-progress RUN --line LINE [-o PNG]``: RUN a ``.Replay.Gbx`` or an episode log."""
    from tmstate.backends.replay import load_states
    from tmstate.core.reference import ReferenceLine
    from tmstate.tools.plot import plot_progress

    from tmstate.files import check_output

    output = check_output(Path(args.output) if args.output else Path(args.path).with_suffix(".progress.png"), "plot")
    states, _ = load_states(args.path)
    line = ReferenceLine.load(args.line)
    print(plot_progress(states, line, output))
    return 0


def cmd_rewards_compare(args: argparse.Namespace) -> int:
    """``tmstate rewards compare LOGS... [--time-penalty W,...] [--config] [--line] [-o PNG] [--json]``."""
    from tmstate.errors import ConfigError
    from tmstate.tools import compare

    if not args.time_penalty:
        raise ConfigError("--time-penalty needs at least one weight, e.g. 0,0.0005,0.001")
    from tmstate.files import check_output

    check_output(args.output, "plot")  # before the work: a full disk or a folder in the way fails now
    reward_config, progress_config = compare.load_configs(args.config)
    episodes = compare.load_episodes(args.logs, args.line)
    result = compare.compare(episodes, args.time_penalty, reward_config, progress_config)
    png = compare.plot(result, args.output)
    result["plot"] = str(png)
    if args.json:
        print(json.dumps(result))
    else:
        print(compare.format_table(result))
        print(f"plot: {png}")
        print("other weights: progress {progress}/m, finish {finish}, speed {speed}, lateral {lateral}".format(
            **result["reward"]))
    return 0


def cmd_launch(args: argparse.Namespace) -> int:
    """``tmstate launch``: start N instances (or print their commands, or stop them)."""
    import shlex

    from tmstate.errors import ConfigError
    from tmstate.ops import launch

    config = launch.load_config(args.config)
    if args.stop:
        count = launch.stop_from_pid_file(config.pid_file, config.stop_grace_s)
        print(f"stopped {count} process(es) listed in {config.pid_file}")
        return 0
    plans = launch.plan_instances(config, args.instances)
    if args.dry_run:
        if config.plugin:
            target = launch.plugins_folder(launch.prefix_path(config)) / Path(config.plugin).name
            print(f"# copy {shlex.quote(config.plugin)} to {shlex.quote(str(target))}")
        for plan in plans:
            print(f"# instance {plan.index}: port {plan.port}, log {plan.log_path}")
            for line in plan.shell_lines():
                print(line)
        return 0
    launcher = launch.Launcher(config, args.instances)
    launcher.check_ready_to_start()
    if config.pid_file.exists():
        if any(launch.pids_with_marker(r["marker"] + ".game") for r in launch.read_pid_file(config.pid_file)):
            raise ConfigError(
                f"{config.pid_file}: instances are already running from this run_dir — "
                f"`tmstate launch --stop` first, or use another run_dir"
            )
        print(f"removing stale pid file {config.pid_file} (none of its games runs any more)")
        launch.stop_from_pid_file(config.pid_file, config.stop_grace_s)  # also ends a leftover Xvfb
    if config.plugin:
        print(f"plugin installed at {launch.install_plugin(config.plugin, launch.prefix_path(config))}")
    launcher.start_all()
    for instance in launcher.instances.values():
        shown = f" on display {instance.plan.display}" if instance.plan.display else ""
        print(f"instance {instance.plan.index}: port {instance.port}{shown}, log {instance.plan.log_path}")
    print(f"pid file {config.pid_file}; stop with: tmstate launch --stop"
          + (f" --config {args.config}" if args.config else ""))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``tmstate train``: PPO/SAC with stable-baselines3 on the sim or the real game, or PPO
    through Ray RLlib with env runners on many machines (``--engine rllib``)."""
    from tmstate.tools.train import CLI_FIELDS, merged_config, train

    overrides = {name: getattr(args, name) for name in CLI_FIELDS if getattr(args, name, None) is not None}
    if args.no_progress_bar:
        overrides["progress_bar"] = False
    if args.no_tensorboard:
        overrides["tensorboard"] = False
    if args.engine == "rllib":
        return _train_rllib(args, overrides)
    if args.node_ports:
        from tmstate.errors import ConfigError

        raise ConfigError("--node-ports is for --engine rllib; the sb3 engine takes --ports")
    config = merged_config(args.config, overrides, args.hyper)
    summary = train(config, force=args.force, resume=args.resume)
    final = summary["final"] or {}
    restarts = f"; games restarted {summary['restarts']}" if summary.get("restarts") else ""
    print(f"trained {summary['timesteps']:,} steps in {summary['wall_s']:.0f} s; "
          f"final finish rate {final.get('finish_rate', 0):.0%}, return {final.get('mean_return', float('nan')):.3f}"
          f"{restarts}; results in {config.out}")
    return 0


def _train_rllib(args: argparse.Namespace, overrides: dict) -> int:
    """``tmstate train --engine rllib``: PPO through Ray RLlib (tmstate.tools.train_rllib).

    The run settings are the sb3 path's (``--config``, then the options); where the games
    are (backend, ports per node, launch config) goes to the env runners instead."""
    import dataclasses

    from tmstate.errors import ConfigError
    from tmstate.tools.train import merged_config
    from tmstate.tools.train_rllib import RLlibOptions, parse_ports, train_rllib

    if args.hyper or args.resume:
        raise ConfigError("--hyper and --resume are for the sb3 engine; --engine rllib starts a new PPO run")
    backend = overrides.pop("backend", None)  # "harness" is RLlib's only: TrainConfig refuses it
    ports = overrides.pop("ports", None)
    launch_config = overrides.pop("launch_config", None)
    config = merged_config(args.config, overrides)
    table = parse_ports(args.node_ports)
    if ports or config.ports:
        table["*"] = list(ports or config.ports)
    options = RLlibOptions(
        runners=args.runners, backend=backend or config.backend, ports=table,
        launch_config=launch_config or config.launch_config, address=args.address or "",
        checkpoint_every=args.checkpoint_every_iterations,
    )
    config = dataclasses.replace(config, backend="sim", ports=[], launch_config="", eval_port=0)
    summary = train_rllib(config, options, force=args.force)
    final = summary["final"] or {}
    ret, rate = final.get("episode_return_mean"), final.get("finish_rate")
    print(f"trained {summary['timesteps']:,} steps in {summary['wall_s']:.0f} s with {options.runners} env runner(s); "
          f"episode return {'-' if ret is None else f'{ret:.3f}'}, finish rate {'-' if rate is None else f'{rate:.0%}'}, "
          f"games lost {final.get('games_lost', 0)}; results in {config.out}")
    return 0


def _print_grid(per_cell: dict[str, dict], label: str, out: str) -> None:
    """One line per cell of an experiment: finish rate and race time over its runs."""
    for key, f in per_cell.items():
        rate, race = f["finish_rate"], f["race_time_s"]
        time_text = "-" if race["mean"] is None else f"{race['mean']:.2f} ± {race['std']:.2f} s"
        print(f"{label} {key:<28} finish rate {rate['mean']:4.0%} ± {rate['std']:3.0%}  race time {time_text}  "
              f"({f['finished_runs']}/{f['runs']} runs finish)")
    print(f"plot and results.json in {out}")


def cmd_experiment_time_penalty(args: argparse.Namespace) -> int:
    """``tmstate experiment time-penalty``: one agent per time-penalty weight and seed."""
    from tmstate.tools.experiments import time_penalty_experiment
    from tmstate.tools.train import DEFAULT_TRACK

    results = time_penalty_experiment(args.weights, args.track or DEFAULT_TRACK, args.timesteps, args.out,
                                      seeds=args.seeds)
    _print_grid(results["per_weight"], "weight", args.out)
    return 0


def cmd_experiment_random_starts(args: argparse.Namespace) -> int:
    """``tmstate experiment random-starts``: PPO with starts at the line's start vs spread along it."""
    from tmstate.tools.experiments import start_spread_experiment
    from tmstate.tools.train import DEFAULT_TRACK

    results = start_spread_experiment(args.track or DEFAULT_TRACK, args.timesteps, args.seeds, args.out)
    _print_grid(results["per_mode"], "start", args.out)
    return 0


def cmd_experiment_tracks(args: argparse.Namespace) -> int:
    """``tmstate experiment tracks``: the training table, one agent per track and seed."""
    from tmstate.tools.experiments import tracks_experiment

    results = tracks_experiment(args.tracks, args.seeds, args.timesteps, args.out)
    _print_grid(results["per_track"], "track", args.out)
    return 0


def cmd_line_from_replay(args: argparse.Namespace) -> int:
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


def _whole(low: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``low`` (so ``--steps 0`` is refused up front)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


_count = _whole(1, "a whole number >= 1")
_seed = _whole(0, "a whole number >= 0 (a seed)")


def _port(text: str, allow_zero: bool = False) -> int:
    """An argparse type: a TCP port, checked by the one port rule (tmstate.config.check_port)."""
    from tmstate.config import check_port
    from tmstate.errors import ConfigError

    try:
        return check_port(int(text), "port", allow_zero=allow_zero)
    except (ValueError, ConfigError) as exc:
        raise argparse.ArgumentTypeError(str(exc) if isinstance(exc, ConfigError) else
                                         f"expected a port (a whole number), got {text!r}") from None


def _port_or_off(text: str) -> int:
    """An argparse type: a TCP port, or 0 for "none"."""
    return _port(text, allow_zero=True)


def cmd_line_checkpoints(args: argparse.Namespace) -> int:
    """``tmstate line-checkpoints LINE --challenge MAP [-o OUT]`` (:func:`tmstate.tools.lines.line_checkpoints`)."""
    from tmstate.tools.lines import line_checkpoints as give

    result = give(args.line, args.challenge, args.output)
    marks = result["checkpoints_m"]
    print(f"{result['output']}: {len(marks)} checkpoint(s) at {', '.join(f'{a:.0f}' for a in marks)} m "
          f"of {result['line_length_m']:.0f} m")
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
    p.add_argument("--game", action="store_true",
                   help="drive a running game (in a race) through a short input self-test instead")
    p.add_argument("--port", type=int, default=None, help="with --game: the plugin's port (default: its default port)")
    p.add_argument("--steer-mode", choices=["analog", "binary"], default="analog",
                   help="with --game: test analog steering (default) or the Left/Right keys")
    p.add_argument("--speed", type=float, default=1.0, help="with --game: game speed for the test (<= 100)")
    p.set_defaults(run=cmd_check)

    p = sub.add_parser(
        "plugin-check", help="compile TMInterface plugins against the harness's API model, with each AngelScript engine",
        description="Compile each PLUGIN against the harness's model of the TMInterface 2 API (plugins/API.md) "
        "with every AngelScript engine available: the system's (Debian 12: 2.35.1) and those in "
        "$XDG_CACHE_HOME/tmstate/angelscript/ (plugins/harness/get-angelscript.sh puts Debian sid's 2.38.0 "
        "there) or named by TMSTATE_ANGELSCRIPT_ENGINES. TMInterface's compiler behaves like 2.36.x, between "
        "the two, so a plugin passes when at least one engine compiles it; the messages of an engine that "
        "refused it are printed labelled with that engine. Exit status 0 when every plugin passes, 1 otherwise.")
    p.add_argument("plugins", nargs="+", metavar="PLUGIN", help="a .as file, or a folder whose .as files form one plugin")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--engine", default=None, metavar="VERSION",
                       help="compile with this AngelScript version only (e.g. 2.38.0)")
    which.add_argument("--harness", default=None, metavar="BINARY",
                       help="compile with this tmstate-harness binary only (plugins/harness/README.md)")
    p.set_defaults(run=cmd_plugin_check)

    p = sub.add_parser("demo", help="drive a simulator track or a real map's line with a line-following controller")
    p.add_argument("--track", "--map", dest="track", default=None,
                   help="shipped sim track name (default: the first), a line file, or a .Replay.Gbx "
                        "(its ghost's line, driven as a flat corridor)")
    p.add_argument("--out", default="out/demo", help="folder for the log, PNG summary and GIF")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--no-video", action="store_true", help="skip the GIF")
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("harness-demo", help="run the plugin in the AngelScript harness and drive it")
    p.add_argument("--steps", type=_count, default=200)
    p.set_defaults(run=cmd_harness_demo)

    p = sub.add_parser("bench", help="benchmarks (bridge, progress, env, vector, rllib)")
    p.add_argument("name", choices=["bridge", "progress", "env", "vector", "rllib"])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--steps", type=_count, default=None, help="override the number of steps (>= 1)")
    p.set_defaults(run=cmd_bench)

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
    p.set_defaults(run=cmd_line_from_replay)

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
    p.set_defaults(run=cmd_drive)

    p = sub.add_parser("sim-calibrate", help="fit the simulator car to real .Replay.Gbx ghosts")
    p.add_argument("ghosts", nargs="+", help=".Replay.Gbx files or folders of them")
    p.add_argument("-o", "--output", default=None,
                   help="parameter file to write (default: the one shipped with the package)")
    p.add_argument("--max-evaluations", type=int, default=120, help="least-squares evaluations (default 120)")
    p.set_defaults(run=cmd_sim_calibrate)

    p = sub.add_parser("sim-fidelity", help="how well the simulator car predicts real ghosts")
    p.add_argument("ghosts", nargs="+", help=".Replay.Gbx files or folders of them")
    p.add_argument("--car", default=None, help="a parameter file from sim-calibrate (default: the shipped one)")
    p.add_argument("--json", action="store_true", help="print one JSON object (docs/sim.md)")
    p.set_defaults(run=cmd_sim_fidelity)

    p = sub.add_parser("record-line", help="record a reference line by driving in the real game")
    p.add_argument("-o", "--output", required=True, help="reference_lines/<map>.npz")
    p.add_argument("--port", type=_port, default=None, help="the plugin's port (default: its default port)")
    p.add_argument("--map", default="", help="map name for the metadata")
    p.add_argument("--spacing", type=float, default=0.5)
    p.add_argument("--save-states-every", type=float, default=0.0, metavar="METRES",
                   help="also save the game's state every METRES driven, as the line's start bank "
                   "(<line>.starts.npz) for episodes that start along the track (0 = off)")
    p.set_defaults(run=cmd_record_line)

    p = sub.add_parser("line-checkpoints", help="give a line the checkpoints of its map's .Challenge.Gbx")
    p.add_argument("line", help="a .npz or .npy reference line")
    p.add_argument("--challenge", required=True, help="the map's .Challenge.Gbx")
    p.add_argument("-o", "--output", default=None, help="default: the line's .npz (a .npy gets a .npz beside it)")
    p.set_defaults(run=cmd_line_checkpoints)

    p = sub.add_parser("plot-line", help="PNG top view of a reference line")
    p.add_argument("line", help="a .npz or .npy reference line")
    p.add_argument("-o", "--output", default=None, help="default: <line>.png")
    p.add_argument("--ghost", default=None, help="overlay a .Replay.Gbx ghost")
    p.add_argument("--episode", default=None, help="overlay an episode log")
    p.add_argument("--challenge", default=None, help="mark checkpoints from a .Challenge.Gbx")
    p.set_defaults(run=cmd_plot_line)

    p = sub.add_parser("plot-progress", help="PNG of a run's credited progress along a line, resync on and off")
    p.add_argument("path", metavar="RUN", help="a .Replay.Gbx ghost or an episode log")
    p.add_argument("--line", required=True, help="the reference line (.npz/.npy)")
    p.add_argument("-o", "--output", default=None, help="default: <run>.progress.png")
    p.set_defaults(run=cmd_plot_progress)

    p = sub.add_parser("rewards", help="reward experiments on logged episodes")
    rsub = p.add_subparsers(dest="rewards_command", metavar="SUBCOMMAND", required=True)
    c = rsub.add_parser("compare", help="returns per episode under several time penalties")
    c.add_argument("logs", nargs="+", help="episode log files or folders")
    c.add_argument("--time-penalty", type=_csv_floats, default=[0.0, 0.0005, 0.001])
    c.add_argument("--config", default=None, help="TOML with [reward] weights")
    c.add_argument("--line", default=None, help="reference line (default: from the log)")
    c.add_argument("-o", "--output", default="out/rewards_compare.png")
    c.add_argument("--json", action="store_true")
    c.set_defaults(run=cmd_rewards_compare)

    p = sub.add_parser("launch", help="start TMNF instances under Wine with the plugin")
    p.add_argument("-n", "--instances", type=_count, default=1)
    p.add_argument("--config", default=None, help="launch TOML (paths, profile, ports)")
    p.add_argument("--dry-run", action="store_true", help="print the exact commands only")
    p.add_argument("--stop", action="store_true", help="stop the instances in the pid file")
    p.set_defaults(run=cmd_launch)

    p = sub.add_parser("train", help="train PPO/SAC with stable-baselines3 on the sim or the real game (extra: [train])",
                       description="Settings: TrainConfig's defaults, then --config's [train] and [env] tables, "
                       "then these options. The defaults below are TrainConfig's.")
    p.add_argument("--config", default=None, metavar="RUN.toml",
                   help="run config: [train] (TrainConfig fields, [train.hyper] algorithm keywords) and [env] (EnvConfig)")
    p.add_argument("--algo", choices=["ppo", "sac"], default=None, help="algorithm (default: ppo)")
    p.add_argument("--engine", choices=["sb3", "rllib"], default="sb3",
                   help="sb3: stable-baselines3 on this machine; rllib: PPO through Ray RLlib, env runners on many "
                   "machines (extra: [ray], docs/scale.md) (default: sb3)")
    p.add_argument("--backend", choices=["sim", "tminterface", "harness"], default=None,
                   help="sim (embedded simulator) or tminterface (the real game, through the recovering vector env); "
                   "rllib also: harness (plugin-harness processes) (default: sim)")
    p.add_argument("--track", default=None,
                   help="the map: a sim track, or a reference line file for the real game (default: sim_easy)")
    p.add_argument("--obs", choices=["telemetry", "frames", "dict"], default=None,
                   help="observation type; picks MlpPolicy, CnnPolicy or MultiInputPolicy (default: telemetry)")
    p.add_argument("--ports", type=_csv_ports, default=None, metavar="P1,P2,...",
                   help="tminterface: one game per env, e.g. 8477,8478 (default: the launch config's base_port + i)")
    p.add_argument("--launch-config", default=None, metavar="LAUNCH.toml",
                   help="tminterface: launch settings; games in its pid file are restarted when lost "
                   "(default: tmstate launch's defaults)")
    p.add_argument("--eval-port", type=_port_or_off, default=None,
                   help="tminterface: a game of its own for evaluation episodes "
                   "(default: 0 = the curve comes from the training episodes)")
    p.add_argument("--timesteps", type=_count, default=None, help="total environment steps (default: 200000)")
    p.add_argument("--envs", type=_count, default=None, help="sub-envs stepped together (default: 4)")
    p.add_argument("--seed", type=_seed, default=None, help="seed of the algorithm and the envs (default: 0)")
    p.add_argument("--out", default=None, help="run folder (default: runs/train)")
    p.add_argument("--force", action="store_true", help="overwrite a run folder that holds a run")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its model or last checkpoint")
    p.add_argument("--time-penalty", type=float, default=None,
                   help="reward per ms of race time, overriding [env.reward] time (default: the env's)")
    p.add_argument("--start", choices=("auto", "line_start", "uniform", "ended"), default=None,
                   help="where training episodes start; auto: spread along the track (uniform) on the simulator, "
                        "[env.start] on the game; evaluation always starts at the start line (default: auto)")
    p.add_argument("--eval-every", type=int, default=None, help="timesteps between evaluations (default: 10000)")
    p.add_argument("--eval-episodes", type=int, default=None, help="episodes per evaluation (default: 3)")
    p.add_argument("--checkpoint-every", type=int, default=None, help="timesteps between checkpoints (default: 50000)")
    p.add_argument("--stop-at-finish-rate", type=float, default=None,
                   help="stop once an evaluation finishes this often (default: 0 = never)")
    p.add_argument("--n-steps", type=int, default=None, help="PPO: steps per env per rollout (default: 512)")
    p.add_argument("--batch-size", type=int, default=None, help="PPO: minibatch size (default: 256)")
    p.add_argument("--learning-rate", type=float, default=None, help="learning rate (default: 0.0003)")
    p.add_argument("--gamma", type=float, default=None, help="discount factor (default: 0.99)")
    p.add_argument("--hyper", action="append", default=None, metavar="KEY=VALUE",
                   help="any other keyword of the SB3 algorithm, value as TOML, repeatable: --hyper ent_coef=0.01 "
                   "(default: none)")
    p.add_argument("--no-progress-bar", action="store_true", help="no progress bar")
    p.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard logs")
    p.add_argument("--runners", type=int, default=2, help="rllib: env runners, each over --envs sub-envs (default: 2)")
    p.add_argument("--node-ports", default=None, metavar="KEY=P1,P2;KEY2=P3",
                   help="rllib: game ports per node (KEY: node IP or Ray resource name); --ports gives the same "
                   "ports on every node (default: the pid file of `tmstate launch` on each node)")
    p.add_argument("--address", default=None,
                   help="rllib: the Ray cluster to join (auto, HOST:PORT) (default: a local Ray for this run)")
    p.add_argument("--checkpoint-every-iterations", type=int, default=10,
                   help="rllib: iterations between checkpoints (default: 10)")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("experiment", help="reward-design experiments on the simulator")
    esub = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    e = esub.add_parser("time-penalty", help="one agent per time-penalty weight and seed")
    e.add_argument("--weights", type=_csv_floats, default=[0.0, 0.0005, 0.001, 0.002])
    e.add_argument("--seeds", type=_csv_ints, default=[0], help="e.g. 0,1,2 (default: 0)")
    e.add_argument("--track", default=None)
    e.add_argument("--timesteps", type=_count, default=100_000)
    e.add_argument("--out", default="runs/time_penalty")
    e.set_defaults(run=cmd_experiment_time_penalty)
    e = esub.add_parser("random-starts", help="PPO with starts at the line's start vs spread along the track")
    e.add_argument("--seeds", type=_csv_ints, default=[0, 1, 2])
    e.add_argument("--track", default=None)
    e.add_argument("--timesteps", type=_count, default=100_000)
    e.add_argument("--out", default="runs/random_starts")
    e.set_defaults(run=cmd_experiment_random_starts)
    e = esub.add_parser("tracks", help="the training table: one agent per track and seed")
    e.add_argument("--tracks", type=lambda t: [x.strip() for x in t.split(",") if x.strip()], required=True,
                   help="comma-separated maps: sim tracks, line files or .Replay.Gbx ghosts")
    e.add_argument("--seeds", type=_csv_ints, default=[0, 1, 2])
    e.add_argument("--timesteps", type=_count, default=200_000)
    e.add_argument("--out", default="runs/tracks")
    e.set_defaults(run=cmd_experiment_tracks)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except TmstateError as exc:
        print(f"tmstate {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a write or read the command's own checks did not foresee: still one line
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"tmstate {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tmstate {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

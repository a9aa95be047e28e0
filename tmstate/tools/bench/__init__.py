"""``tmstate bench NAME``: benchmarks, printed for people and as JSON for machines.

Each benchmark lives in its own module ``tmstate.tools.bench.<name>`` with a function
``run(steps: int | None) -> dict`` returning flat, JSON-ready figures (numbers in the
unit their key names). Timing targets are checked here, by people reading the output —
never as timed assertions in the test suite.
"""

from __future__ import annotations

import argparse
import importlib
import json


def format_report(name: str, figures: dict) -> str:
    """Figures as aligned ``key  value`` lines."""
    width = max((len(k) for k in figures), default=0)
    lines = [f"tmstate bench {name}"]
    for key, value in figures.items():
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        lines.append(f"  {key:<{width}}  {shown}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"tmstate.tools.bench.{args.name}")
    figures = module.run(args.steps)
    if args.json:
        print(json.dumps({"bench": args.name, **figures}))
    else:
        print(format_report(args.name, figures))
    return 0

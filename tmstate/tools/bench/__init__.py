"""``tmstate bench NAME``: benchmarks, printed for people and as JSON for machines.

Each benchmark lives in its own module ``tmstate.tools.bench.<name>`` with a function
``run(steps: int | None) -> dict`` returning flat, JSON-ready figures (numbers in the
unit their key names). Timing targets are checked here, by people reading the output —
never as timed assertions in the test suite.
"""

from __future__ import annotations



def format_report(name: str, figures: dict) -> str:
    """Figures as aligned ``key  value`` lines."""
    width = max((len(k) for k in figures), default=0)
    lines = [f"tmstate bench {name}"]
    for key, value in figures.items():
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        lines.append(f"  {key:<{width}}  {shown}")
    return "\n".join(lines)

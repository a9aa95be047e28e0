"""``tmstate check --game [--port N]``: does the running game take tmstate's inputs?

Connects to a game in a race (the plugin's port), restarts the race and drives a short
scripted sequence — gas, brake, left, right, half steer — rewinding to a saved state
between the parts and back to the start at the end. For each input it says whether the
car responded as TMNF should (moved forward, slowed more than coasting, yawed left, yawed
right, yawed less at half steer) and what to do if not. The STATE's inputs in force tell
apart a game that ignored an input from one that took it and did something else.

Faults it names: inputs dropped (the game did not take SetInputState: lower the game
speed), gas inverted (accelerate and brake swapped), analog steer ignored (bind an analog
device or use ``steer_mode = "binary"``). The harness can simulate each
(``tmstate-harness --fault ...``), which is how the tests show it catches them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tmstate.core.state import Action
from tmstate.core.state import GameState
from tmstate.link.bridge import DEFAULT_HOST, Bridge

GAS_STEPS = 20
"""Steps of full gas from the start (1 s at the 50 ms period)."""
TEST_STEPS = 10
"""Steps of each later test, from the state after the gas (0.5 s)."""
MIN_FORWARD_M = 1.0
MIN_YAW_RAD = 0.02


@dataclass
class InputResult:
    """One input's verdict: what was seen and, on failure, what to do."""

    name: str
    ok: bool
    seen: str
    fix: str = ""


def _forward_m(start: GameState, end: GameState) -> float:
    """Displacement along the start heading (metres; negative = backwards)."""
    fx, fz = math.sin(start.yaw), math.cos(start.yaw)
    d = end.position - start.position
    return float(d[0] * fx + d[2] * fz)


def _yaw_change(start: GameState, end: GameState) -> float:
    return math.atan2(math.sin(end.yaw - start.yaw), math.cos(end.yaw - start.yaw))


def _drive(bridge: Bridge, action: Action, steps: int) -> GameState:
    state = None
    for _ in range(steps):
        state = bridge.act(action)
    return state  # type: ignore[return-value]


DROPPED_FIX = ("the game did not take the inputs: lower the game speed (`game_speed`, <= 100; try 10) "
               "and make sure the race is running and the game window is not minimised")


def run_checks(bridge: Bridge, binary_steering: bool = False) -> list[InputResult]:
    """The scripted sequence on a connected bridge; leaves the race rewound to its start."""
    results: list[InputResult] = []
    bridge.set_steer_mode(binary_steering)
    start = bridge.restart()
    start_blob = bridge.save_state().blob
    try:
        moving = _drive(bridge, Action(gas=1.0), GAS_STEPS)
        forward = _forward_m(start, moving)
        if moving.gas < 1.0:
            results.append(InputResult("gas", False, f"STATE shows no accelerator in force after {GAS_STEPS} steps of "
                                       f"full gas (input_gas {moving.gas:g})", DROPPED_FIX))
        elif forward >= MIN_FORWARD_M:
            results.append(InputResult("gas", True, f"moved {forward:.1f} m forward, {moving.speed:.1f} m/s"))
        else:
            results.append(InputResult(
                "gas", False,
                f"accelerator in force but the car moved {forward:+.2f} m along its heading (backwards or not at all)",
                "accelerate and brake look swapped (inverted gas): TMInterface's analog Gas is brake-positive; "
                "install the plugin of this tmstate release, which drives the Up/Down inputs",
            ))
        if not results[-1].ok:
            results += [InputResult(n, False, "skipped: needs the car moving under gas", "fix gas first")
                        for n in ("brake", "left", "right", "half steer")]
            return results
        moving_blob = bridge.save_state().blob

        coast = _drive(bridge, Action(), TEST_STEPS)
        bridge.rewind(moving_blob)
        braked = _drive(bridge, Action(brake=True), TEST_STEPS)
        if braked.brake < 1.0:
            results.append(InputResult("brake", False, "STATE shows no brake in force", DROPPED_FIX))
        elif braked.speed < coast.speed - 0.5:
            results.append(InputResult("brake", True, f"{braked.speed:.1f} m/s braking vs {coast.speed:.1f} m/s coasting"))
        else:
            results.append(InputResult(
                "brake", False, f"{braked.speed:.1f} m/s braking vs {coast.speed:.1f} m/s coasting (no slower)",
                "the brake does not slow the car: accelerate and brake may be swapped (inverted gas)",
            ))

        yaws: dict[str, float] = {}
        for name, steer in (("left", -1.0), ("right", 1.0), ("half steer", 0.5)):
            bridge.rewind(moving_blob)
            end = _drive(bridge, Action(steer=steer, gas=1.0), TEST_STEPS)
            yaws[name] = _yaw_change(moving, end)
            expected = steer  # binary: the key at full deflection from |steer| >= 0.5 (docs/env.md)
            if binary_steering:
                expected = math.copysign(1.0, steer) if abs(steer) >= 0.5 else 0.0
            if abs(end.steer - expected) > 1e-6:
                results.append(InputResult(name, False, f"STATE shows steer {end.steer:+g} in force, sent {steer:+g}",
                                           DROPPED_FIX))
                continue
            if name == "half steer":
                full = abs(yaws["right"])
                if binary_steering:
                    ok = abs(yaws[name] - yaws["right"]) <= 0.1 * full
                    results.append(InputResult(name, ok, f"yawed {yaws[name]:+.3f} rad (binary steering: as full right, "
                                               f"{yaws['right']:+.3f})", "" if ok else "binary steering should turn "
                                               "as much at half steer as at full: check the Left/Right bindings"))
                else:
                    ok = MIN_YAW_RAD <= yaws[name] < full - 0.1 * full
                    results.append(InputResult(
                        name, ok, f"yawed {yaws[name]:+.3f} rad vs {yaws['right']:+.3f} at full right",
                        "" if ok else "half steer does not turn less than full: the game may read analog steer as "
                        "on/off or ignore it; use steer_mode = \"binary\"",
                    ))
                continue
            sign = -1.0 if name == "left" else 1.0
            if sign * yaws[name] >= MIN_YAW_RAD:
                results.append(InputResult(name, True, f"yawed {yaws[name]:+.3f} rad"))
            elif binary_steering:
                results.append(InputResult(name, False, f"yawed {yaws[name]:+.3f} rad with the {name} key held",
                                           "the game ignores the Left/Right keys: check the keyboard bindings"))
            else:
                results.append(InputResult(
                    name, False, f"yawed {yaws[name]:+.3f} rad at full {name} analog steer (analog steer ignored)",
                    "TMNF takes analog steering only from a bound analog device: bind one in Profile -> Inputs, "
                    "or set steer_mode = \"binary\" (the Left/Right keys; tmstate check --game --steer-mode binary)",
                ))
    finally:
        bridge.rewind(start_blob)
    return results


def check_game(port: int, host: str = DEFAULT_HOST, binary_steering: bool = False,
               speed: float = 1.0) -> list[InputResult]:
    """Connect to the plugin on ``port`` and run :func:`run_checks` (BridgeError if unreachable)."""
    bridge = Bridge(host, port, timeout_s=10.0, connect_retries=3)
    try:
        bridge.connect()
        bridge.set_timeout(10_000)
        bridge.set_action_period(50)
        bridge.set_speed(float(speed))
        return run_checks(bridge, binary_steering)
    finally:
        bridge.close()


def format_results(results: list[InputResult]) -> str:
    """One line per input: OK/FAIL, the input, what was seen and (on failure) what to do."""
    width = max(len(r.name) for r in results)
    lines = []
    for r in results:
        line = f"{'OK' if r.ok else 'FAIL':<7}  {r.name:<{width}}  {r.seen}"
        if not r.ok and r.fix:
            line += f"  -> {r.fix}"
        lines.append(line)
    return "\n".join(lines)

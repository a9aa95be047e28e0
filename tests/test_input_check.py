"""``tmstate check --game``: the input self-test passes on the harness's model and names
each fault the harness can simulate (inverted gas, analog steer ignored, dropped inputs)."""

from __future__ import annotations

import pytest

from tmstate import cli
from tmstate.link.bridge import Bridge
from tmstate.link.harness import HarnessProcess, angelscript_header
from tmstate.ops.input_check import run_checks

pytestmark = pytest.mark.skipif(
    angelscript_header() is None, reason="angelscript-dev is not installed (scripts/test.sh installs it)"
)


def checks(*harness_args: str, binary: bool = False):
    with HarnessProcess(extra_args=list(harness_args)) as h:
        bridge = Bridge(port=h.port, timeout_s=10)
        bridge.connect()
        try:
            return {r.name: r for r in run_checks(bridge, binary)}
        finally:
            bridge.close()


def test_the_correct_model_passes_every_input_through_the_cli(capsys):
    with HarnessProcess() as h:
        status = cli.main(["check", "--game", "--port", str(h.port)])
    out = capsys.readouterr().out
    assert status == 0, out
    for name in ("gas", "brake", "left", "right", "half steer"):
        assert f"OK       {name}" in out
    assert "the game takes tmstate's inputs" in out


def test_inverted_gas_is_named():
    results = checks("--fault", "inverted-gas")
    assert not results["gas"].ok and "inverted gas" in results["gas"].fix


def test_analog_steer_ignored_is_named_and_binary_steering_passes():
    results = checks("--fault", "analog-steer-ignored")
    assert results["gas"].ok and results["brake"].ok
    for name in ("left", "right"):
        assert not results[name].ok
        assert "analog steer ignored" in results[name].seen and 'steer_mode = "binary"' in results[name].fix
    keyed = checks("--fault", "analog-steer-ignored", binary=True)
    assert all(r.ok for r in keyed.values()), keyed


def test_dropped_inputs_are_named(capsys):
    with HarnessProcess(extra_args=["--fault", "drop-inputs"]) as h:
        status = cli.main(["check", "--game", "--port", str(h.port)])
    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL     gas" in out and "did not take the inputs" in out and "lower the game speed" in out

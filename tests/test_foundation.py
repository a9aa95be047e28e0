"""Tests of the foundation: config loading, the Action contract, CLI error handling."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tmstate.backends.base import backend_class
from tmstate.core.state import Action
from tmstate.cli import build_parser, main
from tmstate.config import from_dict, load_toml
from tmstate.errors import ActionError, ConfigError, ProtocolError
from tmstate.core.state import GameState, decode_sim_state, forward_vector


@dataclass
class Inner:
    weight: float = 1.0


@dataclass
class Outer:
    name: str = "x"
    values: tuple[float, ...] = ()
    inner: Inner = field(default_factory=Inner)


def test_from_dict_builds_nested_dataclasses() -> None:
    cfg = from_dict(Outer, {"name": "a", "values": [1, 2], "inner": {"weight": 3.5}})
    assert cfg == Outer(name="a", values=(1, 2), inner=Inner(weight=3.5))


def test_unknown_key_is_refused_with_the_known_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown key\(s\) wieght.*known keys are weight"):
        from_dict(Outer, {"inner": {"wieght": 1.0}})


def test_load_toml_reads_a_table_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[run]\nname = "b"\n[run.inner]\nweight = 2.0\n')
    assert load_toml(Outer, path, table="run") == Outer(name="b", inner=Inner(2.0))
    with pytest.raises(ConfigError, match=r"c\.toml: no \[nope\] table"):
        load_toml(Outer, path, table="nope")
    path.write_text("name = ")
    with pytest.raises(ConfigError, match=r"c\.toml: not valid TOML"):
        load_toml(Outer, path)
    with pytest.raises(ConfigError, match="not found"):
        load_toml(Outer, tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "kwargs",
    [{"steer": math.nan}, {"gas": math.inf}, {"steer": 1.5}, {"steer": -1.01}, {"gas": -0.1}, {"gas": 2}],
)
def test_action_rejects_nan_and_out_of_range(kwargs: dict) -> None:
    with pytest.raises(ActionError):
        Action(**kwargs)


def test_action_maps_to_analog_values() -> None:
    a = Action(steer=-0.5, gas=1.0, brake=True)
    assert (a.analog_steer, a.analog_gas) == (-32768, 65536)
    assert Action(steer=1.0).analog_steer == 65536


def test_unknown_backend_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="replay, sim, tminterface"):
        backend_class("gpu")


def test_game_state_copy_is_deep_and_speed_is_the_norm() -> None:
    s = GameState(velocity=__import__("numpy").array([3.0, 0.0, 4.0]))
    c = s.copy()
    c.velocity[0] = 100.0
    assert s.speed == pytest.approx(5.0)
    assert c.speed > 100.0


def test_forward_vector_convention() -> None:
    assert forward_vector(0.0) == pytest.approx([0.0, 0.0, 1.0])
    assert forward_vector(math.pi / 2) == pytest.approx([1.0, 0.0, 0.0])


def test_short_save_state_blob_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="shorter than the 8356 bytes"):
        decode_sim_state(b"\0" * 100)
    assert decode_sim_state(b"\0" * 8356).player_info.race_time == 0


def test_cli_has_exactly_the_documented_commands_and_each_parses() -> None:
    import argparse

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    commands = set(sub.choices)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    documented = set(re.findall(r"^\| `tmstate ([a-z-]+)", readme, flags=re.M))
    assert commands == documented  # README's command table lists each command, no more
    for command in commands:  # each has its own help (a parser of its own, wired to a handler)
        with pytest.raises(SystemExit) as exited:
            parser.parse_args([command, "--help"])
        assert exited.value.code == 0
    args = parser.parse_args(["demo", "--seed", "3"])
    assert args.run.__name__ == "cmd_demo" and args.seed == 3


def test_cli_turns_tmstate_errors_into_one_line_and_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    # `plot-line` on a missing file must fail with a one-line error, not a traceback.
    status = main(["plot-line", "/nonexistent/line.npz"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.startswith("tmstate plot-line: error:") and "/nonexistent/line.npz" in err
    assert len(err.splitlines()) == 1


def test_cli_help_runs_as_a_program() -> None:
    out = subprocess.run([sys.executable, "-m", "tmstate.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "TrackMania" in out.stdout


def test_atomic_writes_are_readable_like_plain_files_and_leave_no_temp(tmp_path: Path) -> None:
    import os
    import stat

    from tmstate.files import atomic_write_text

    target = tmp_path / "sub" / "out.json"
    atomic_write_text(target, "one")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(os.listdir(target.parent)) == ["out.json"]


def test_the_package_exposes_its_main_api_lazily():
    import subprocess
    import sys

    import tmstate
    from tmstate.core.reference import ReferenceLine
    from tmstate.env.env import EnvConfig, TMNFEnv
    from tmstate.formats.log import read_episode
    from tmstate.vector.make import make_vector_env
    from tmstate.vector.sb3 import to_sb3

    assert (tmstate.TMNFEnv, tmstate.EnvConfig, tmstate.make_vector_env, tmstate.to_sb3,
            tmstate.ReferenceLine, tmstate.read_episode) == (TMNFEnv, EnvConfig, make_vector_env, to_sb3,
                                                             ReferenceLine, read_episode)
    assert set(tmstate.__all__) <= set(dir(tmstate)) and tmstate.__version__ == "0.1.0"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        tmstate.Nope  # noqa: B018
    # importing the errors does not load the env, the vector env or scipy (only the ids are registered)
    code = ("import sys, tmstate.errors; print(sorted(m for m in ('tmstate.env.env', 'tmstate.vector.make', "
            "'tmstate.core.progress', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

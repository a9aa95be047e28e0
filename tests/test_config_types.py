"""Every config field is checked against its declared type when loaded (issue 10, defect 5):
one generic checker from the dataclass annotations, a one-line ConfigError naming the key,
the value and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from tmstate.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


ENV_CASES = [
    ("reward = 5", "reward", "5"),
    ("termination = 5", "termination", "5"),
    ('progress = "x"', "progress", "'x'"),
    ("map = 5", "map", "5"),
    ("log_dir = 5", "log_dir", "5"),
    ("backend_options = [1, 2]", "backend_options", "[1, 2]"),
    ('action_period_ms = "50"', "action_period_ms", "'50'"),
    ("game_speed = true", "game_speed", "True"),
    ("game_speed = nan", "game_speed", "nan"),
    ('observation = {type = "dict", grayscale = "yes"}', "grayscale", "'yes'"),
    ('reward = {time = "a lot"}', "time", "'a lot'"),
    ("observation = 5", "observation", "5"),
]


@pytest.mark.parametrize("line,key,shown", ENV_CASES)
def test_env_config_values_of_the_wrong_type_are_one_line_config_errors(tmp_path, line, key, shown):
    from tmstate.env.env import load_config

    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f"[env]\n{line}\n"))
    message = str(caught.value)
    assert "\n" not in message and key in message and shown in message and "expected" in message


def test_an_unambiguous_string_shorthand_is_accepted(tmp_path):
    from tmstate.env.env import load_config

    config = load_config(write(tmp_path, '[env]\nobservation = "frames"\n'))
    assert config.observation.type == "frames"


def test_the_env_table_itself_of_the_wrong_type(tmp_path):
    from tmstate.env.env import load_config

    with pytest.raises(ConfigError, match="expected a table"):
        load_config(write(tmp_path, "env = 5\n"))


def test_a_config_path_that_is_a_folder_or_not_utf8(tmp_path):
    from tmstate.env.env import load_config

    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'[env]\nmap = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(bad)


@pytest.mark.parametrize("options,key", [
    ({"port": "abc"}, "port"),
    ({"timeout_s": "x"}, "timeout_s"),
    ({"frame_size": [1, "a"]}, "frame_size"),
])
def test_game_backend_options_are_type_checked(options, key):
    from tmstate.env.env import TMNFEnv

    with pytest.raises(ConfigError, match=key):
        TMNFEnv(backend="tminterface", map="sim_easy", backend_options=options)


@pytest.mark.parametrize("options,key", [
    ({"seed": -1}, "seed"),
    ({"seed": "a"}, "seed"),
    ({"width_m": "x"}, "width_m"),
    ({"width_m": -3.0}, "width_m"),
    ({"camera_name": 5}, "camera_name"),
    ({"car": 5}, "car"),
])
def test_sim_backend_options_are_type_checked(options, key):
    from tmstate.env.env import TMNFEnv

    with pytest.raises(ConfigError, match=key):
        TMNFEnv(backend="sim", map="sim_easy", backend_options=options)


def test_rewards_compare_config_is_type_checked(tmp_path):
    from tmstate.tools.compare import load_configs

    with pytest.raises(ConfigError, match="reward"):
        load_configs(str(write(tmp_path, "reward = 5\n")))
    with pytest.raises(ConfigError, match=r"time.*'x'"):
        load_configs(str(write(tmp_path, '[reward]\ntime = "x"\n')))


@pytest.mark.parametrize("line,key", [
    ('xvfb = "no"', "xvfb"),
    ("extra_env = {A = 5}", "extra_env.A"),
    ("profile = 5", "profile"),
    ('display_base = "a"', "display_base"),
    ("run_dir = 5", "run_dir"),
    ("base_port = 70000", "base_port"),
    ("display_base = -1", "display_base"),
])
def test_launch_config_values_are_type_checked(tmp_path, line, key):
    from tmstate.ops.launch import load_config

    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f"[launch]\n{line}\n"), environ={})
    assert key in str(caught.value) and "\n" not in str(caught.value)


def test_launch_xvfb_no_stays_off_through_the_environment():
    from tmstate.ops.launch import load_config

    assert load_config(None, environ={"TMSTATE_XVFB": "no"}).xvfb is False


def test_the_checker_keeps_good_values_and_normalises_lists():
    from tmstate.env.env import make_config

    config = make_config(backend_options={"frame_size": [64, 48]}, reward={"time": 1}, map="sim_esses")
    assert config.reward.time == 1.0 and isinstance(config.reward.time, float)
    assert config.map == "sim_esses"

"""`tmstate check`: a table of what is ready; exit 1 only for a missing required Python dep."""

from __future__ import annotations


import json

import pytest

from tmstate import cli
from tmstate.ops import check

FAST_DEPS = (
    ("json", "json-stdlib-not-a-dist", True, "stdlib stand-in"),
    ("numpy", "numpy", True, "arrays"),
)


@pytest.fixture
def quick(monkeypatch):
    """Only cheap imports (torch takes seconds), no launch config from the environment."""
    monkeypatch.setattr(check, "PYTHON_DEPS", FAST_DEPS)
    for name in ("TMSTATE_WINE", "TMSTATE_TMLOADER", "TMSTATE_WINE_PREFIX", "TMSTATE_TMNF_DIR",
                 "TMSTATE_LAUNCH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def run(capsys, as_json: bool) -> tuple[int, str]:
    code = cli.main(["check", "--json"] if as_json else ["check"])
    return code, capsys.readouterr().out


def items_by_name(out: str) -> dict[str, dict]:
    return {i["name"]: i for i in json.loads(out)["items"]}


def test_all_required_present_exits_0_with_versions(quick, capsys):
    code, out = run(capsys, as_json=True)
    assert code == 0
    items = items_by_name(out)
    import numpy

    assert items["python: numpy"]["status"] == "OK"
    assert numpy.__version__ in items["python: numpy"]["detail"]
    assert {"harness binary", "angelscript headers", "plugin-check engines", "wine", "Xvfb", "TMNF folder"} <= set(items)


def test_missing_required_dep_exits_1_and_says_what_to_do(quick, capsys):
    quick.setattr(check, "PYTHON_DEPS", FAST_DEPS + (("no_such_module_xyz", "no-such-dist", True, "x"),))
    code, out = run(capsys, as_json=False)
    assert code == 1
    line = next(row for row in out.splitlines() if "no-such-dist" in row)
    assert line.startswith("MISSING") and "pip install no-such-dist" in line


def test_missing_optional_dep_still_exits_0(quick, capsys):
    quick.setattr(check, "PYTHON_DEPS", FAST_DEPS + (("no_such_module_xyz", "no-such-dist", False, "x"),))
    code, out = run(capsys, as_json=True)
    assert code == 0
    assert items_by_name(out)["python: no-such-dist"]["status"] == "INFO"


def test_a_missing_optional_dep_of_an_extra_points_at_the_extra(quick, capsys):
    """It said `pip install torch`, which takes a CUDA build instead of the extra's CPU one."""
    quick.setattr(check, "PYTHON_DEPS", FAST_DEPS + (("no_such_module_xyz", "torch", False, "training (extra [train])"),))
    code, out = run(capsys, as_json=True)
    fix = items_by_name(out)["python: torch"]["fix"]
    assert code == 0 and "bash scripts/setup.sh train" in fix and '".[train]"' in fix


def test_configured_paths_are_reported_ok_or_missing(quick, capsys, tmp_path):
    tmnf = tmp_path / "TmForever"
    tmnf.mkdir()
    quick.setenv("TMSTATE_TMNF_DIR", str(tmnf))
    quick.setenv("TMSTATE_TMLOADER", str(tmp_path / "absent" / "TMLoader.exe"))
    quick.setenv("TMSTATE_WINE", "definitely-not-a-wine-binary")
    code, out = run(capsys, as_json=True)
    items = items_by_name(out)
    assert code == 0
    assert items["TMNF folder"]["status"] == "OK"
    assert items["TMLoader.exe"]["status"] == "MISSING"
    assert "absent" in items["TMLoader.exe"]["detail"]
    assert items["wine"]["status"] == "MISSING" and "PATH" in items["wine"]["detail"]


def test_table_marks_every_line(quick, capsys):
    code, out = run(capsys, as_json=False)
    rows = [row for row in out.splitlines() if row and not row.startswith(("ready", "required"))]
    assert rows and all(row.split()[0] in ("OK", "MISSING", "INFO") for row in rows)


def test_broken_launch_config_is_a_line_and_the_environment_still_counts(quick, capsys, tmp_path):
    broken = tmp_path / "launch.toml"
    broken.write_text("this is = = not toml\n")
    quick.setenv("TMSTATE_LAUNCH_CONFIG", str(broken))
    quick.setenv("TMSTATE_TMLOADER", str(tmp_path / "absent" / "TMLoader.exe"))
    code, out = run(capsys, as_json=True)
    items = items_by_name(out)
    assert code == 0
    assert items["launch config"]["status"] == "MISSING" and str(broken) in items["launch config"]["detail"]
    assert items["TMLoader.exe"]["status"] == "MISSING" and "absent" in items["TMLoader.exe"]["detail"]


def test_the_prefix_and_its_wineserver_as_tmstate_launch_will_use_them(quick, capsys, tmp_path):
    """`tmstate launch` starts the prefix itself (creating it when missing) with the wineserver
    next to `wine`: a missing prefix is information, a missing wineserver is missing."""
    quick.setenv("TMSTATE_WINE_PREFIX", str(tmp_path / "not-yet"))
    quick.setenv("TMSTATE_WINESERVER", str(tmp_path / "absent" / "wineserver"))
    items = items_by_name(run(capsys, as_json=True)[1])
    assert items["wine prefix"]["status"] == "INFO" and "creates it" in items["wine prefix"]["detail"]
    assert items["wineserver"]["status"] == "MISSING" and "absent" in items["wineserver"]["detail"]
    quick.setenv("TMSTATE_START_PREFIX", "false")
    items = items_by_name(run(capsys, as_json=True)[1])
    assert items["wine prefix"]["status"] == "MISSING" and "wineserver" not in items

"""``tmstate plugin-check``: public TMInterface plugins compile against the harness's API model.

The plugins in ../shared/realdata/tmi_plugins are known to run in the real game, so each
one that does not compile is a finding about the model. TMInterface's AngelScript is
newer than Debian's 2.35.1: built against AngelScript 2.36.1 (``make AS_SDK=...``, set
``TMSTATE_ANGELSCRIPT_SDK`` to that SDK to run the strict variant here) every plugin
compiles; with 2.35.1 the only failures allowed are the two compiler limitations 2.36
removed (plugins/API.md, "Engine").
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tmstate import cli
from tmstate.link.harness import HARNESS_DIR, PLUGIN_PATH, angelscript_header, build_harness
from tmstate.ops.plugin_check import angelscript_version, check_plugin

pytestmark = pytest.mark.skipif(
    angelscript_header() is None, reason="angelscript-dev is not installed (scripts/test.sh installs it)"
)

# Errors AngelScript 2.35.1 gives where 2.36 (and TMInterface) compile: a ternary mixing
# uint and int, and "not all paths return" after a switch whose default returns. Nothing
# else may fail.
AS_235_LIMITATIONS = (
    "Can't find unambiguous implicit conversion to make both expressions have the same type",
    "Not all paths return a value",
)


@pytest.fixture(scope="module")
def public_plugins(realdata: Path) -> list[Path]:
    folder = realdata / "tmi_plugins"
    plugins = sorted(p for p in folder.iterdir() if p.is_dir())
    if not plugins:
        pytest.skip(f"no plugin folders in {folder}")
    return plugins


@pytest.fixture(scope="module")
def harness_binary() -> Path:
    """Debian's build, or one against TMSTATE_ANGELSCRIPT_SDK when that is set."""
    sdk = os.environ.get("TMSTATE_ANGELSCRIPT_SDK")
    if not sdk:
        return build_harness()
    built = subprocess.run(["make", "-s", "-C", str(HARNESS_DIR), f"AS_SDK={sdk}"],
                           capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr[-2000:]
    return HARNESS_DIR / "build-sdk" / "tmstate-harness"


def test_every_public_plugin_compiles_against_the_model(public_plugins, harness_binary, capsys):
    args = ["plugin-check", "--harness", str(harness_binary), *map(str, public_plugins), str(PLUGIN_PATH)]
    status = cli.main(args)
    out = capsys.readouterr().out
    version = angelscript_version(harness_binary)
    if version >= (2, 36):
        assert status == 0, out
        assert f"{len(public_plugins) + 1} of {len(public_plugins) + 1} plugins compile" in out
        return
    failed = [check_plugin(p, harness_binary) for p in public_plugins]
    failed = [r for r in failed if not r.ok]
    assert status == (1 if failed else 0), out
    assert "OK      " + str(PLUGIN_PATH) in out
    for result in failed:
        errors = [m for m in result.messages if ": ERR: " in m]
        assert errors, f"{result.plugin} failed without an AngelScript error"
        for message in errors:
            assert any(limit in message for limit in AS_235_LIMITATIONS), (
                f"{result.plugin}: a failure that is not an AngelScript 2.35 limitation — the model "
                f"lacks or misdeclares something: {message}"
            )
    assert len(failed) <= 3


def test_a_wrong_declaration_in_the_model_fails_a_public_plugin(public_plugins, harness_binary, monkeypatch, capsys):
    """CaptureScreenshot(vec2&out) instead of the documented vec2&inout: Linesight's call
    with a temporary vec2 no longer compiles, so the check can tell a model from a wrong one."""
    linesight = next(p for p in public_plugins if "linesight" in p.name)
    assert check_plugin(linesight, harness_binary).ok
    monkeypatch.setenv("TMSTATE_HARNESS_WRONG_DECL", "CaptureScreenshot-out")
    status = cli.main(["plugin-check", "--harness", str(harness_binary), str(linesight)])
    out = capsys.readouterr().out
    assert status == 1
    assert re.search(r"Python_Link\.as:\d+:\d+: ERR: Output argument expression is not assignable", out), out


def test_a_folder_is_one_plugin_and_errors_name_file_and_row(tmp_path, harness_binary, capsys):
    unit = tmp_path / "two_files"
    (unit / "sub").mkdir(parents=True)
    (unit / "main.as").write_text(
        "PluginInfo@ GetPluginInfo() { PluginInfo info; info.Name = Helper(); return info; }\n", encoding="utf-8"
    )
    (unit / "sub" / "helper.as").write_text('string Helper() { return "two files"; }\n', encoding="utf-8")
    broken = tmp_path / "broken.as"
    broken.write_text(
        "PluginInfo@ GetPluginInfo() { PluginInfo info; return info; }\nvoid Main() { NoSuchCall(); }\n",
        encoding="utf-8",
    )
    status = cli.main(["plugin-check", "--harness", str(harness_binary), str(unit), str(broken)])
    out = capsys.readouterr().out
    assert status == 1
    assert f"OK      {unit}" in out and f"FAILED  {broken}" in out
    assert f"{broken}:2:" in out and "NoSuchCall" in out
    assert "1 of 2 plugins compile" in out

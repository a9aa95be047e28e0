"""``tmstate plugin-check``: public TMInterface plugins compile against the harness's API model.

The plugins in ../shared/realdata/tmi_plugins are known to run in the real game, so each
one that compiles with no engine is a finding about the model. TMInterface's compiler
behaves like AngelScript 2.36.x; the engines a Debian 12 machine gets are the system's
2.35.1 and Debian sid's 2.38.0 (plugins/harness/get-angelscript.sh, which scripts/test.sh
runs). Each refuses a few plugins on a language rule that changed between versions
(plugins/API.md, "Engine"); those refusals, and no other, are allowed here, each checked
against the source line it points at.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import REALDATA
from tmstate import cli
from tmstate.errors import ConfigError
from tmstate.link import harness as harness_mod
from tmstate.link.harness import HARNESS_DIR, PLUGIN_PATH, angelscript_header
from tmstate.ops.plugin_check import Harness, available_harnesses, check_plugin

pytestmark = pytest.mark.skipif(
    angelscript_header() is None, reason="angelscript-dev is not installed (scripts/test.sh installs it)"
)

CONVERSION = "Can't find unambiguous implicit conversion to make both expressions have the same type"
NOT_ALL_PATHS = "Not all paths return a value"
NOT_A_REFERENCE = "Not a valid reference"
ERR = re.compile(r"^(?P<file>.+\.as):(?P<row>\d+):(?P<col>\d+): ERR: (?P<text>.*)$")


def _line(file: Path, row: int) -> str:
    return file.read_text(encoding="utf-8", errors="replace").splitlines()[row - 1]


def _is_mixed_ternary(file: Path, row: int, col: int) -> bool:
    """2.35.1 refuses ``c ? u : i`` with a uint and an int arm (2.36 converts): the row holds a ternary."""
    return re.search(r"\?[^;]*:", _line(file, row)) is not None


def _is_switch_returning_in_default(file: Path, row: int, col: int) -> bool:
    """2.35.1 says "not all paths return" after a switch whose every case, default included,
    returns (2.36 sees they all do): the function body starting at the row is such a switch."""
    body = []
    for line in file.read_text(encoding="utf-8", errors="replace").splitlines()[row - 1:]:
        body.append(line)
        if line.rstrip() == "}":
            break
    text = "\n".join(body)
    return "switch" in text and re.search(r"default\s*:\s*return\b", text) is not None


def _is_literal_to_string_ref(file: Path, row: int, col: int) -> bool:
    """2.38.0 refuses a string literal passed to a ``string&`` (inout) parameter, which 2.36.1
    (and TMInterface) accept: the column is a string literal opening the call of a function
    the plugin declares with such a parameter."""
    line = _line(file, row)
    call = re.search(r"(\w+)\s*\(\s*$", line[: col - 1])
    if line[col - 1 : col] != '"' or call is None:
        return False
    sources = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in file.parent.rglob("*.as"))
    declared = re.search(rf"\b{call.group(1)}\s*\([^)]*\bstring\s*&(?!\s*(?:in|out)\b)", sources)
    return declared is not None


# Per engine: the plugins it refuses, each with the message and the rule the source must show.
# Anything else an engine says is a finding about the model.
KNOWN_LANGUAGE_DIFFERENCES = {
    "2.35.1": {
        "koyaanis_bruteforce_controller": (CONVERSION, _is_mixed_ternary),
        "saimoen_dynamic_kb": (CONVERSION, _is_mixed_ternary),
        "saimoen_finetuner": (NOT_ALL_PATHS, _is_switch_returning_in_default),
    },
    "2.38.0": {
        "shweetz_nosepos_plus": (NOT_A_REFERENCE, _is_literal_to_string_ref),
    },
}


@pytest.fixture(scope="module")
def public_plugins(realdata: Path) -> list[Path]:
    folder = realdata / "tmi_plugins"
    plugins = sorted(p for p in folder.iterdir() if p.is_dir())
    if not plugins:
        pytest.skip(f"no plugin folders in {folder}")
    return plugins


@pytest.fixture(scope="module")
def harnesses() -> list[Harness]:
    """A harness per engine available (built if needed)."""
    return available_harnesses()


@pytest.fixture(scope="module")
def both_engines(harnesses: list[Harness]) -> list[Harness]:
    """The system's 2.35.1 and sid's 2.38.0. With the real plugins here, or in CI (where
    scripts/test.sh gets it), a missing one fails: without it the check proves half of what
    it claims. Elsewhere the test skips and says how to get it."""
    versions = [h.version for h in harnesses]
    if "2.38.0" not in versions or len(harnesses) < 2:
        message = (f"AngelScript engines here: {', '.join(versions)}; plugin-check needs Debian sid's 2.38.0 "
                   f"beside the system's — `bash {harness_mod.GET_ENGINE_SCRIPT}` gets it (scripts/test.sh runs it)")
        if os.environ.get("CI") == "true" or REALDATA.is_dir():
            pytest.fail(message)
        pytest.skip(message)
    return harnesses


def test_every_public_plugin_compiles_with_an_engine(public_plugins, both_engines, capsys):
    status = cli.main(["plugin-check", *map(str, public_plugins), str(PLUGIN_PATH)])
    out = capsys.readouterr().out
    assert status == 0, out
    total = len(public_plugins) + 1
    assert f"{total} of {total} plugins compile against the API model" in out, out
    assert out.startswith("engines: " + ", ".join(f"AngelScript {h.version} ({h.where})" for h in both_engines)), out
    for plugin in public_plugins:
        assert re.search(rf"^OK +{re.escape(str(plugin))}  compiled by ", out, re.M), out
    assert f"OK      {PLUGIN_PATH}  compiled by {', '.join(h.version for h in both_engines)}" in out


def test_each_engine_refuses_only_its_known_language_differences(public_plugins, both_engines):
    """Per engine, the set of plugins it refuses and every ERR it gives are exactly the
    language-version differences above; each message is checked against the source line."""
    results = [check_plugin(p, both_engines) for p in public_plugins]
    for harness in both_engines:
        known = KNOWN_LANGUAGE_DIFFERENCES.get(harness.version)
        assert known is not None, (
            f"no reviewed list of language differences for AngelScript {harness.version}: compile the "
            "plugins with it and add what it refuses to KNOWN_LANGUAGE_DIFFERENCES after reading each message"
        )
        refused = {r.plugin.name: r.run(harness.version) for r in results if not r.run(harness.version).ok}
        assert sorted(refused) == sorted(known), (
            f"AngelScript {harness.version} refuses {sorted(refused)}, expected {sorted(known)}: a plugin refused "
            "for another reason is a finding about the model — "
            + " | ".join(m for name, run in refused.items() if name not in known for m in run.messages if ": ERR: " in m)
        )
        for name, run in refused.items():
            text, rule = known[name]
            errors = [m for m in run.messages if ": ERR: " in m]
            assert errors, f"{name} was refused by {harness.version} without an AngelScript error: {run.messages}"
            for message in errors:
                found = ERR.match(message)
                assert found and found["text"] == text, (
                    f"AngelScript {harness.version} on {name}: {message!r} is not the known {text!r} "
                    "(a finding about the model)"
                )
                assert rule(Path(found["file"]), int(found["row"]), int(found["col"])), (
                    f"AngelScript {harness.version} on {name}: {message} does not point at {rule.__doc__}"
                )
    for result in results:
        assert result.ok, f"{result.plugin} compiles with no engine"
    own = check_plugin(PLUGIN_PATH, both_engines)
    assert own.compiled_by == [h.version for h in both_engines], own.runs


def test_a_wrong_declaration_in_the_model_fails_a_public_plugin_on_every_engine(
        public_plugins, both_engines, monkeypatch, capsys):
    """CaptureScreenshot(vec2&out) instead of the documented vec2&inout: Linesight's call
    with a temporary vec2 no longer compiles with any engine, so the check can tell a model
    from a wrong one whichever engine it uses."""
    linesight = next(p for p in public_plugins if "linesight" in p.name)
    assert check_plugin(linesight, both_engines).compiled_by == [h.version for h in both_engines]
    monkeypatch.setenv("TMSTATE_HARNESS_WRONG_DECL", "CaptureScreenshot-out")
    status = cli.main(["plugin-check", str(linesight)])
    out = capsys.readouterr().out
    assert status == 1, out
    assert f"FAILED  {linesight}  refused by every engine" in out, out
    for harness in both_engines:
        assert f"refused by AngelScript {harness.version} (a finding about the model" in out, out
    wrong = re.findall(r"Python_Link\.as:\d+:\d+: ERR: Output argument expression is not assignable", out)
    assert len(wrong) == len(both_engines), out
    for harness in both_engines:  # each engine alone fails it too
        assert cli.main(["plugin-check", "--engine", harness.version, str(linesight)]) == 1
    capsys.readouterr()


def test_both_engines_are_here(both_engines):
    """In CI and wherever the real plugins are, plugin-check has both engines to compile with."""
    assert [h.version for h in both_engines][-1] == "2.38.0"
    assert all(h.binary.is_file() for h in both_engines)


def test_a_folder_is_one_plugin_and_errors_name_file_and_row(tmp_path, harnesses, capsys):
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
    status = cli.main(["plugin-check", str(unit), str(broken)])
    out = capsys.readouterr().out
    assert status == 1
    assert f"OK      {unit}  compiled by {', '.join(h.version for h in harnesses)}" in out, out
    assert f"FAILED  {broken}" in out
    assert out.count(f"{broken}:2:") == len(harnesses) and "NoSuchCall" in out, out
    assert "1 of 2 plugins compile" in out


def test_one_engine_only_says_how_to_get_the_other(tmp_path, harnesses, monkeypatch, capsys):
    system = harness_mod.system_engine()
    assert system is not None
    monkeypatch.setattr(harness_mod, "engines", lambda: [system])
    plugin = tmp_path / "p.as"
    plugin.write_text("PluginInfo@ GetPluginInfo() { PluginInfo info; return info; }\n", encoding="utf-8")
    assert cli.main(["plugin-check", str(plugin)]) == 0
    out = capsys.readouterr().out
    note = [line for line in out.splitlines() if line.startswith("only AngelScript")]
    assert len(note) == 1 and str(harness_mod.GET_ENGINE_SCRIPT) in note[0], out
    assert cli.main(["plugin-check", "--engine", "9.9.9", str(plugin)]) != 0
    assert re.search(r"AngelScript 9\.9\.9 is not available here .*get-angelscript\.sh", capsys.readouterr().err)


def _fake_engine(root: Path, version: str) -> Path:
    (root / "usr" / "include").mkdir(parents=True)
    (root / "usr" / "include" / "angelscript.h").write_text(
        f'#define ANGELSCRIPT_VERSION_STRING "{version} WIP"\n', encoding="utf-8")
    (root / "usr" / "lib" / "x86_64-linux-gnu").mkdir(parents=True)
    for lib in ("libangelscript.a", "libangelscript-addon.a"):
        (root / "usr" / "lib" / "x86_64-linux-gnu" / lib).write_bytes(b"!<arch>\n")
    return root


def test_engines_are_the_system_the_cache_and_the_named_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cached = _fake_engine(harness_mod.engine_cache_dir() / "2.99.0", "2.99.0")
    (harness_mod.engine_cache_dir() / "stray").mkdir()  # not an engine: left out
    named = _fake_engine(tmp_path / "named", "2.98.1")
    monkeypatch.setenv(harness_mod.ENGINES_ENV, str(named))
    found = harness_mod.engines()
    system = harness_mod.system_engine()
    assert [(e.version, e.prefix) for e in found] == [
        (system.version, None), ("2.98.1", named.resolve()), ("2.99.0", cached.resolve())]
    binaries = {harness_mod.harness_binary(e) for e in found}
    assert len(binaries) == 3  # one build per engine
    assert harness_mod.harness_binary(system) == harness_mod.harness_binary()  # the system's is the default
    monkeypatch.setenv(harness_mod.ENGINES_ENV, str(tmp_path / "nothing"))
    with pytest.raises(ConfigError, match="not an extracted angelscript-dev package"):
        harness_mod.engines()


def test_get_angelscript_reuses_an_engine_in_the_cache(tmp_path):
    """Idempotent and offline once there: an extracted engine in the cache is printed as it is."""
    engine = _fake_engine(tmp_path / "tmstate" / "angelscript" / "2.38.0", "2.38.0")
    done = subprocess.run(["bash", str(HARNESS_DIR / "get-angelscript.sh")], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(engine)


def test_the_makefile_refuses_a_prefix_without_angelscript(tmp_path):
    done = subprocess.run(["make", "-n", "-C", str(HARNESS_DIR), f"AS_PREFIX={tmp_path}"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"AS_PREFIX={tmp_path}: no usr/lib/<arch>/libangelscript.a there" in done.stderr

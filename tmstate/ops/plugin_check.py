"""``tmstate plugin-check PLUGIN...``: compile TMInterface plugins against the harness's API model.

Each PLUGIN is a ``.as`` file, or a folder whose ``.as`` files (subfolders included) form
one plugin, as TMInterface loads a plugin folder. The harness (``plugins/harness``)
registers the TMInterface 2 API as ``plugins/API.md`` models it and compiles the plugin
with AngelScript, once per AngelScript engine available (:func:`tmstate.link.harness.engines`:
the system's 2.35.1, and Debian sid's 2.38.0 once ``plugins/harness/get-angelscript.sh``
has put it in the cache). A plugin passes when at least one engine compiles it; the
messages of an engine that refused it are printed as AngelScript gives them
(``file:row:col: ERR: text``), labelled with that engine. Exit status 0 when every plugin
passes, 1 otherwise.

Why: the model is only as good as the evidence behind it. Public plugins that are known
to run in the real game must compile against it unmodified; one that does not is a finding
about the model (a missing or wrongly declared symbol, an engine property), never about
the plugin. Why several engines: TMInterface's compiler behaves like AngelScript 2.36.x,
which no Debian package has; the older 2.35.1 and the newer 2.38.0 each refuse a few
plugins on a language rule alone (plugins/API.md, "Engine"). The API model registered is
the same under each, so a plugin one engine compiles has everything it uses in the model.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tmstate.errors import ConfigError


@dataclass(frozen=True)
class Harness:
    """A built harness binary and the AngelScript version it runs (e.g. ``2.38.0``)."""

    version: str
    binary: Path
    where: str = ""
    """Where its AngelScript came from: ``system``, an extracted package's folder, or a binary given."""


@dataclass(frozen=True)
class EngineRun:
    """One plugin compiled by one engine: whether it compiled, and AngelScript's messages."""

    version: str
    ok: bool
    messages: list[str]


@dataclass(frozen=True)
class CheckResult:
    """One plugin's outcome over every engine tried."""

    plugin: Path
    runs: list[EngineRun]

    @property
    def ok(self) -> bool:
        """At least one engine compiled it (the API model has what it uses)."""
        return any(run.ok for run in self.runs)

    @property
    def compiled_by(self) -> list[str]:
        return [run.version for run in self.runs if run.ok]

    @property
    def refused_by(self) -> list[str]:
        return [run.version for run in self.runs if not run.ok]

    def run(self, version: str) -> EngineRun:
        """The run of engine ``version``."""
        for run in self.runs:
            if run.version == version:
                return run
        raise KeyError(version)


def _check_path(plugin: str | Path) -> Path:
    path = Path(plugin)
    if not path.exists():
        raise ConfigError(f"{path}: no such plugin file or folder")
    if path.is_dir() and not any(path.rglob("*.as")):
        raise ConfigError(f"{path}: the folder holds no .as file (a plugin folder is its .as files)")
    if path.is_file() and path.suffix != ".as":
        raise ConfigError(f"{path}: a plugin is a .as file or a folder of them")
    return path


def compile_plugin(plugin: Path, harness: Harness, timeout_s: float = 120.0) -> EngineRun:
    """Compile one plugin (file or folder) with ``tmstate-harness --check-only``."""
    done = subprocess.run(
        [str(harness.binary), "--check-only", "--plugin", str(plugin)],
        capture_output=True, text=True, timeout=timeout_s,
    )
    lines = [line for line in done.stderr.splitlines() if ": ERR: " in line or ": WARN: " in line]
    if done.returncode not in (0, 1):  # 3: the API model itself did not register
        lines = done.stderr.splitlines()[-10:]
    return EngineRun(harness.version, done.returncode == 0, lines)


def check_plugin(plugin: str | Path, harnesses: list[Harness] | None = None) -> CheckResult:
    """Compile one plugin with each of ``harnesses`` (default: every engine available)."""
    path = _check_path(plugin)
    return CheckResult(path, [compile_plugin(path, h) for h in (harnesses or available_harnesses())])


def available_harnesses(version: str | None = None) -> list[Harness]:
    """A harness built against each AngelScript engine here (only ``version`` when given),
    oldest first; builds what is not built yet."""
    from tmstate.link.harness import GET_ENGINE_SCRIPT, build_harness, engines

    found = engines()
    if version is not None:
        chosen = [e for e in found if e.version == version]
        if not chosen:
            have = ", ".join(e.version for e in found) or "none"
            raise ConfigError(
                f"AngelScript {version} is not available here (engines: {have}) — "
                f"`bash {GET_ENGINE_SCRIPT}` gets Debian sid's, `apt-get install angelscript-dev` the system's"
            )
        found = chosen
    if not found:
        raise ConfigError(
            "no AngelScript engine to compile with — `apt-get install angelscript-dev` "
            "(scripts/test.sh does it) to build the harness"
        )
    return [Harness(e.version, build_harness(engine=e), e.where) for e in found]


def harness_of_binary(binary: Path) -> Harness:
    """A harness binary given as it is (``--harness``), with the version it reports."""
    if not binary.is_file():
        raise ConfigError(f"{binary}: no such harness binary (make -C plugins/harness builds one)")
    return Harness(".".join(map(str, angelscript_version(binary))), binary, str(binary))


def angelscript_version(binary: Path | None = None) -> tuple[int, ...]:
    """The AngelScript version a harness binary runs, e.g. (2, 35, 1)."""
    from tmstate.link.harness import build_harness

    done = subprocess.run([str(binary or build_harness()), "--angelscript-version"],
                          capture_output=True, text=True, timeout=30)
    text = done.stdout.strip().split()[0] if done.stdout.strip() else ""
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        raise ConfigError(f"the harness printed no AngelScript version (got {done.stdout!r}); rebuild it") from None


LANGUAGE_RULE = "language rule, see plugins/API.md Engine"


def format_results(results: list[CheckResult], harnesses: list[Harness]) -> str:
    """The report plugin-check prints: per plugin OK/FAILED, the engines that compiled it, and
    each other engine's messages under a line naming that engine."""
    lines = []
    for r in results:
        if r.ok:
            head = f"OK      {r.plugin}  compiled by {', '.join(r.compiled_by)}"
        else:
            head = f"FAILED  {r.plugin}  refused by " + (
                "every engine" if len(r.runs) > 1 else f"AngelScript {r.runs[0].version}")
        lines.append(head)
        for run in r.runs:
            if not run.ok:
                why = (LANGUAGE_RULE if r.ok else "a finding about the model, plugins/API.md" if len(r.runs) > 1
                       else "a finding about the model, or a rule of this version: plugins/API.md Engine")
                lines.append(f"        refused by AngelScript {run.version} ({why}):")
            elif run.messages:
                lines.append(f"        AngelScript {run.version} compiled it with:")
            lines += [f"          {m}" for m in run.messages]
    failed = [r for r in results if not r.ok]
    versions = ", ".join(h.version for h in harnesses)
    lines.append(
        f"\n{len(results) - len(failed)} of {len(results)} plugins compile against the API model "
        f"(with at least one of AngelScript {versions})"
        + ("" if not failed else " — each failure is a finding about the model (plugins/API.md)")
    )
    return "\n".join(lines)

#!/usr/bin/env bash
# The test command (README quick start; .ci/run calls exactly this).
# Installs what the tests need (Debian: AngelScript 2.35 + Xvfb, and Wine 8 + mingw-w64 for
# the `wine` tests; Debian sid's AngelScript 2.38.0 package into the user cache, the second
# engine of `tmstate plugin-check`; Python: the package with its test extra in the project
# venv, made by scripts/setup.sh), builds the plugin harness and the Wine stand-in (plugins/winestandin),
# then runs the whole suite with the venv's Python (the Ray tests in a second venv, below).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
dpkg -s angelscript-dev >/dev/null 2>&1 || missing+=(angelscript-dev)
command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Wine and the compiler of the Windows stand-in: if they cannot be installed here the
# `wine` tests skip and say so; nothing else depends on them.
wine_missing=()
command -v wine >/dev/null 2>&1 && command -v wineserver >/dev/null 2>&1 || wine_missing+=(wine64)
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || wine_missing+=(gcc-mingw-w64-x86-64)
if [ ${#wine_missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${wine_missing[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        "${wine_missing[@]}" >/dev/null; } || echo "could not install ${wine_missing[*]}: the wine tests will skip"
fi

# The second AngelScript engine of plugin-check (plugins/API.md, "Engine"): sid's
# angelscript-dev, downloaded with a private apt configuration (the system's sources are not
# touched) into ${XDG_CACHE_HOME:-~/.cache}/tmstate/angelscript/; instant once there. A
# failed download stops here: the plugin-check tests need it.
engine=$(bash plugins/harness/get-angelscript.sh)
echo "AngelScript engine for plugin-check: $engine"

bash scripts/setup.sh test
venv=$(cd "${TMSTATE_VENV:-.venv}" && pwd)
export PATH="$venv/bin:$PATH"  # the venv's python3 and tmstate for tests that start them
make -s -C plugins/harness
if command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; then
    make -s -C plugins/winestandin
fi
# Static checks first (each fails the command): the import layers (pyproject.toml
# [tool.importlinter]; a back-import, e.g. core importing env, breaks it), lint (ruff check
# only, the formatter is not used) and types (mypy).
PYTHONPATH=. "$venv/bin/lint-imports"
"$venv/bin/ruff" check tmstate tests scripts
"$venv/bin/python" -m mypy
"$venv/bin/python" -m pytest -q -m "not ray" "$@"

# The Ray RLlib tests (marker ray) run in a venv of their own: RLlib pins one Gymnasium
# release, and the main suite above keeps running on the newest one the package allows.
# TMSTATE_RAY_TESTS=0 skips them. `timeout -s INT` lets pytest shut their Ray cluster down.
if [ "${TMSTATE_RAY_TESTS:-1}" != 0 ]; then
    ray_venv=${TMSTATE_RAY_VENV:-.venv-ray}
    TMSTATE_VENV="$ray_venv" bash scripts/setup.sh ray
    "$ray_venv/bin/python" -m pip install -q "pytest>=8,<10"
    # Only the ray test module: that venv has the [ray] extra, not the [test] one.
    PATH="$(cd "$ray_venv" && pwd)/bin:$PATH" timeout -s INT -k 30 900 \
        "$ray_venv/bin/python" -m pytest -q -m ray tests/test_rllib.py
fi

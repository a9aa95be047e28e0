#!/usr/bin/env bash
# The test command (README quick start; .ci/run calls exactly this).
# Installs what the tests need (Debian: AngelScript 2.35 + Xvfb; Python: the package with
# its test extra in the project venv, made by scripts/setup.sh), builds the plugin harness,
# then runs the whole suite with the venv's Python.
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

bash scripts/setup.sh test
venv=$(cd "${TMSTATE_VENV:-.venv}" && pwd)
export PATH="$venv/bin:$PATH"  # the venv's python3 and tmstate for tests that start them
make -s -C plugins/harness
"$venv/bin/python" -m pytest -q "$@"

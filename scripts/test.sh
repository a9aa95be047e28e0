#!/usr/bin/env bash
# The test command (README quick start; .ci/run calls exactly this).
# Installs what the tests need (Debian: AngelScript 2.35 + Xvfb; Python: the package with
# its test extra), builds the plugin harness, then runs the whole suite.
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

python3 -m pip install -q -e ".[test]"
make -s -C plugins/harness
python3 -m pytest -q "$@"

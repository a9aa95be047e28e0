#!/usr/bin/env bash
# The set-up (README quick start): the package installed in a project virtual environment.
#
#   bash scripts/setup.sh [EXTRAS]     e.g.  bash scripts/setup.sh train,human
#
# Creates the venv (.venv, or $TMSTATE_VENV) with $PYTHON (default python3) the first time,
# reuses it after. A venv is what makes an externally managed Python (PEP 668: Debian 12's
# /usr/bin/python3 refuses `pip install`) work like a pip-able one. When the Python has no
# venv module (a fresh Debian lacks python3-venv) and this runs as root, it is installed with
# apt-get. Extras that need torch (test, train, ray) get `torch==$TMSTATE_TORCH` first, the CPU
# build where a local wheel of it exists; the package itself only asks for a compatible
# range, so a torch already in the venv is kept. Then `pip install -e ".[EXTRAS]"`.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${TMSTATE_VENV:-.venv}
python=${PYTHON:-python3}
extras=${1:-}
torch_version=${TMSTATE_TORCH:-2.13.0}

as_root_apt() {
    # apt-get install "$@" when running as root; otherwise say what to run and stop.
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: $* missing; run as root or: sudo apt-get install -y $*" >&2
        exit 1
    fi
    echo "setup: installing Debian packages: $*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    if ! command -v "$python" >/dev/null 2>&1; then
        as_root_apt python3 python3-venv
    fi
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "setup: tmstate needs Python >= 3.11; $python is $("$python" -V 2>&1) (set PYTHON=...)" >&2
        exit 1
    fi
    if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        # Debian splits venv/ensurepip out of the interpreter package.
        minor=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
        as_root_apt python3-venv "python$minor-venv"
    fi
    rm -rf "$venv"  # a half-made venv from an earlier failed run
    echo "setup: creating $venv with $("$python" -c 'import sys; print(sys.executable)')"
    "$python" -m venv "$venv"
fi

vpy="$venv/bin/python"
case ",$extras," in
    *,test,*|*,train,*|*,ray,*)
        if ! "$vpy" -c 'import torch' >/dev/null 2>&1; then
            echo "setup: installing torch==$torch_version"
            "$vpy" -m pip install -q "torch==$torch_version"
        fi
        ;;
esac
spec="."
[ -n "$extras" ] && spec=".[$extras]"
echo "setup: pip install -e \"$spec\" in $venv"
"$vpy" -m pip install -q -e "$spec"
echo "setup: done; run $venv/bin/tmstate (or: source $venv/bin/activate)"

"""The package works installed as a wheel, from anywhere: its data is package data.

Builds the wheel of this checkout, checks it carries the plugin, the harness sources and the
shipped tracks (and nothing built), installs it into a fresh venv (dependencies from the
site-packages of the Python running the tests, so no network) and runs ``tmstate demo``, ``tmstate harness-demo``
(which builds the harness from the packaged sources into a cache folder) and
``gymnasium.make`` from an unrelated folder.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(dist)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = dist.glob("tmstate-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed; the other dependencies are seen, after its own
    packages, from the site-packages of the Python running the tests (the project venv, or
    the system's): a ``.pth`` line adds that folder but runs none of its ``.pth`` files, so
    this checkout's editable install stays out."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=300)
    python = root / "bin" / "python"
    own = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    (Path(own) / "tmstate_test_deps.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                                "--ignore-installed", str(wheel)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return root


def run_in(venv: Path, cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """A command of the venv, run from ``cwd`` with nothing of this checkout on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_CACHE_HOME"] = str(cwd / "cache")  # the harness is built here, not in the checkout
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_wheel_carries_the_plugin_the_harness_sources_and_the_tracks(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    data = "tmstate/data/"
    assert {data + "plugins/tmstate.as", data + "plugins/harness/Makefile", data + "plugins/harness/get-angelscript.sh",
            data + "reference_lines/sim_easy.npz", data + "reference_lines/sim_esses.npz",
            data + "reference_lines/sim_hairpins.npz", "tmstate/data/__init__.py"} <= names
    sources = {n for n in names if n.startswith(data + "plugins/harness/src/")}
    assert {data + "plugins/harness/src/main.cpp", data + "plugins/harness/src/api.hpp"} <= sources
    assert "tmstate/backends/sim/kernel.c" in names  # the simulator's compiled ticks, built on first use
    assert not [n for n in names if "/build/" in n or n.endswith((".o", ".so", ".d"))]  # sources only


def test_demo_harness_demo_and_gymnasium_make_run_from_an_installed_wheel(venv, tmp_path, requires_harness):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    python = str(venv / "bin" / "python")
    where = run_in(venv, elsewhere, python, "-c", "import tmstate; print(tmstate.__file__)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # the wheel, not this checkout

    demo = run_in(venv, elsewhere, str(venv / "bin" / "tmstate"), "demo", "--no-video", "--out", "demo")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "finished" in demo.stdout and (elsewhere / "demo").is_dir()
    assert list((elsewhere / "cache" / "tmstate" / "sim-kernel").glob("*/libtmstate_sim.so"))  # from the wheel's kernel.c

    harness = run_in(venv, elsewhere, str(venv / "bin" / "tmstate"), "harness-demo", "--steps", "20")
    assert harness.returncode == 0, harness.stdout + harness.stderr
    assert "connected: plugin" in harness.stdout
    assert list((elsewhere / "cache" / "tmstate" / "harness").glob("*/tmstate-harness"))

    code = ("import gymnasium, tmstate; env = gymnasium.make('tmstate/SimEasy-v0'); obs, _ = env.reset(seed=0); "
            "assert env.observation_space.contains(obs); env.step(env.action_space.sample()); "
            "print(env.unwrapped.line.name, tmstate.TMNFEnv.__module__)")
    made = run_in(venv, elsewhere, python, "-c", code)
    assert made.returncode == 0, made.stderr
    line_file, module = made.stdout.split()
    assert module == "tmstate.env.env" and Path(line_file).name == "sim_easy.npz"
    assert Path(line_file).is_relative_to(venv)  # the track came from the wheel's package data

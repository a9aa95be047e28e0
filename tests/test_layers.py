"""The import layers (pyproject.toml [tool.importlinter]) hold, and a back-import breaks them.

scripts/test.sh runs ``lint-imports`` on the package; this test shows the contract can fail:
the same check on a copy of the package where the core imports the env must report it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")

pytestmark = pytest.mark.skipif(not Path(LINT_IMPORTS).is_file(),
                                reason="import-linter is not installed (the [test] extra has it)")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with this repo's contract, on the package under ``root``."""
    return subprocess.run([LINT_IMPORTS, "--config", str(REPO / "pyproject.toml")], cwd=root,
                          env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(root)},
                          capture_output=True, text=True, timeout=300)


def test_the_package_keeps_its_layers():
    result = lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_a_back_import_breaks_the_contract(tmp_path):
    shutil.copytree(REPO / "tmstate", tmp_path / "tmstate", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    scoring = tmp_path / "tmstate" / "core" / "scoring.py"
    scoring.write_text(scoring.read_text() + "\nfrom tmstate.env.env import TMNFEnv  # a back-import\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "tmstate.core is not allowed to import tmstate.env" in result.stdout
    assert "tmstate.core.scoring -> tmstate.env.env" in result.stdout

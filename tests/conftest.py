"""Shared test fixtures: where the real recorded game data is, and skips when it is not."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REALDATA = REPO.parent / "shared" / "realdata"


@pytest.fixture(scope="session")
def realdata() -> Path:
    """``../shared/realdata`` beside the checkout; the test is skipped if it is absent."""
    if not REALDATA.is_dir():
        pytest.skip(f"real game data not found at {REALDATA} (../shared/realdata beside the checkout)")
    return REALDATA


@pytest.fixture(scope="session")
def replays(realdata: Path) -> list[Path]:
    files = sorted((realdata / "replays").glob("*.Replay.Gbx"))
    if not files:
        pytest.skip(f"no .Replay.Gbx files in {realdata / 'replays'}")
    return files


@pytest.fixture(scope="module")
def harness():
    """The real plugin in the AngelScript harness, one per test module (each test connects its own client)."""
    from tmstate.link.harness import HarnessProcess, angelscript_header

    if angelscript_header() is None:
        pytest.skip("angelscript-dev is not installed (scripts/test.sh installs it)")
    with HarnessProcess() as h:
        yield h

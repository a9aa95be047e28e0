"""Shared test fixtures: where the real recorded game data is, and skips when it is not."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def requires_harness() -> None:
    """Skip unless the plugin harness can be built and run here (AngelScript headers, the plugin).

    The one harness-availability check: the ``harness`` fixture and every test that starts its
    own harness use it (conftest also marks those tests ``harness``)."""
    from tmstate.link.harness import PLUGIN_PATH, angelscript_header

    if angelscript_header() is None:
        pytest.skip("angelscript-dev is not installed (scripts/test.sh installs it)")
    if not PLUGIN_PATH.is_file():
        pytest.skip(f"{PLUGIN_PATH} is missing from this install")


@pytest.fixture(scope="module")
def harness(requires_harness):
    """The real plugin in the AngelScript harness, one per test module (each test connects its own client)."""
    from tmstate.link.harness import HarnessProcess

    with HarnessProcess() as h:
        yield h


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Markers from what a test uses: ``realdata`` for tests of the real data fixtures (and a
    skip with the reason when the data is absent, for tests marked ``realdata`` by hand),
    ``harness`` for tests of the harness fixtures. ``-m "not realdata"`` then deselects them."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {"realdata", "replays"}:
            item.add_marker(pytest.mark.realdata)
        if names & {"harness", "requires_harness"}:
            item.add_marker(pytest.mark.harness)
        if item.get_closest_marker("realdata") and not REALDATA.is_dir():
            item.add_marker(pytest.mark.skip(
                reason=f"real game data not found at {REALDATA} (../shared/realdata beside the checkout)"))


@pytest.fixture(scope="module")
def xvfb_display() -> Iterator[str]:
    """A private Xvfb display, ":N" (Xvfb picks a free number and reports it through -displayfd)."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (scripts/test.sh installs the Debian package xvfb)")
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "800x600x24", "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as reader:
            number = reader.readline().strip()
        if not number:
            pytest.fail("Xvfb did not report a display number")
        yield f":{number}"
    finally:
        process.terminate()
        process.wait(timeout=10)

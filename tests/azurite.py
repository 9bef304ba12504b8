"""Azurite for every test that needs Azure Storage: an already-running one, or one started for
this session.

AZURITE_CONNECTION_STRING set: use that emulator (CI starts it once with tools/azurite/start.sh).
Otherwise start tools/azurite/start.sh on a free port and stop it by PID at the end (one Azurite
per xdist worker, started one after the other). If that is not possible the Azurite tests are
skipped locally, but fail when CI is set: a CI run that silently skips the lock tests would prove
nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.parallel import run_lock

REPO = Path(__file__).resolve().parents[1]
START_SCRIPT = REPO / "tools" / "azurite" / "start.sh"
# First use installs Azurite with npm (~25 s, 360 MB); later starts take about a second.
START_TIMEOUT_SECONDS = 600


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"Azurite is required in CI: {reason}", pytrace=False)
    pytest.skip(f"Azurite not available: {reason}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(pid: int) -> None:
    """SIGTERM, wait up to 5 s, then SIGKILL: the emulator must not outlive the session."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # raises ProcessLookupError once it is gone
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def azurite_connection_string(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("AZURITE_CONNECTION_STRING", "").strip()
    if given:
        yield given
        return
    missing = [tool for tool in ("bash", "node", "npm") if shutil.which(tool) is None]
    if missing:
        _unavailable(f"{', '.join(missing)} not found on PATH")
    workdir = tmp_path_factory.mktemp("azurite")
    pid_file = workdir / "azurite.pid"
    env = {
        **os.environ,
        "AZURITE_BLOB_PORT": str(_free_port()),
        "AZURITE_QUEUE_PORT": str(_free_port()),
        "AZURITE_TABLE_PORT": str(_free_port()),
        "AZURITE_PID_FILE": str(pid_file),
        "AZURITE_LOG_FILE": str(workdir / "azurite.log"),
    }
    try:
        try:
            # One start at a time across xdist workers: the first installs Azurite, and a port
            # picked free stays free only until the Azurite it was picked for listens on it.
            with run_lock(tmp_path_factory, "azurite-start"):
                started = subprocess.run(
                    ["bash", str(START_SCRIPT)],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=START_TIMEOUT_SECONDS,
                    check=False,
                )
        except subprocess.TimeoutExpired:
            _unavailable(f"{START_SCRIPT.name} did not finish within {START_TIMEOUT_SECONDS} s")
        if started.returncode != 0:
            tail = "\n".join(started.stderr.strip().splitlines()[-15:])
            _unavailable(f"{START_SCRIPT.name} exited with {started.returncode}:\n{tail}")
        yield started.stdout.strip()
    finally:
        if pid_file.exists():
            _stop(int(pid_file.read_text().strip()))

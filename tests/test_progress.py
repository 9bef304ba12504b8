"""Progress: `apply` under a pseudo-terminal shows where it is on stderr, redrawn in place; piped
output and --json show none of it."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

from emulators.litellm import LiteLLMEmulator
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[1]


def at_a_terminal(env: dict, *args: str) -> tuple[int, str, str]:
    """The CLI in a process of its own whose stderr is a pseudo-terminal: (exit code, stdout, the terminal)."""
    primary, secondary = pty.openpty()
    with Path("stdout.txt").open("w+b") as stdout:  # a pipe could fill up while the terminal is read
        process = subprocess.Popen([sys.executable, "-m", "sync_core", *args], cwd=Path.cwd(), stdout=stdout,
                                   stderr=secondary, env={**os.environ, "PYTHONPATH": str(REPO), **env})
        os.close(secondary)
        seen = b""
        while True:
            ready, _, _ = select.select([primary], [], [], 60)
            assert ready, "the CLI stopped writing to the terminal for a minute"
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        os.close(primary)
        process.wait(timeout=60)
        stdout.seek(0)
        return process.returncode, stdout.read().decode(), seen.decode()


def test_apply_at_a_terminal_shows_progress_in_place(env: dict, lite: LiteLLMEmulator) -> None:
    lite.server.latency = 0.05  # a call at a time takes long enough for the line to be redrawn
    code, out, terminal = at_a_terminal({**env, "SYNC_LITELLM_BULK": "off"}, "apply")
    assert code == 0 and out.startswith("Apply: ")
    assert "\r" in terminal and "\n" not in terminal  # one line, redrawn in place
    assert "reading Entra | reading LiteLLM" in terminal
    groups = re.findall(r"groups (\d+)/(\d+)", terminal)
    assert groups[-1][0] == groups[-1][1] and int(groups[-1][1]) >= 3  # the assigned groups and nested ones
    drawn = [line.removesuffix("\x1b[K") for line in terminal.split("\r") if line.startswith("applying")]
    total = int(drawn[-1].split("/")[1])
    assert drawn[-1] == f"applying {total}/{total}" and total > 10
    assert len(drawn) > 1, "applying was drawn once only: not in progress"
    assert terminal.endswith("\r\x1b[K"), "the line is cleared at the end"


def test_no_progress_with_json_or_when_piped(env: dict) -> None:
    code, out, terminal = at_a_terminal(env, "plan", "--json")
    assert code == 0 and out.startswith("{") and terminal == ""
    piped = run_cli(env, "plan")  # stderr is not a terminal
    assert piped.code == 0 and piped.err == ""

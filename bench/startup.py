"""Cold-start figures: how long importing the function app takes in a fresh process.

``import function_app`` is what the Functions worker does before the first invocation. msgraph-sdk
is imported lazily by the first run (sync_core.runner.build_reader), so its cost shows up in the
"first Graph request" figure of each scenario instead (process spawn -> first request at the
Graph emulator).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def _env() -> dict[str, str]:
    # a valid schedule keeps function_app's start-up check quiet; nothing else is read at import
    return {**os.environ, "SYNC_SCHEDULE": "0 */15 * * * *", "PYTHONPATH": str(REPO)}


def import_seconds(module: str, repeat: int = 3) -> tuple[float, list[float]]:
    """Median in-process import time of ``module`` over ``repeat`` fresh processes (and all samples)."""
    samples = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", _PROBE.format(module=module)], cwd=REPO, env=_env(),
                             capture_output=True, text=True, timeout=120, check=True)
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples), samples


def heaviest_imports(module: str, top: int = 6) -> list[tuple[str, float]]:
    """What ``import module`` spends its time on: the modules it imports directly (one level
    down in the -X importtime tree), by cumulative time, in seconds."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=REPO,
                         env=_env(), capture_output=True, text=True, timeout=120, check=True)
    line_re = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
    children: list[tuple[str, float]] = []
    pending: list[tuple[str, float]] = []
    for line in out.stderr.splitlines():
        match = line_re.match(line)
        if match is None:
            continue
        depth, name = len(match.group(3)), match.group(4)
        if depth == 3:  # one level below a top-level import
            pending.append((name, int(match.group(2)) / 1e6))
        elif depth == 1:  # children are printed before their parent
            if name == module:
                children = pending
            pending = []
    return sorted(children, key=lambda kv: -kv[1])[:top]

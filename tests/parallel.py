"""What tests need when pytest-xdist spreads them over worker processes (`make test` does).

Each worker is its own Python process with its own session fixtures; these helpers give the
workers of one run a folder in common and a way to add up counts that several tests produced.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest


def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder shared by every worker of this run: xdist gives each worker its own base temp
    inside the run's one (without xdist it is simply the run's base temp)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def run_lock(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[None]:
    """Held by one worker of this run at a time."""
    with (run_dir(tmp_path_factory) / f"{name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def tally(tmp_path_factory: pytest.TempPathFactory, name: str, part: int, parts: int,
          counts: Counter[str]) -> Counter[str] | None:
    """Record ``counts`` as part ``part`` of ``parts``. The part recorded last gets the sum over
    all parts; the others (and every part of a run that selected only some) get None."""
    folder = run_dir(tmp_path_factory) / f"{name}.tally"
    with run_lock(tmp_path_factory, name):
        folder.mkdir(exist_ok=True)
        (folder / f"{part}.json").write_text(json.dumps(counts))
        recorded = list(folder.glob("*.json"))
        if len(recorded) < parts:
            return None
        return sum((Counter(json.loads(path.read_text())) for path in recorded), Counter())


@contextlib.contextmanager
def slot(tmp_path_factory: pytest.TempPathFactory, name: str, slots: int) -> Iterator[None]:
    """Held by at most ``slots`` workers of this run at a time (waits for one to be free)."""
    folder = run_dir(tmp_path_factory)
    while True:
        for n in range(slots):
            handle = (folder / f"{name}.{n}.lock").open("a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield
            finally:
                handle.close()  # releases the lock
            return
        time.sleep(0.05)

"""The randomized many-run access test (tests/access_runs.py) on the LiteLLM emulator: many seeds.

ACCESS_SEEDS sets how many (default 8, in chunks that xdist workers run side by side); a failure
names its seed, and ``ACCESS_SEED=n`` replays just that one.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from emulators.litellm import LiteLLMEmulator
from tests.access_runs import Target, play
from tests.conftest import MASTER_KEY
from tests.parallel import tally
from tests.proxy_http import proxy_client

SEEDS = int(os.environ.get("ACCESS_SEEDS", "8"))
CHUNKS = 8  # a seed per test: xdist spreads them
STEPS = 30


def seeds(chunk: int) -> list[int]:
    if "ACCESS_SEED" in os.environ:
        return [int(os.environ["ACCESS_SEED"])] if chunk == 0 else []
    return list(range(chunk, SEEDS, CHUNKS))


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_access_follows_entra_across_many_runs(chunk: int, tmp_path: Path,
                                               tmp_path_factory: pytest.TempPathFactory,
                                               record_property: Callable[[str, object], None]) -> None:
    covered: Counter[str] = Counter()
    older = chunk % 2 == 1  # half the seeds against a proxy without the bulk routes (per-call writes)
    with LiteLLMEmulator(master_key=MASTER_KEY, bulk_routes=not older) as lite, \
            proxy_client(lite.base_url, MASTER_KEY) as http:
        emulator = Target(lite.base_url, lite.server, http, lite.base_url, MASTER_KEY)
        for seed in seeds(chunk):
            covered += play(seed, emulator, tmp_path / str(seed), STEPS)
            covered["seeds against an older proxy" if older else "seeds with bulk routes"] += 1
    total = tally(tmp_path_factory, "access-runs", chunk, CHUNKS, covered)
    if total is None:  # the chunk that finishes last reports what all of them covered
        return
    summary = f"access runs: {SEEDS} seeds; " + ", ".join(f"{k}: {v}" for k, v in sorted(total.items()))
    record_property("summary", summary)
    assert all(total[f"runs: {how}"] for how in ("killed", "failing reads", "held")), summary

"""The randomized many-run access test (tests/access_runs.py) against a REAL LiteLLM proxy.

The sync reaches the proxy through a relay (emulators/relay.py), where runs are killed half-way;
keys are used and rosters read on the proxy itself. One seed runs by default (a seed is minutes of
the one shared proxy's time in CI); nine more are marked ``deep`` (`pytest -m deep`), and the emulator
runs many more seeds (tests/test_access_runs.py).
Runs on the proxy of the runs lane (tests/real_proxies.py: a proxy of its own in CI, whose full
reads list no other test's users).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.relay import Relay
from tests.access_runs import Target, play
from tests.proxy_http import proxy_client
from tests.real_proxies import real_proxy

STEPS = 30
SEEDS = [0, *(pytest.param(seed, marks=pytest.mark.deep) for seed in range(1, 10))]

pytestmark = [pytest.mark.litellm_real(lane="runs"), pytest.mark.slow]


@pytest.fixture
def proxy() -> Iterator[Target]:
    url, key = real_proxy("runs")
    with Relay(url) as relay, proxy_client(url, key) as http:
        # "keep": the proxy holds other tests' teams, and managed teams of other syncs are never
        # this sync's to block; with keep, an unassigned group's team stays as it is.
        yield Target(relay.base_url, relay.server, http, url, key, orphans="keep")


@pytest.mark.parametrize("seed", SEEDS)
def test_access_follows_entra_across_many_runs_into_the_real_proxy(seed: int, proxy: Target, tmp_path: Path) -> None:
    play(seed, proxy, tmp_path, STEPS)

"""The randomized many-run access test (tests/access_runs.py) against a REAL LiteLLM proxy.

The sync reaches the proxy through a relay (emulators/relay.py), where runs are killed half-way;
keys are used and rosters read on the proxy itself. One seed runs by default (a seed is minutes of
the one shared proxy's time in CI); nine more are marked ``deep`` (`pytest -m deep`), and the emulator
runs many more seeds (tests/test_access_runs.py).
Runs when LITELLM_CONTRACT_URL and LITELLM_CONTRACT_KEY are set (a failure in CI when not).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.relay import Relay
from tests.access_runs import Target, play
from tests.proxy_http import proxy_client

URL, KEY = os.environ.get("LITELLM_CONTRACT_URL"), os.environ.get("LITELLM_CONTRACT_KEY")
STEPS = 30
SEEDS = [0, *(pytest.param(seed, marks=pytest.mark.deep) for seed in range(1, 10))]

pytestmark = [pytest.mark.litellm_real, pytest.mark.slow]


@pytest.fixture
def proxy() -> Iterator[Target]:
    if not (URL and KEY):
        if os.environ.get("CI"):
            pytest.fail("CI must run against the real LiteLLM proxy: LITELLM_CONTRACT_URL/KEY are not set")
        pytest.skip("set LITELLM_CONTRACT_URL and LITELLM_CONTRACT_KEY to run against a real LiteLLM proxy")
    with Relay(URL) as relay, proxy_client(URL, KEY) as http:
        # "keep": the proxy holds other tests' teams, and managed teams of other syncs are never
        # this sync's to block; with keep, an unassigned group's team stays as it is.
        yield Target(relay.base_url, relay.server, http, URL, KEY, orphans="keep")


@pytest.mark.parametrize("seed", SEEDS)
def test_access_follows_entra_across_many_runs_into_the_real_proxy(seed: int, proxy: Target, tmp_path: Path) -> None:
    play(seed, proxy, tmp_path, STEPS)

"""The LiteLLM emulator's cost model (emulators/litellm/cost.py) against the real proxy.

The same bulk user creations go to the real proxy (the volume lane: tests/real_proxies.py) and to
an emulator with ``CostModel.calibrated()``; the test prints both timings side by side (in the
run's summaries). Timings are the bench's business, never a test's (an overloaded proxy is slower
without bound: 92 s instead of 4 s seen), so what it asserts is what the model is made of: the
quantities it charges for are the real proxy's (the same rosters come out of the same requests),
each team write is charged exactly the model's price for what it added and found, every
membership is charged once, and writes to one team never overlap (the proxy's advisory lock).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator

import httpx
import pytest

from emulators.litellm import LiteLLMEmulator
from emulators.litellm.cost import CostModel, TeamCharge
from tests.contract.conftest import EMULATOR_KEY
from tests.real_proxies import real_proxy

pytestmark = [pytest.mark.litellm_real(lane="volume"), pytest.mark.slow]
TEAMS = 11  # one that takes 500 members, ten small ones


@pytest.fixture(scope="module")
def real() -> tuple[str, str]:
    return real_proxy("volume")


@pytest.fixture(scope="module")
def calibrated() -> Iterator[LiteLLMEmulator]:
    with LiteLLMEmulator(master_key=EMULATOR_KEY, cost=CostModel.calibrated()) as emulator:
        yield emulator


async def _measure(base_url: str, key: str) -> tuple[dict[str, float], dict[int, int]]:
    """Seconds for each scenario, and how many members each team (by number) ended up with."""
    tag = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=120) as http:
        counter = iter(range(10**6))

        async def bulk(users: int, teams: list[list[str]]) -> float:
            rows = [{"user_id": f"cal-{tag}-{n}", "user_email": f"cal-{tag}-{n}@example.com",
                     "auto_create_key": False, "teams": teams[i % len(teams)]}
                    for i, n in ((i, next(counter)) for i in range(users))]
            start = time.perf_counter()
            answer = await http.post("/management/v1/users/bulk", json={"users": rows})
            assert answer.status_code == 200 and answer.json()["meta"]["failed"] == 0, answer.text[:300]
            return time.perf_counter() - start

        team_ids = [f"cal-{tag}-t{i}" for i in range(TEAMS)]
        for team_id in team_ids:  # one at a time: a busy proxy's /team/new outlives its 5 s transaction
            for _ in range(3):
                made = await http.post("/team/new", json={"team_id": team_id})
                if made.status_code != 500:
                    break
            assert made.status_code == 200 or "already exists" in made.text, made.text[:300]
        one, small = team_ids[0], team_ids[1:]
        figures = {"300 users into one empty team": await bulk(300, [[one]]),
                   "100 users, each into 2 of 10 small teams":
                       await bulk(100, [[small[i % 10], small[(i + 3) % 10]] for i in range(10)])}
        start = time.perf_counter()
        times = await asyncio.gather(*(bulk(50, [[one]]) for _ in range(4)))
        figures["4 requests of 50 at once into that team (300 members)"] = time.perf_counter() - start
        figures["  of which the fastest request"] = min(times)
        rosters = {}
        for n, team_id in enumerate(team_ids):
            info = (await http.get("/team/info", params={"team_id": team_id})).raise_for_status().json()
            rosters[n] = sum(m["role"] == "user" for m in info["team_info"]["members_with_roles"])
        # what the real proxy keeps, it does not keep for long: the users, then the teams
        created = [f"cal-{tag}-{n}" for n in range(next(counter))]
        for i in range(0, len(created), 500):
            await http.post("/management/v1/users/bulk_delete", json={"user_ids": created[i:i + 500]})
        await http.post("/team/delete", json={"team_ids": team_ids})
        return figures, rosters


def _overlapping(charges: list[TeamCharge]) -> list[tuple[TeamCharge, TeamCharge]]:
    ordered = sorted(charges, key=lambda c: c.held[0])
    return [(a, b) for a, b in itertools.pairwise(ordered) if b.held[0] < a.held[1]]


def test_the_emulator_charges_what_the_real_proxy_does(real: tuple[str, str], calibrated: LiteLLMEmulator,
                                                       record_property) -> None:
    (real_s, real_rosters) = asyncio.run(_measure(*real))
    (model_s, model_rosters) = asyncio.run(_measure(calibrated.base_url, EMULATOR_KEY))
    record_property("summary", "calibration (seconds, real proxy / emulator with the cost model): " + "; ".join(
        f"{name.strip()}: {real_s[name]:.2f} / {model_s[name]:.2f}" for name in real_s))

    # The model's inputs are the proxy's: the same requests leave the same rosters.
    assert model_rosters == real_rosters == {0: 500, **{n: 20 for n in range(1, TEAMS)}}

    assert calibrated.costs is not None
    ledger, cost = calibrated.costs.ledger, calibrated.costs.model.bulk_create
    for charge in ledger:  # the model's price, to the charge
        assert math.isclose(charge.seconds, cost.per_team + cost.per_added * charge.added
                            + cost.per_present * charge.present), charge
    by_team: dict[str, list[TeamCharge]] = defaultdict(list)
    for charge in ledger:
        by_team[charge.team_id].append(charge)
    # every membership charged once, and one team's writes one at a time
    assert sorted(sum(c.added for c in cs) for cs in by_team.values()) == sorted(model_rosters.values())
    assert not any(_overlapping(charges) for charges in by_team.values()), "two writes held one team's lock at once"
    assert max(len(cs) for cs in by_team.values()) == 5  # the big team: one write, then four queued

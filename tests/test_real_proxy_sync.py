"""The full sync (CLI apply) from a Graph emulator tenant into a REAL LiteLLM proxy.

Runs when LITELLM_CONTRACT_URL and LITELLM_CONTRACT_KEY are set (CI starts the proxy with
../shared/litellm/up.sh); skipped with a reason otherwise, and a failure in CI. Every id is fresh
per run because the proxy's database outlives the test.

Three ways in: the bulk routes (SYNC_LITELLM_BULK=auto on a proxy that has them), the per-call
routes (=off, a smaller tenant: the path, not the volume), and auto against an older proxy
without the bulk routes (LITELLM_OLDER_URL, LiteLLM 1.80.0 in CI), which must fall back.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from emulators.graph import GraphEmulator, Tenant
from tests.conftest import GRAPH_TOKEN, run_cli
from tests.expectations import LiteLLMReadback, assert_in_sync, expected_state
from tests.real_proxies import real_proxy
from tests.tenants import oid, small_tenant


@dataclass(frozen=True)
class Mode:
    name: str
    lane: str  # tests/real_proxies.py
    bulk: str  # SYNC_LITELLM_BULK
    big_group: int  # members of the "Everyone" group
    bulk_routes: bool  # whether this run must write through the bulk routes


MODES = [
    # Several chunks with a remainder on every path: users are created 100 to a request (the
    # setting's full 500 and the proxy's queue at that size: tests/test_real_proxy_bulk_queue.py),
    # and member_add goes in chunks of 50.
    Mode("bulk", "volume", "auto", 230, True),
    Mode("per-call", "runs", "off", 60, False),
    Mode("older proxy", "older", "auto", 60, False),
]

# The modes may run in parallel on one proxy: each run serves an app of its own, and a sync never
# orphans the teams another app's sync manages. Slow: scheduled first.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=[pytest.param(m, id=m.name, marks=pytest.mark.litellm_real(lane=m.lane))
                                        for m in MODES])
def mode(request: pytest.FixtureRequest) -> Mode:
    return request.param


@pytest.fixture(scope="module")
def proxy(mode: Mode) -> tuple[str, str]:
    return real_proxy(mode.lane)


@pytest.fixture(scope="module")
def world(mode: Mode, proxy: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    salt = uuid.uuid4().hex[:8]
    document = small_tenant(big_group_size=mode.big_group, salt=salt)
    # An app of its own per run: the proxy keeps earlier runs' users, which must not be this run's
    # leavers (the user marker names the app).
    app_id = oid("app", salt)
    document["service_principal"]["appId"] = app_id
    tenant = Tenant.from_dict(document)
    with GraphEmulator(tenant, token=GRAPH_TOKEN) as graph:
        env = {"LITELLM_BASE_URL": proxy[0], "LITELLM_MASTER_KEY": proxy[1], "ENTRA_APP_ID": app_id,
               "GRAPH_BASE_URL": graph.base_url, "GRAPH_ACCESS_TOKEN": GRAPH_TOKEN,
               "DEFAULT_TEAM_PARAMS": '{"max_budget": 42, "budget_duration": "30d"}',
               "DEFAULT_INTERNAL_USER_PARAMS": '{"max_budget": 7}',
               "SYNC_MAX_REMOVALS": "5000", "SYNC_MAX_REMOVAL_PERCENT": "100",
               "SYNC_LITELLM_BULK": mode.bulk, "SYNC_USER_CREATE_CHUNK": "100", "SYNC_MEMBER_ADD_CHUNK": "50"}
        cwd = os.getcwd()
        os.chdir(tmp_path_factory.mktemp("real-proxy"))
        readback = LiteLLMReadback(proxy[0], proxy[1])
        try:
            yield env, graph, document, salt, readback
        finally:
            os.chdir(cwd)
            readback.forget([u["id"] for u in document["users"]], [g["id"] for g in document["groups"]])


def assert_routes(report: dict, mode: Mode, *, wrote_users: bool, removed: bool, updated_users: bool = False) -> None:
    """The routes the run took: bulk where the mode wants them, the per-call ones otherwise. User
    updates go through /user/bulk_update unless SYNC_LITELLM_BULK=off (both proxies have it)."""
    calls, bulk = report["stats"]["litellm_calls"], report["stats"]["litellm_bulk"]
    assert bulk["setting"] == mode.bulk
    # asked at most once, and only by a run whose writes needed to know
    assert calls.get("GET /management/v1/users/bulk", 0) == (mode.bulk == "auto")
    assert bulk["offered"] is (None if mode.bulk == "off" else mode.bulk_routes)
    per_call = {"POST /user/new": wrote_users, "POST /team/member_delete": removed}
    by_bulk = {"POST /management/v1/users/bulk": wrote_users,
               "POST /management/v1/teams/{team_id}/members/bulk_delete": removed}
    used, unused = (by_bulk, per_call) if mode.bulk_routes else (per_call, by_bulk)
    assert all(route in calls for route, wanted in used.items() if wanted), calls
    assert not any(route in calls for route in unused), calls
    updates, not_used = ("POST /user/update", "POST /user/bulk_update")[::1 if mode.bulk == "off" else -1]
    assert (updates in calls, not_used in calls) == (updated_users, False), calls


def test_full_sync_into_the_real_proxy(mode: Mode, world) -> None:
    env, graph, document, salt, readback = world
    hand_made = f"hand-made-{salt}"
    readback._http.post("/team/new", json={"team_id": hand_made, "team_alias": "Engineering",
                                            "members_with_roles": []}).raise_for_status()

    started = time.monotonic()
    first = run_cli(env, "apply", "--json")
    initial_seconds = time.monotonic() - started
    assert first.code == 0, first.out[-3000:] + first.err
    assert first.json()["summary"]["failed"] == 0
    assert_routes(first.json(), mode, wrote_users=True, removed=False)
    assert_in_sync(expected_state(document), readback)
    teams = readback.teams({oid("Engineering", salt), hand_made})
    users = readback.users({oid("eng0", salt)})
    assert teams[oid("Engineering", salt)]["max_budget"] == 42  # default_team_params applied
    assert users[oid("eng0", salt)]["max_budget"] == 7  # default_internal_user_params applied
    assert readback.user_members(teams[hand_made]) == set()  # the hand-made team is untouched
    assert teams[hand_made]["metadata"] == {}

    tenant = graph.tenant
    tenant.remove_member(oid("Engineering", salt), oid("eng0", salt))  # leave
    tenant.add_member(oid("Operations", salt), oid("eng1", salt))  # join
    tenant.rename_group(oid("Operations", salt), f"Ops {salt}")  # rename
    tenant.disable_user(oid("eng2", salt))  # disabled account
    tenant.unassign(oid("Everyone", salt))  # unassign
    second = run_cli(env, "apply", "--json")
    assert second.code == 0, second.err
    # Counted on this tenant's teams (other tests' teams in the shared proxy are not ours to touch).
    ours = {g["id"] for g in document["groups"]}
    done = Counter(a["type"] for a in second.json()["actions"] if a.get("team_id") in ours)
    assert not any(a.get("team_id") not in ours for a in second.json()["actions"] if "team_id" in a)
    assert (done["remove_member"], done["add_member"], done["rename_team"], done["block_team"]) == (2, 1, 1, 1)
    assert_routes(second.json(), mode, wrote_users=False, removed=True, updated_users=True)  # the leaver's record
    teams = readback.teams(ours)
    engineering = readback.user_members(teams[oid("Engineering", salt)])
    assert oid("eng0", salt) not in engineering and oid("eng2", salt) not in engineering
    assert oid("eng1", salt) in readback.user_members(teams[oid("Operations", salt)])
    assert teams[oid("Operations", salt)]["team_alias"] == f"Ops {salt}"
    assert teams[oid("Everyone", salt)]["blocked"] is True

    third = run_cli(env, "apply", "--json")
    assert third.code == 0
    report = third.json()
    assert report["actions"] == [] and report["stats"]["litellm_write_calls"] == 0
    # Incremental on both sides: Graph by delta, LiteLLM by its team list, one lookup by id (the
    # user assigned directly is in no team) and the users holding an admin role (one listing per
    # role), where a full read lists every user the proxy holds.
    assert (report["stats"]["graph_read"], report["stats"]["litellm_read"]) == ("incremental", "targeted")
    # Reads only; how many pages depends on what tests sharing the proxy wrote meanwhile (a targeted
    # read looks users up by id and lists the holders of an admin role, never every user), and the
    # keys made since the last run, newest first (a leaver's new key is blocked within one run).
    assert set(report["stats"]["litellm_calls"]) == {"GET /v2/team/list", "GET /user/list", "GET /key/list"}
    print(f"\nreal proxy ({mode.name}), later runs: {second.json()['stats']}; {report['stats']}")
    print(f"\nreal proxy ({mode.name}): initial sync of {len(document['users'])} users in {initial_seconds:.1f}s; "
          f"calls {first.json()['stats']['litellm_calls']}")

"""The full sync (CLI apply) from a Graph emulator tenant into a REAL LiteLLM proxy.

Runs when LITELLM_CONTRACT_URL and LITELLM_CONTRACT_KEY are set (CI starts the proxy with
../shared/litellm/up.sh); skipped with a reason otherwise, and a failure in CI. Every id is fresh
per run because the proxy's database outlives the test.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest

from emulators.graph import GraphEmulator, Tenant
from tests.conftest import GRAPH_TOKEN, run_cli
from tests.expectations import LiteLLMReadback, assert_in_sync, expected_state
from tests.tenants import oid, small_tenant

URL, KEY = os.environ.get("LITELLM_CONTRACT_URL"), os.environ.get("LITELLM_CONTRACT_KEY")
BIG_GROUP = 1100  # > 1,000 members: member_add is chunked for real

pytestmark = pytest.mark.litellm_real


@pytest.fixture(scope="module")
def proxy() -> tuple[str, str]:
    if not (URL and KEY):
        if os.environ.get("CI"):
            pytest.fail("CI must run against the real LiteLLM proxy: LITELLM_CONTRACT_URL/KEY are not set")
        pytest.skip("set LITELLM_CONTRACT_URL and LITELLM_CONTRACT_KEY to run against a real LiteLLM proxy")
    return URL, KEY


@pytest.fixture(scope="module")
def world(proxy: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    salt = uuid.uuid4().hex[:8]
    document = small_tenant(big_group_size=BIG_GROUP, salt=salt)
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
               "SYNC_MAX_REMOVALS": "5000", "SYNC_MAX_REMOVAL_PERCENT": "100"}
        cwd = os.getcwd()
        os.chdir(tmp_path_factory.mktemp("real-proxy"))
        try:
            yield env, graph, document, salt, LiteLLMReadback(proxy[0], proxy[1])
        finally:
            os.chdir(cwd)


def test_full_sync_into_the_real_proxy(world) -> None:
    env, graph, document, salt, readback = world
    hand_made = f"hand-made-{salt}"
    readback._http.post("/team/new", json={"team_id": hand_made, "team_alias": "Engineering",
                                            "members_with_roles": []}).raise_for_status()

    started = time.monotonic()
    first = run_cli(env, "apply", "--json")
    initial_seconds = time.monotonic() - started
    assert first.code == 0, first.out[-3000:] + first.err
    assert first.json()["summary"]["failed"] == 0
    assert_in_sync(expected_state(document), readback)
    teams, users = readback.teams(), readback.users()
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
    summary = second.json()["summary"]
    assert (summary["members_removed"], summary["members_added"], summary["teams_renamed"],
            summary["teams_blocked"]) == (2, 1, 1, 1)
    teams = readback.teams()
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
    assert report["stats"]["litellm_calls"] == {"GET /v2/team/list": 1, "GET /user/list": 3}
    print(f"\nreal proxy, later runs: {second.json()['stats']}; {report['stats']}")
    print(f"\nreal proxy: initial sync of {len(document['users'])} users in {initial_seconds:.1f}s; "
          f"calls {first.json()['stats']['litellm_calls']}")

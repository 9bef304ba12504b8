"""Hostile directory data, end to end through both emulators: each case is a tenant quirk and
what LiteLLM must look like afterwards. (Planner-level cases: tests/test_planner.py; paging,
404s and polymorphic members: tests/test_graph_reader.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from emulators.graph import GraphEmulator, Tenant
from emulators.litellm import LiteLLMEmulator
from tests.conftest import GRAPH_TOKEN, MASTER_KEY, run_cli, sync_env
from tests.expectations import LiteLLMReadback, assert_in_sync, expected_state
from tests.tenants import APP_ID, oid

HUGE_GROUP = 20_000


def tenant_with(users: list[dict[str, Any]], groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {"tenant_id": oid("t"), "service_principal": {"id": oid("sp"), "appId": APP_ID, "displayName": "LiteLLM"},
            "users": users, "groups": groups, "devices": [], "contacts": [], "service_principals": [],
            "assignments": [{"principalId": g["id"], "principalType": "Group"} for g in groups]}


def person(name: str, **props: Any) -> dict[str, Any]:
    return {"id": oid(name), "displayName": name, "userPrincipalName": f"{name}@contoso.com", "mail": f"{name}@contoso.com",
            "accountEnabled": True, "userType": "Member", **props}


def unicode_names() -> dict[str, Any]:
    names = ["Équipe données 🚀", "فريق البيانات", "データ チーム", "x" * 256, "Team \"quotes\" & <tags>", "  spaces  "]
    users = [person(f"u{i}", displayName=n) for i, n in enumerate(names)]
    return tenant_with(users, [{"id": oid(f"g{i}"), "displayName": n, "members": [oid(f"u{i}")]}
                               for i, n in enumerate(names)])


def one_user_in_many_groups() -> dict[str, Any]:
    return tenant_with([person("busy")], [{"id": oid(f"g{i}"), "displayName": f"Group {i}", "members": [oid("busy")]}
                                          for i in range(300)])


def huge_group() -> dict[str, Any]:
    users = [person(f"p{i}") for i in range(HUGE_GROUP)]
    return tenant_with(users, [{"id": oid("huge"), "displayName": "Everyone", "members": [u["id"] for u in users]}])


huge_group.existing_users = True  # as after SSO logins: the run reads 20,000 members and adds them in chunks


def odd_identities() -> dict[str, Any]:
    users = [person("nomail", mail=None), person("UPPER", userPrincipalName="Mixed.Case@Contoso.COM"),
             person("guest", userPrincipalName="bob_gmail.com#EXT#@contoso.onmicrosoft.com", mail="bob@gmail.com",
                    userType="Guest")]
    return tenant_with(users, [{"id": oid("g"), "displayName": "Odd", "members": [u["id"] for u in users]}])


CASES = {"unicode and very long names": unicode_names, "a user in 300 groups": one_user_in_many_groups,
         # seconds of CPU: marked slow so that it is scheduled first (tests/conftest.py)
         f"a group of {HUGE_GROUP} members": pytest.param(huge_group, marks=pytest.mark.slow),
         "users without mail, mixed case, guests": odd_identities}


@pytest.mark.parametrize("make", CASES.values(), ids=CASES.keys())
def test_hostile_tenant_syncs_and_converges(make, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    document = make()
    with GraphEmulator(Tenant.from_dict(document), token=GRAPH_TOKEN) as graph, \
            LiteLLMEmulator(master_key=MASTER_KEY) as lite:
        if getattr(make, "existing_users", False):
            for user in document["users"]:
                lite.state.seed_user(user["id"], user["userPrincipalName"].lower())
        # member_add answers with the whole team (as the proxy does): the largest chunk the sync
        # allows makes the fewest of those answers, each of up to 20,000 members
        env = sync_env(graph.base_url, lite.base_url, SYNC_LITELLM_CONCURRENCY="16", SYNC_MEMBER_ADD_CHUNK="500")
        first = run_cli(env, "apply", "--json")
        assert first.code == 0, first.err
        assert first.json()["summary"]["failed"] == 0
        assert_in_sync(expected_state(document), LiteLLMReadback(lite.base_url, MASTER_KEY))
        assert run_cli(env, "apply", "--json").json()["actions"] == []


def test_a_group_named_like_an_unmanaged_team_leaves_that_team_alone(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    document = tenant_with([person("a")], [{"id": oid("g"), "displayName": "Finance", "members": [oid("a")]}])
    with GraphEmulator(Tenant.from_dict(document), token=GRAPH_TOKEN) as graph, \
            LiteLLMEmulator(master_key=MASTER_KEY) as lite:
        lite.state.seed_team("finance-by-hand", "Finance", members=[{"user_id": "cfo", "role": "user"}])
        assert run_cli(sync_env(graph.base_url, lite.base_url), "apply").code == 0
        teams = LiteLLMReadback(lite.base_url, MASTER_KEY).teams()
        assert [m["user_id"] for m in teams["finance-by-hand"]["members_with_roles"]] == ["cfo"]
        assert teams[oid("g")]["team_alias"] == "Finance"

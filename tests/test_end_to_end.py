"""The CLI end to end: the real msgraph-sdk and httpx clients against both emulators over HTTP."""

from __future__ import annotations

from emulators.graph import GraphEmulator
from emulators.http_base import Fault, ScriptedFaults
from emulators.litellm import LiteLLMEmulator
from tests.conftest import MASTER_KEY, run_cli
from tests.expectations import LiteLLMReadback, assert_in_sync, expected_state
from tests.tenants import oid, small_tenant


def posts(lite: LiteLLMEmulator) -> int:
    return len(lite.server.requests(["POST"]))


def test_plan_changes_nothing_and_lists_every_action(env, lite: LiteLLMEmulator) -> None:
    result = run_cli(env, "plan")
    assert result.code == 0, result.err
    assert posts(lite) == 0
    assert f"create team 'Engineering' ({oid('Engineering')})" in result.out
    assert "add nested0@contoso.com" in result.out  # nested group flattened
    assert "disabled@contoso.com" not in result.out
    assert oid("Unassigned") not in result.out


def test_apply_converges_and_a_second_apply_writes_nothing(env, lite: LiteLLMEmulator) -> None:
    lite.state.seed_team("hand-made", "Engineering", members=[{"user_id": "someone", "role": "user"}])
    first = run_cli(env, "apply", "--json")
    assert first.code == 0, first.err
    report = first.json()
    assert report["dry_run"] is False
    assert report["summary"]["teams_created"] == 3 and report["summary"]["failed"] == 0
    readback = LiteLLMReadback(lite.base_url, MASTER_KEY)
    assert_in_sync(expected_state(small_tenant()), readback)
    users = readback.users()
    assert users[oid("guest")]["user_email"] == "alice_fabrikam.com#ext#@contoso.onmicrosoft.com"
    assert oid("disabled") not in users
    assert users[oid("nomail")]["user_email"] == "nomail@contoso.com"  # no mail: the UPN still identifies them
    assert oid("direct") in users  # assigned to the app directly: a user, no team
    hand_made = readback.teams()["hand-made"]
    assert readback.user_members(hand_made) == {"someone"} and hand_made["team_alias"] == "Engineering"

    before = posts(lite)
    second = run_cli(env, "apply", "--json")
    assert second.code == 0
    assert posts(lite) == before, "a run with nothing to do must make no write calls"
    assert second.json()["actions"] == []


def test_changes_in_the_tenant_follow(env, graph: GraphEmulator, lite: LiteLLMEmulator) -> None:
    assert run_cli(env, "apply").code == 0
    tenant = graph.tenant
    tenant.remove_member(oid("Engineering"), oid("eng0"))
    tenant.add_member(oid("Operations"), oid("eng1"))
    tenant.rename_group(oid("Operations"), "Ops & SRE")
    tenant.disable_user(oid("eng2"))
    tenant.unassign(oid("Everyone"))

    plan = run_cli(env, "plan")
    assert plan.code == 3  # 150 memberships lost with Everyone, and 150 leavers: the breaker holds
    assert "remove eng0@contoso.com from team 'Engineering'" in plan.out
    assert "block 0 key(s) of eng2@contoso.com (disabled)" in plan.out
    assert "block 0 key(s) of big0@contoso.com (out of scope)" in plan.out
    assert f"rename team {oid('Operations')}: 'Operations' -> 'Ops & SRE'" in plan.out
    assert f"block team 'Everyone' ({oid('Everyone')})" in plan.out

    applied = run_cli(env, "apply", "--force", "--json")
    assert applied.code == 0, applied.err
    assert applied.json()["summary"]["users_blocked"] == 152  # Everyone's 150, eng0 and eng2
    teams = LiteLLMReadback(lite.base_url, MASTER_KEY).teams()
    engineering = {m["user_id"] for m in teams[oid("Engineering")]["members_with_roles"] if m["role"] == "user"}
    assert oid("eng0") not in engineering and oid("eng2") not in engineering and oid("eng3") in engineering
    assert teams[oid("Operations")]["team_alias"] == "Ops & SRE"
    assert teams[oid("Everyone")]["blocked"] is True

    tenant.assign(oid("Everyone"))
    again = run_cli(env, "apply", "--json").json()
    assert {a["type"] for a in again["actions"]} == {"unblock_team", "update_user"}
    assert again["summary"]["teams_unblocked"] == 1 and again["summary"]["users_unblocked"] == 150


def test_configuration_error_exits_2_before_any_call(env, lite: LiteLLMEmulator, graph: GraphEmulator) -> None:
    result = run_cli({**env, "DEFAULT_TEAM_PARAMS": '{"max_budgett": 5}'}, "apply")
    assert result.code == 2
    assert "DEFAULT_TEAM_PARAMS.max_budgett" in result.err
    assert lite.server.requests() == [] and graph.server.requests() == []


def test_defaults_apply_to_created_teams_and_users_only(env, lite: LiteLLMEmulator) -> None:
    lite.state.seed_team(oid("Operations"), "Operations", members=[])
    env = {**env, "DEFAULT_TEAM_PARAMS": '{"max_budget": 25, "models": ["gpt-4o-mini"]}',
           "DEFAULT_INTERNAL_USER_PARAMS": '{"max_budget": 3, "user_role": "internal_user_viewer"}'}
    assert run_cli(env, "apply").code == 0
    readback = LiteLLMReadback(lite.base_url, MASTER_KEY)
    teams, users = readback.teams(), readback.users()
    assert teams[oid("Engineering")]["max_budget"] == 25 and teams[oid("Engineering")]["models"] == ["gpt-4o-mini"]
    assert teams[oid("Operations")]["max_budget"] is None  # adopted, not created: defaults not applied
    assert users[oid("eng0")]["max_budget"] == 3 and users[oid("eng0")]["user_role"] == "internal_user_viewer"


def test_a_group_that_cannot_be_read_makes_the_run_exit_1_with_the_reason(
        env, graph: GraphEmulator, lite: LiteLLMEmulator) -> None:
    graph.server.faults = ScriptedFaults().add("GET", f"/groups/{oid('Operations')}/", Fault("status", 500), 20)
    result = run_cli(env, "apply", "--json")
    report = result.json()
    assert result.code == 1
    assert report["complete"] is False and report["summary"]["failed"] == 0
    (reason,) = report["attention"]
    assert f"group 'Operations' ({oid('Operations')}) could not be read" in reason
    operations = LiteLLMReadback(lite.base_url, MASTER_KEY).teams()[oid("Operations")]
    assert [m for m in operations["members_with_roles"] if m["role"] == "user"] == []  # unknown is not empty
    graph.server.faults = ScriptedFaults()
    clean = run_cli(env, "apply", "--json")
    assert (clean.code, clean.json()["complete"], clean.json()["attention"]) == (0, True, [])

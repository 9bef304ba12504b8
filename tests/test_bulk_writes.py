"""LiteLLM's bulk routes (SYNC_LITELLM_BULK) end to end: the CLI against the Graph emulator and a
LiteLLM emulator with the bulk routes, or without them as an older proxy is."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulators.graph import GraphEmulator
from emulators.http_base import Fault, ScriptedFaults
from emulators.litellm import LiteLLMEmulator
from sync_core.bulk_create import ROUNDS, by_shared_teams
from tests.conftest import MASTER_KEY, run_cli, sync_env
from tests.expectations import LiteLLMReadback, assert_in_sync, expected_state
from tests.tenants import oid, small_tenant

BULK_CREATE = "POST /management/v1/users/bulk"
BULK_DELETE = "POST /management/v1/teams/{team_id}/members/bulk_delete"
PROBE = "GET /management/v1/users/bulk"
USERS = 163  # the small tenant's users the sync creates (150 in the big group, 13 others)


@pytest.fixture
def older() -> Iterator[LiteLLMEmulator]:
    with LiteLLMEmulator(master_key=MASTER_KEY, bulk_routes=False) as emulator:
        yield emulator


def routes(lite: LiteLLMEmulator) -> Counter[str]:
    """What the emulator received, by route (bulk_delete's team id folded into its template)."""
    def route(path: str) -> str:
        parts = path.split("/")
        if path.startswith("/management/v1/teams/"):
            parts[4] = "{team_id}"
        return "/".join(parts)
    return Counter(f"{r.method} {route(r.path)}" for r in lite.server.requests())


def in_sync(lite: LiteLLMEmulator) -> None:
    assert_in_sync(expected_state(small_tenant()), LiteLLMReadback(lite.base_url, MASTER_KEY))


def leave_and_apply(env: dict, graph: GraphEmulator, *names: str) -> dict:
    for name in names:
        graph.tenant.remove_member(oid("Engineering"), oid(name))
    result = run_cli(env, "apply", "--json")
    assert result.code == 0, result.out[-2000:] + result.err
    return result.json()


def test_auto_creates_users_in_bulk_with_their_teams(env, graph: GraphEmulator, lite: LiteLLMEmulator) -> None:
    first = run_cli({**env, "SYNC_USER_CREATE_CHUNK": "50"}, "apply", "--json")
    assert first.code == 0, first.err
    report = first.json()
    in_sync(lite)
    calls = routes(lite)
    # 163 users in 4 requests with their memberships; nobody left for member_add, one probe
    assert (calls[BULK_CREATE], calls["POST /user/new"], calls["POST /team/member_add"], calls[PROBE]) == (4, 0, 0, 1)
    assert report["stats"]["litellm_bulk"] == {"setting": "auto", "offered": True}
    assert report["stats"]["litellm_calls"][BULK_CREATE] == 4
    # one action per user and per membership, each with its own outcome
    memberships = sum(len(members) for members in expected_state(small_tenant()).members.values())
    assert (report["summary"]["users_created"], report["summary"]["members_added"]) == (USERS, memberships)
    assert {a["outcome"] for a in report["actions"]} == {"applied"}

    lite.server.clear_log()
    removed = leave_and_apply({**env, "SYNC_MEMBER_DELETE_CHUNK": "2"}, graph, "eng0", "eng1", "eng3")
    assert removed["summary"]["members_removed"] == 3
    assert routes(lite)[BULK_DELETE] == 2 and routes(lite)["POST /team/member_delete"] == 0  # 3 rows, chunks of 2
    engineering = LiteLLMReadback(lite.base_url, MASTER_KEY).teams()[oid("Engineering")]
    assert {oid("eng0"), oid("eng1"), oid("eng3")}.isdisjoint({m["user_id"] for m in engineering["members_with_roles"]})


def test_auto_falls_back_to_per_call_writes_on_an_older_proxy(graph: GraphEmulator, older: LiteLLMEmulator,
                                                              tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = sync_env(graph.base_url, older.base_url)
    first = run_cli(env, "apply", "--json")
    assert first.code == 0, first.err
    in_sync(older)
    calls = routes(older)
    assert (calls[PROBE], calls["POST /user/new"], calls[BULK_CREATE]) == (1, USERS, 0)
    assert first.json()["stats"]["litellm_bulk"] == {"setting": "auto", "offered": False}
    older.server.clear_log()
    leave_and_apply(env, graph, "eng0", "eng1")
    assert (routes(older)[PROBE], routes(older)["POST /team/member_delete"]) == (1, 2)


def test_off_never_asks_and_writes_per_call(env, lite: LiteLLMEmulator) -> None:
    result = run_cli({**env, "SYNC_LITELLM_BULK": "off"}, "apply", "--json")
    assert result.code == 0, result.err
    in_sync(lite)
    calls = routes(lite)
    assert (calls[PROBE], calls[BULK_CREATE], calls["POST /user/new"]) == (0, 0, USERS)
    assert result.json()["stats"]["litellm_bulk"] == {"setting": "off", "offered": None}


def test_no_probe_for_a_dry_run_or_a_run_without_writes(env, lite: LiteLLMEmulator) -> None:
    assert run_cli(env, "plan").code == 0
    assert routes(lite)[PROBE] == 0
    assert run_cli(env, "apply").code == 0
    lite.server.clear_log()
    again = run_cli(env, "apply", "--json")
    assert again.json()["stats"]["litellm_bulk"]["offered"] is None and routes(lite)[PROBE] == 0


def test_on_uses_the_bulk_routes_without_asking(env, graph: GraphEmulator, older: LiteLLMEmulator) -> None:
    """On a proxy without them, "on" fails the creations (404) and skips what depended on them."""
    env = {**env, "LITELLM_BASE_URL": older.base_url, "SYNC_LITELLM_BULK": "on"}
    result = run_cli(env, "apply", "--json")
    assert result.code == 1
    actions = result.json()["actions"]
    creates = [a for a in actions if a["type"] == "create_user"]
    assert {a["outcome"] for a in creates} == {"failed"}
    assert creates[0]["error"].startswith(f"{BULK_CREATE} -> 404")
    adds = [a for a in actions if a["type"] == "add_member"]
    assert {(a["outcome"], a["error"]) for a in adds} == {("skipped", "not attempted: creating the user failed")}
    assert routes(older)[PROBE] == 0 and routes(older)["POST /user/new"] == 0


def test_a_failed_row_fails_only_its_user_and_what_depends_on_it(env, lite: LiteLLMEmulator) -> None:
    lite.bulk.row_fault = lambda user_id: "insert failed: disk full" if user_id == oid("eng0") else None
    result = run_cli(env, "apply", "--json")
    assert result.code == 1
    by_outcome = Counter((a["type"], a["outcome"]) for a in result.json()["actions"])
    assert by_outcome[("create_user", "failed")] == 1 and by_outcome[("create_user", "applied")] == USERS - 1
    assert by_outcome[("add_member", "skipped")] == 1  # eng0 is in one team
    failed = next(a for a in result.json()["actions"] if a["outcome"] == "failed")
    assert (failed["user_id"], failed["error"]) == (oid("eng0"), f"{BULK_CREATE} -> row: insert failed: disk full")

    lite.bulk.row_fault = None
    again = run_cli(env, "apply", "--json")
    assert again.code == 0 and again.json()["summary"]["users_created"] == 1
    in_sync(lite)


@pytest.mark.parametrize(("fault", "requests"), [
    (Fault("status", 500, committed=True), 2), (Fault("drop", committed=True), 1),
    (Fault("hang", seconds=1.5, committed=True), 1), (Fault("drop"), 2)],
    ids=["500 after commit", "reset after commit", "timeout after commit", "reset before"])
def test_a_bulk_creation_whose_answer_is_lost_converges_in_the_same_run(env, lite: LiteLLMEmulator,
                                                                       fault: Fault, requests: int) -> None:
    lite.server.faults = ScriptedFaults().add("POST", "^/management/v1/users/bulk$", fault)
    result = run_cli({**env, "SYNC_LITELLM_BULK_TIMEOUT_SECONDS": "1"}, "apply", "--json")
    assert result.code == 0, result.out[-2000:]
    report = result.json()
    # A 500 is an answer: retried, its users come back "already exists". A lost answer is never
    # sent again as it was: the users are read back by id and only the absent ones go out again.
    assert report["stats"]["litellm_calls"][BULK_CREATE] == requests
    assert report["stats"]["litellm_lost"].get(BULK_CREATE, 0) == (fault.kind != "status")
    assert report["summary"]["users_created"] == USERS and {a["outcome"] for a in report["actions"]} == {"applied"}
    in_sync(lite)
    # users the lost request did create are done, their memberships unknown, so member_add makes
    # sure of them (it skips members already there)
    assert ("POST /team/member_add" in report["stats"]["litellm_calls"]) is fault.committed


def test_a_bulk_removal_retried_after_a_lost_answer_converges(env, graph: GraphEmulator,
                                                             lite: LiteLLMEmulator) -> None:
    assert run_cli(env, "apply").code == 0
    lite.server.faults = ScriptedFaults().add("POST", "/members/bulk_delete$", Fault("status", 500, committed=True))
    report = leave_and_apply(env, graph, "eng0", "eng1")
    assert report["summary"]["members_removed"] == 2 and routes(lite)[BULK_DELETE] == 2
    in_sync_after_leaving = LiteLLMReadback(lite.base_url, MASTER_KEY).teams()[oid("Engineering")]
    assert {oid("eng0"), oid("eng1")}.isdisjoint({m["user_id"] for m in in_sync_after_leaving["members_with_roles"]})


def test_bulk_writes_adopt_an_email_match_in_the_same_run(env, lite: LiteLLMEmulator) -> None:
    # eng0 signed in once before the sync (another id, the e-mail in another letter case)
    lite.state.seed_user("sso-eng0", "ENG0@Contoso.com")
    first = run_cli({**env, "SYNC_LITELLM_BULK": "on"}, "apply", "--json")
    assert first.code == 0, first.out[-2000:] + first.err
    report = first.json()
    adopted = [a for a in report["actions"] if a["type"] == "update_user" and a["user_id"] == "sso-eng0"]
    assert [a["outcome"] for a in adopted] == ["applied"] and report["complete"]
    assert not [a for a in report["actions"] if a["outcome"] == "planned"]
    again = run_cli({**env, "SYNC_LITELLM_BULK": "on"}, "apply", "--json").json()
    assert again["actions"] == [] and again["stats"]["litellm_write_calls"] == 0


def test_a_return_is_applied_in_a_run_that_also_creates_users_in_bulk(env, graph: GraphEmulator,
                                                                      lite: LiteLLMEmulator) -> None:
    # User updates share the user creations' phase: the bulk creation must not leave them behind.
    assert run_cli(env, "apply").code == 0
    secret, _ = lite.state.generate_key(oid("eng1"), None)
    graph.tenant.disable_user(oid("eng1"))
    assert leave_and_apply(env, graph)["summary"]["users_blocked"] == 1
    graph.tenant.enable_user(oid("eng1"))
    graph.tenant.add_member(oid("Operations"), oid("disabled"))
    graph.tenant.enable_user(oid("disabled"))  # a newcomer: created in bulk
    report = leave_and_apply(env, graph)
    assert (report["summary"]["users_created"], report["summary"]["users_unblocked"]) == (1, 1), report["actions"]
    assert not lite.state.key_blocked(secret)


def test_a_chunk_whose_answers_stay_lost_fails_after_its_rounds_and_the_next_run_creates_it(
        env, lite: LiteLLMEmulator) -> None:
    # every answer lost before the proxy got to it: each round finds nobody in and sends all again
    lite.server.faults = ScriptedFaults().add("POST", "^/management/v1/users/bulk$", Fault("drop"), times=ROUNDS)
    result = run_cli(env, "apply", "--json")
    assert result.code == 1
    report = result.json()
    assert report["stats"]["litellm_calls"][BULK_CREATE] == ROUNDS
    assert Counter(a["outcome"] for a in report["actions"] if a["type"] == "create_user") == {"failed": USERS}
    assert run_cli(env, "apply").code == 0
    in_sync(lite)


TEAMS_OF = {"ann": ["big", "a"], "bob": ["big", "b"], "cy": ["big", "a"], "dee": [], "eve": ["b"], "fay": ["big"]}


def test_users_go_out_with_their_smallest_team_smallest_first() -> None:
    # a: 2 joiners, b: 2, big: 4; ties by team id: a before b
    assert by_shared_teams(list(TEAMS_OF), TEAMS_OF.__getitem__) == ["ann", "cy", "bob", "eve", "fay", "dee"]


@given(st.dictionaries(st.text("uvwxyz", min_size=1, max_size=3),
                       st.lists(st.sampled_from("ABCDE"), max_size=3, unique=True), max_size=30))
def test_by_shared_teams_keeps_everyone_and_puts_each_teams_group_together(teams: dict[str, list[str]]) -> None:
    ordered = by_shared_teams(list(teams), teams.__getitem__)
    assert sorted(ordered) == sorted(teams)
    joiners = Counter(t for ts in teams.values() for t in ts)
    keys = [min(((joiners[t], t) for t in teams[u]), default=(len(teams) + 1, "")) for u in ordered]
    assert keys == sorted(keys)  # each smallest team's users stand together, smallest teams first


def test_a_member_list_that_outlives_the_proxys_transaction_is_added_in_halves(graph: GraphEmulator, tmp_path,
                                                                                monkeypatch) -> None:
    # The big group's 150 members in one member_add outlive the proxy's transaction (the emulator
    # fails any call linking more than 40, as a busy proxy fails long lists), whatever the retries.
    monkeypatch.chdir(tmp_path)
    with LiteLLMEmulator(master_key=MASTER_KEY, member_add_limit=40) as lite:
        env = sync_env(graph.base_url, lite.base_url, SYNC_LITELLM_BULK="off", SYNC_RETRY_BUDGET_SECONDS="0")
        result = run_cli(env, "apply", "--json")
        assert result.code == 0, result.out[-2000:] + result.err
        adds = [r for r in lite.server.requests() if r.path == "/team/member_add"]
        assert any(r.status == 500 for r in adds)  # the whole list was refused first
        in_sync(lite)

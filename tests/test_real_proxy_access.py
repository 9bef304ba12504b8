"""Leavers and roles end to end: the CLI from a tiny Graph emulator tenant into a REAL LiteLLM proxy.

Runs when LITELLM_CONTRACT_URL and LITELLM_CONTRACT_KEY are set (a failure in CI when not). One tenant
with fresh ids (the proxy's database outlives the test) and its own enterprise app serves the tests of
this module, in order: the first run reads everything, later runs read as production does between
full reads (Graph by delta, LiteLLM targeted), except where a test asks for a full read.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from emulators.graph import GraphEmulator, Tenant
from emulators.http_base import Fault, NoFaults, ScriptedFaults
from emulators.relay import Relay
from tests.conftest import GRAPH_TOKEN, CliRun, run_cli
from tests.proxy_http import proxy_client
from tests.real_proxies import real_proxy

ROLES = ["proxy_admin", "proxy_admin_viewer", "internal_user", "Reader"]  # Reader: not a LiteLLM role

pytestmark = [pytest.mark.litellm_real, pytest.mark.slow]


@dataclass
class World:
    """A tenant in the Graph emulator, the CLI's settings, and plain HTTP to the proxy."""

    salt: str
    graph: GraphEmulator
    env: dict[str, str]
    http: httpx.Client

    def id(self, name: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.{self.salt}.access.test"))

    def email(self, name: str) -> str:
        return f"{name}.{self.salt}@contoso.com"

    def run(self, *args: str, **settings: str) -> CliRun:
        return run_cli({**self.env, **settings}, *args)

    def apply(self, **settings: str) -> dict[str, Any]:
        result = self.run("apply", "--json", **settings)
        assert result.code == 0, result.out[-3000:] + result.err
        return result.json()

    def key(self, name: str, team: str | None = None) -> str:
        body = {"user_id": self.id(name), **({"team_id": self.id(team)} if team else {})}
        return self.http.post("/key/generate", json=body).raise_for_status().json()["token"]

    def keys(self, name: str) -> dict[str, bool]:
        """token -> blocked, of every key the person owns."""
        listing = self.http.get("/key/list", params={"user_id": self.id(name), "return_full_object": "true",
                                                     "size": 100}).raise_for_status().json()
        return {k["token"]: bool(k["blocked"]) for k in listing["keys"]}

    def user(self, name: str) -> dict[str, Any] | None:
        response = self.http.get("/user/info", params={"user_id": self.id(name)})
        return response.json()["user_info"] if response.status_code == 200 else None

    def app_role_id(self, value: str) -> str:
        return self.id(f"role-{value}")

    def role(self, name: str) -> str | None:
        row = self.user(name)
        return row["user_role"] if row else None


def tenant_document(world_id, email) -> dict[str, Any]:
    """Eng (default access): ann, bob, cat, dan. Ops (app role internal_user): eve, fay.
    Assigned directly: gus (proxy_admin), ann (proxy_admin_viewer, besides Eng)."""
    names = ["ann", "bob", "cat", "dan", "eve", "fay", "gus"]
    users = [{"id": world_id(n), "displayName": n.title(), "userPrincipalName": email(n), "mail": email(n),
              "accountEnabled": True, "userType": "Member"} for n in names]
    roles = [{"id": world_id(f"role-{v}"), "value": v, "displayName": v, "description": v,
              "allowedMemberTypes": ["User"], "isEnabled": True, "origin": "Application"} for v in ROLES]
    groups = [{"id": world_id("Eng"), "displayName": "Eng", "members": [world_id(n) for n in names[:4]]},
              {"id": world_id("Ops"), "displayName": "Ops", "members": [world_id("eve"), world_id("fay")]}]
    assignments = [{"principalId": world_id("Eng"), "principalType": "Group"},
                   {"principalId": world_id("Ops"), "principalType": "Group",
                    "appRoleId": world_id("role-internal_user")},
                   {"principalId": world_id("gus"), "principalType": "User", "appRoleId": world_id("role-proxy_admin")},
                   {"principalId": world_id("ann"), "principalType": "User",
                    "appRoleId": world_id("role-proxy_admin_viewer")}]
    return {"tenant_id": world_id("tenant"),
            "service_principal": {"id": world_id("sp"), "appId": world_id("app"), "displayName": "LiteLLM",
                                  "appRoles": roles},
            "users": users, "groups": groups, "assignments": assignments}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url, key = real_proxy()
    salt = uuid.uuid4().hex[:8]
    probe = World(salt, None, {}, None)  # type: ignore[arg-type]
    tenant = Tenant.from_dict(tenant_document(probe.id, probe.email))
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("access"))  # the CLI keeps its delta state in ./.sync-state
    with GraphEmulator(tenant, token=GRAPH_TOKEN) as graph, \
            proxy_client(url, key) as http:
        # An app of its own: the proxy also holds the users of every other test's tenant, which are
        # not this sync's (the marker names the app), so never its leavers. Other tests' teams are
        # kept (not blocked as orphans) for the same reason.
        env = {"LITELLM_BASE_URL": url, "LITELLM_MASTER_KEY": key, "ENTRA_APP_ID": probe.id("app"),
               "GRAPH_BASE_URL": graph.base_url, "GRAPH_ACCESS_TOKEN": GRAPH_TOKEN,
               "SYNC_ORPHANED_TEAM_ACTION": "keep", "SYNC_MAX_REMOVALS": "10", "SYNC_MAX_REMOVAL_PERCENT": "100",
               # the shared proxy may hold many users from other runs and be busy: full reads are slow
               "SYNC_HTTP_TIMEOUT_SECONDS": "120"}
        world = World(salt, graph, env, http)
        # A loaded proxy may fail a write past the sync's retries ("Transaction already closed" on
        # /team/new, seen here): the next run does what the first left, as the timer's would.
        for _ in range(3):
            first = world.run("apply", "--json")
            if first.code == 0:
                break
        assert first.code == 0, first.out[-3000:] + first.err
        assert all(world.user(n) for n in ("ann", "bob", "cat", "dan", "eve", "fay", "gus"))
        try:
            yield world
        finally:
            os.chdir(cwd)
            # Managed teams left behind would be orphans to every other tenant's sync in this proxy.
            http.post("/team/delete", json={"team_ids": [world.id("Eng"), world.id("Ops")]})


def roles_follow_the_app_roles(world: World) -> None:
    tenant, w = world.graph.tenant, world
    # At creation: gus proxy_admin, ann proxy_admin_viewer, eve and fay internal_user (Ops's app role).
    assert [w.role(n) for n in ("gus", "ann", "eve", "fay", "bob")] == [
        "proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user", None]
    w.http.post("/user/update", json={"user_id": w.id("bob"), "user_role": "proxy_admin_viewer"}).raise_for_status()
    tenant.assign(w.id("fay"), w.app_role_id("proxy_admin"))  # two roles at once: proxy_admin wins
    tenant.assign(w.id("dan"), w.app_role_id("internal_user"))  # a role granted
    tenant.unassign(w.id("ann"), w.app_role_id("proxy_admin_viewer"))  # a role revoked (ann stays in Eng)
    tenant.assign(w.id("ann"), w.app_role_id("Reader"))  # not a LiteLLM role: ignored

    plan = w.run("plan")
    assert f"update user {w.email('fay')}: GRANT PROXY ADMIN: role internal_user -> proxy_admin" in plan.out
    report = w.apply()  # targeted: admins are read by role, so the revoked admin role is seen
    assert report["summary"]["roles_changed"] == 3
    assert [w.role(n) for n in ("fay", "dan", "ann")] == ["proxy_admin", "internal_user", "internal_user_viewer"]
    assert w.role("bob") == "proxy_admin_viewer"  # set by hand, no app role: left alone
    assert w.apply()["actions"] == []


def someone_who_comes_back_gets_back_what_the_sync_blocked_and_an_admins_block_stays(world: World) -> None:
    tenant, w = world.graph.tenant, world
    mine, admins = w.key("eve"), w.key("eve")
    w.http.post("/key/block", json={"key": admins}).raise_for_status()
    tenant.remove_member(w.id("Ops"), w.id("eve"))
    assert w.apply()["summary"]["users_blocked"] == 1  # found within one run, from Ops's roster
    assert w.keys("eve") == {mine: True, admins: True}

    tenant.add_member(w.id("Ops"), w.id("eve"))
    plan = w.run("plan")
    assert f"update user {w.email('eve')}: back in scope, unblock 1 key(s)" in plan.out
    report = w.apply()
    assert report["summary"]["users_unblocked"] == 1 and report["summary"]["members_added"] == 1
    assert w.keys("eve") == {mine: False, admins: True}
    assert "left_at" not in w.user("eve")["metadata"]["entra_sync"]


def leavers_keys_are_blocked_within_one_run(world: World) -> None:
    tenant, w = world.graph.tenant, world
    bob_personal, bob_team, cat_key, dan_key = w.key("bob"), w.key("bob", "Eng"), w.key("cat"), w.key("dan")
    tenant.disable_user(w.id("bob"))  # a disabled account
    tenant.remove_user(w.id("cat"))  # a deleted account
    tenant.remove_member(w.id("Eng"), w.id("dan"))  # someone who moves between groups: not a leaver
    tenant.add_member(w.id("Ops"), w.id("dan"))

    plan = w.run("plan")
    assert plan.code == 0, plan.err
    assert f"block 2 key(s) of {w.email('bob')} (disabled)" in plan.out
    assert f"block 1 key(s) of {w.email('cat')} (deleted)" in plan.out
    assert f"remove {w.email('dan')} from team 'Eng'" in plan.out and f"of {w.email('dan')}" not in plan.out

    report = w.apply()
    assert report["summary"]["users_blocked"] == 2 and report["summary"]["failed"] == 0
    assert report["stats"]["litellm_read"] == "targeted"  # found without listing every user
    # Removing bob from Eng deleted his key in Eng (the proxy does that); his personal key is blocked.
    assert w.keys("bob") == {bob_personal: True} and bob_team not in w.keys("bob")
    assert w.keys("cat") == {cat_key: True} and w.keys("dan") == {dan_key: False}
    marker = w.user("cat")["metadata"]["entra_sync"]
    assert marker["left_reason"] == "deleted" and marker["blocked_keys"] == [cat_key]

    # Assigned directly and in no team: an unassigned user is found by the next run, incremental as
    # the timer makes it (from the scope the last complete run saved), and so is a key made for a
    # leaver after the first block (listed newest first since the last run).
    gus_key, later = w.key("gus"), w.key("bob")
    tenant.unassign(w.id("gus"))
    report = w.apply()
    assert report["stats"]["litellm_read"] == "targeted" and report["summary"]["users_blocked"] == 2
    assert w.keys("gus") == {gus_key: True} and w.keys("bob")[later] is True
    assert w.user("gus")["metadata"]["entra_sync"]["left_reason"] == "unassigned"
    again = w.apply()
    assert again["actions"] == [] and again["stats"]["litellm_write_calls"] == 0


def a_mass_leave_is_held_and_a_failed_group_read_makes_nobody_a_leaver(world: World) -> None:
    tenant, w = world.graph.tenant, world
    keys = {n: w.key(n) for n in ("ann", "dan", "eve", "fay")}
    for principal in ("Ops", "dan", "fay"):  # dan, eve and fay leave at once (all of Ops; no direct roles)
        tenant.unassign(w.id(principal))
    held = w.run("apply", "--json", SYNC_MAX_REMOVALS="2")
    assert held.code == 3, held.err
    summary = held.json()["summary"]
    assert (summary["held"], summary["users_blocked"]) == (3, 0), held.out[-3000:]
    assert not any(w.keys(n)[keys[n]] for n in ("dan", "eve", "fay"))

    tenant.assign(w.id("Ops"), w.app_role_id("internal_user"))
    tenant.disable_user(w.id("ann"))  # a leaver, whatever the groups say
    world.graph.server.faults = ScriptedFaults().add("GET", rf"groups/{w.id('Eng')}", Fault("status", 503), 100)
    try:
        partial = w.run("apply", "--json", SYNC_FULL_RECONCILE_HOURS="0")  # a full read: every group is read
    finally:
        world.graph.server.faults = NoFaults()
    assert partial.json()["summary"]["users_blocked"] == 0
    assert any("nobody is made a leaver" in note for note in partial.json()["notes"]), partial.json()["notes"]
    assert w.keys("ann")[keys["ann"]] is False
    report = w.apply()
    assert report["summary"]["users_blocked"] == 1 and w.keys("ann")[keys["ann"]] is True
    assert not any(w.keys(n)[keys[n]] for n in ("dan", "eve", "fay"))  # back in scope: never blocked


def a_failed_or_cut_off_block_is_done_by_the_next_run(world: World) -> None:
    tenant, w = world.graph.tenant, world
    # /key/block answers 500 to every attempt of one run: the leaver's record is written, the key is not blocked.
    tenant.assign(w.id("gus"))
    assert w.apply()["summary"]["users_unblocked"] == 1
    gus_key = next(iter(w.keys("gus")))
    tenant.unassign(w.id("gus"))
    with Relay(w.env["LITELLM_BASE_URL"]) as relay:
        relay.server.faults = ScriptedFaults().add("POST", "/key/block$", Fault("status", 500), 100)
        failed = w.run("apply", "--json", LITELLM_BASE_URL=relay.base_url, SYNC_RETRY_BUDGET_SECONDS="2")
    assert failed.code == 1 and failed.json()["summary"]["failed"] == 1, failed.out[-3000:]
    assert "left_at" in w.user("gus")["metadata"]["entra_sync"] and w.keys("gus") == {gus_key: False}
    report = w.apply()  # incremental: the leaver the last run left undone is rechecked
    assert report["stats"]["litellm_read"] == "targeted" and report["summary"]["users_blocked"] == 1
    assert w.keys("gus") == {gus_key: True}

    # Killed right after the leaver's record was written, before the block.
    tenant.assign(w.id("gus"))
    assert w.apply()["summary"]["users_unblocked"] == 1 and w.keys("gus") == {gus_key: False}
    tenant.unassign(w.id("gus"))
    with Relay(w.env["LITELLM_BASE_URL"]) as relay:
        relay.server.faults = ScriptedFaults().add("POST", "/key/block$", Fault("drop"), 100)
        w.run("apply", "--json", LITELLM_BASE_URL=relay.base_url, SYNC_RETRY_BUDGET_SECONDS="0")
    assert w.keys("gus") == {gus_key: False}
    assert w.apply()["summary"]["users_blocked"] == 1 and w.keys("gus") == {gus_key: True}


# One test, so that the scenarios run in this order on one world whichever worker pytest-xdist
# gives it: each starts from where the one before left the tenant and the proxy.
SCENARIOS = [
    roles_follow_the_app_roles,
    someone_who_comes_back_gets_back_what_the_sync_blocked_and_an_admins_block_stays,
    leavers_keys_are_blocked_within_one_run,
    a_mass_leave_is_held_and_a_failed_group_read_makes_nobody_a_leaver,
    a_failed_or_cut_off_block_is_done_by_the_next_run,
]


def test_access_scenarios_into_the_real_proxy(world: World) -> None:
    for scenario in SCENARIOS:
        scenario(world)

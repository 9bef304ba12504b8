"""Bad answers end to end into a REAL LiteLLM proxy: the CLI reads a Graph emulator tenant and writes
the proxy through a fault-injecting relay (emulators/relay.py). A malformed Graph page removes
nobody and blocks no key; an HTML 200 on the team list fails the run in one line; an e-mail match
is adopted with bulk writes in the run that finds it. Each followed by a healthy run that converges.

Runs when LITELLM_CONTRACT_URL and LITELLM_CONTRACT_KEY are set (a failure in CI when not).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulators.graph import GraphEmulator, Tenant
from emulators.http_base import Fault, NoFaults, ScriptedFaults
from emulators.relay import Relay
from tests.conftest import GRAPH_TOKEN, CliRun, run_cli
from tests.real_proxies import real_proxy

HTML = b"<html><head><title>Sign in - Contoso</title></head>\n<body>\n<form>...</form>\n</body></html>"

pytestmark = [pytest.mark.litellm_real, pytest.mark.slow]


@pytest.fixture
def world(tmp_path, monkeypatch) -> Iterator[tuple[Any, ...]]:
    url, key = real_proxy()
    monkeypatch.chdir(tmp_path)  # the CLI's delta state
    salt = uuid.uuid4().hex[:8]

    def oid(name: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.{salt}.bad-answers.test"))

    names = ["ann", "bob", "cat", "dan", "eve", "fay"]
    users = [{"id": oid(n), "displayName": n.title(), "userPrincipalName": f"{n}.{salt}@contoso.com",
              "mail": f"{n}.{salt}@contoso.com", "accountEnabled": True, "userType": "Member"} for n in names]
    document = {"tenant_id": oid("tenant"),
                "service_principal": {"id": oid("sp"), "appId": oid("app"), "displayName": "LiteLLM"},
                "users": users,
                "groups": [{"id": oid("Eng"), "displayName": "Eng", "members": [oid(n) for n in names[:3]]},
                           {"id": oid("Ops"), "displayName": "Ops", "members": [oid("dan")]}],
                "assignments": [{"principalId": oid(g), "principalType": "Group"} for g in ("Eng", "Ops")]}
    with GraphEmulator(Tenant.from_dict(document), token=GRAPH_TOKEN) as graph, Relay(url) as front, \
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        env = {"LITELLM_BASE_URL": front.base_url, "LITELLM_MASTER_KEY": key, "ENTRA_APP_ID": oid("app"),
               "GRAPH_BASE_URL": graph.base_url, "GRAPH_ACCESS_TOKEN": GRAPH_TOKEN,
               "SYNC_ORPHANED_TEAM_ACTION": "keep", "SYNC_MAX_REMOVALS": "10", "SYNC_MAX_REMOVAL_PERCENT": "100",
               "SYNC_HTTP_TIMEOUT_SECONDS": "300"}  # the shared proxy may hold many users and be busy
        try:
            yield graph, front, http, env, oid, salt
        finally:
            http.post("/team/delete", json={"team_ids": [oid("Eng"), oid("Ops")]})


def apply(env: dict[str, str], **settings: str) -> tuple[CliRun, dict[str, Any]]:
    result = run_cli({**env, **settings}, "apply", "--json")
    return result, result.json() if result.out.startswith("{") else {}


def converge(env: dict[str, str], **settings: str) -> list[dict[str, Any]]:
    """Healthy applies until one completes (a shared proxy under load fails a write now and then,
    which the next run retries): their reports. None may leave an action unattempted."""
    reports = []
    for _ in range(3):
        result, report = apply(env, **settings)
        assert report, result.err
        assert not [a for a in report["actions"] if a["outcome"] == "planned"]
        reports.append(report)
        if result.code == 0:
            return reports
    raise AssertionError(f"no complete run in three: {reports[-1]['attention']}")


def test_bad_answers_cost_nobody_access_on_the_real_proxy(world) -> None:
    graph, front, http, env, oid, salt = world
    converge(env)

    def roster(team: str) -> set[str]:
        info = http.get("/team/info", params={"team_id": oid(team)}).raise_for_status().json()
        return {m["user_id"] for m in info["team_info"]["members_with_roles"] if m["role"] == "user"}

    def blocked(token: str) -> bool:
        return bool(http.get("/key/info", params={"key": token}).raise_for_status().json()["info"]["blocked"])

    keys = {n: http.post("/key/generate", json={"user_id": oid(n)}).raise_for_status().json()["token"]
            for n in ("ann", "bob", "cat")}

    # 1. Eng's member pages answer 200 {}: an unread group, not an empty one. Bob really left meanwhile.
    graph.tenant.remove_member(oid("Eng"), oid("bob"))
    graph.server.faults = ScriptedFaults().add("GET", rf"/groups/{oid('Eng')}/(transitiveMembers|members)",
                                               Fault("status", 200, body=b"{}"), 100)
    result, report = apply(env, SYNC_FULL_RECONCILE_HOURS="0")  # a full read: every group read, leavers looked at
    graph.server.faults = NoFaults()
    assert result.code == 1, result.err
    assert report["complete"] is False and report["summary"]["members_removed"] == 0
    assert report["summary"]["users_blocked"] == 0
    assert any("members" in reason and "malformed answer (value: Field required)" in reason
               for reason in report["attention"]), report["attention"]
    assert roster("Eng") == {oid("ann"), oid("bob"), oid("cat")}
    assert not any(blocked(token) for token in keys.values())
    converge(env)  # healthy again: bob, and only bob, goes; his key is blocked (he left every group)
    assert roster("Eng") == {oid("ann"), oid("cat")}
    assert [blocked(keys[n]) for n in ("ann", "bob", "cat")] == [False, True, False]

    # 2. The team list answers a login page with 200: the run fails in one line, nothing is written.
    writes = len([r for r in front.server.requests(["POST"])])
    front.server.faults = ScriptedFaults().add("GET", r"^/v2/team/list$",
                                               Fault("status", 200, body=HTML, content_type="text/html"), 100)
    result, _ = apply(env)
    front.server.faults = NoFaults()
    assert result.code == 1 and result.out == ""
    assert result.err == ("sync failed: GET /v2/team/list -> 200: answered with a body that is not JSON "
                          "(text/html): Sign in - Contoso\n"), result.err
    assert len(front.server.requests(["POST"])) == writes

    # 3. eve signed in once before the sync (her own id, her e-mail in capitals) and joins Ops with
    # fay, who is new: the run that creates fay in bulk adopts eve too, and the next makes no write.
    http.post("/user/new", json={"user_id": f"sso-eve-{salt}", "user_email": f"EVE.{salt}@Contoso.com",
                                 "auto_create_key": False}).raise_for_status()
    graph.tenant.add_member(oid("Ops"), oid("eve"))
    graph.tenant.add_member(oid("Ops"), oid("fay"))
    reports = converge(env, SYNC_LITELLM_BULK="on")
    adopted = [a["outcome"] for r in reports for a in r["actions"]
               if a["type"] == "update_user" and a.get("user_id") == f"sso-eve-{salt}"]
    assert adopted[-1:] == ["applied"], adopted
    assert {f"sso-eve-{salt}", oid("fay")} <= roster("Ops")
    result, report = apply(env, SYNC_LITELLM_BULK="on")
    assert result.code == 0 and report["actions"] == [] and report["stats"]["litellm_write_calls"] == 0

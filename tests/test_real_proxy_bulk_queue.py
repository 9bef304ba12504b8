"""Bulk user creations that share a team, into a REAL LiteLLM proxy (the volume lane: tests/real_proxies.py).

The proxy writes a team's roster under the team's advisory lock, one request after another, so
bulk requests that share a team queue there. One group holds everyone here, so every request
shares its team: the sync keeps few of them in flight (none waits past its timeout), and a
request whose answer is lost to a deliberately short timeout is resolved in the same run (the
users read back, only the absent ones sent again), every person and membership in place once.

Requests go through the sync's own httpx client to the real proxy; a transport around the real
one only watches them (how many bulk creations are in flight, which users each names).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from emulators.graph import GraphEmulator, Tenant
from sync_core.runner import RunRequest, run_sync
from sync_core.settings import Settings
from tests.conftest import GRAPH_TOKEN
from tests.expectations import LiteLLMReadback
from tests.real_proxies import real_proxy
from tests.tenants import oid

BULK = "POST /management/v1/users/bulk"

pytestmark = [pytest.mark.litellm_real(lane="volume"), pytest.mark.slow]


@pytest.fixture(scope="module")
def proxy() -> tuple[str, str]:
    return real_proxy("volume")


class Watch(httpx.AsyncBaseTransport):
    """The real transport, counting bulk creations in flight and recording, in order, the users
    each bulk creation names and the users each read-back by id found."""

    def __init__(self) -> None:
        self._real = httpx.AsyncHTTPTransport()
        self.in_flight = self.most_in_flight = 0
        self.events: list[tuple[str, set[str]]] = []  # ("sent" | "found", user ids)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/management/v1/users/bulk":
            self.events.append(("sent", {row["user_id"] for row in json.loads(request.content)["users"]}))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                response = await self._real.handle_async_request(request)
                await response.aread()
                return response
            finally:
                self.in_flight -= 1
        response = await self._real.handle_async_request(request)
        if request.url.path == "/user/list" and "user_ids" in request.url.params:
            await response.aread()
            self.events.append(("found", {u["user_id"] for u in response.json()["users"]}))
        return response

    def sent(self) -> list[set[str]]:
        return [ids for kind, ids in self.events if kind == "sent"]

    async def aclose(self) -> None:
        await self._real.aclose()


def everyone_in_one_group(people: int, salt: str) -> dict[str, Any]:
    users = [{"id": oid(f"p{i}", salt), "displayName": f"Person {i}", "userPrincipalName": f"p{i}.{salt}@contoso.com",
              "mail": f"p{i}.{salt}@contoso.com", "accountEnabled": True, "userType": "Member"}
             for i in range(people)]
    group = oid("all-staff", salt)
    return {"tenant_id": str(uuid.uuid4()),
            "service_principal": {"id": str(uuid.uuid4()), "appId": oid("app", salt), "displayName": "LiteLLM"},
            "users": users,
            "groups": [{"id": group, "displayName": f"All staff {salt}", "members": [u["id"] for u in users]}],
            "assignments": [{"principalId": group, "principalType": "Group"}]}


def sync(proxy: tuple[str, str], people: int, **settings: str) -> tuple[dict[str, Any], Watch, list[str], Any]:
    salt = uuid.uuid4().hex[:8]
    document = everyone_in_one_group(people, salt)
    watch = Watch()
    with GraphEmulator(Tenant.from_dict(document), token=GRAPH_TOKEN) as graph:
        env = {"LITELLM_BASE_URL": proxy[0], "LITELLM_MASTER_KEY": proxy[1], "ENTRA_APP_ID": oid("app", salt),
               "GRAPH_BASE_URL": graph.base_url, "GRAPH_ACCESS_TOKEN": GRAPH_TOKEN,
               # reading a shared, busy proxy's users is slow; this is about the bulk writes' timeout
               "SYNC_HTTP_TIMEOUT_SECONDS": "120", **settings}
        report = asyncio.run(run_sync(Settings.from_env(env), RunRequest(dry_run=False, trigger="test"),
                                      litellm_transport=watch))
    readback = LiteLLMReadback(*proxy)
    team = readback.teams()[oid("all-staff", salt)]
    readback.forget([u["id"] for u in document["users"]], [oid("all-staff", salt)])
    return {**report.to_dict(), "exit_code": report.exit_code}, watch, [u["id"] for u in document["users"]], team


def assert_everyone_in_place_once(report: dict[str, Any], people: list[str], team: dict[str, Any]) -> None:
    assert report["exit_code"] == 0 and {a["outcome"] for a in report["actions"]} == {"applied"}, report["summary"]
    roster = Counter(m["user_id"] for m in team["members_with_roles"] if m["role"] == "user")
    assert set(roster) == set(people) and max(roster.values()) == 1


def test_bulk_creations_that_share_a_team_do_not_queue_past_their_timeout(proxy: tuple[str, str]) -> None:
    # 4 requests of 250 into one team, one at a time (the default): sent at once, each would wait
    # for the ones before it at the team's lock, inside its own transaction
    report, watch, people, team = sync(proxy, 1000, SYNC_USER_CREATE_CHUNK="250", SYNC_LITELLM_BULK_TIMEOUT_SECONDS="5")
    assert_everyone_in_place_once(report, people, team)
    assert report["stats"]["litellm_lost"] == {}  # no request timed out
    assert len(watch.sent()) == 4 and watch.most_in_flight == 1
    calls = report["stats"]["litellm_calls"]
    assert (calls[BULK], calls.get("POST /team/member_add", 0)) == (4, 0)  # /team/new may retry a 500


def test_a_bulk_creation_that_timed_out_is_resolved_in_the_same_run(proxy: tuple[str, str]) -> None:
    # A timeout far below what a request takes: the first answers are lost while the proxy goes on
    report, watch, people, team = sync(proxy, 300, SYNC_USER_CREATE_CHUNK="150",
                                       SYNC_LITELLM_BULK_TIMEOUT_SECONDS="0.1")
    assert report["stats"]["litellm_lost"].get(BULK, 0) >= 1
    assert_everyone_in_place_once(report, people, team)
    # never sent again as it was: a user a read-back found is named by no later request
    found: set[str] = set()
    for kind, ids in watch.events:
        if kind == "found":
            found |= ids
        else:
            assert not ids & found, "a bulk creation named users the proxy already had"
    assert found, "the lost answers were resolved by reading the users back"

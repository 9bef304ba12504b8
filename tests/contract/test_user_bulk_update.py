"""/user/bulk_update, the route the sync writes user updates through (SYNC_LITELLM_BULK), against
the emulator, LiteLLM 1.108.7 (LITELLM_CONTRACT_URL) and 1.80.0 (LITELLM_OLDER_URL): both have it.

Observed on both (2026-12-03), and what the sync relies on:
- ``{"users": [UpdateUserRequest, ...]}`` answers 200 ``{results, total_requested,
  successful_updates, failed_updates}``, one result per row in request order: ``{user_id,
  user_email}`` as sent, ``success``, ``error``, ``updated_user`` (/user/update's answer, or null).
- Each row is done as /user/update does it: an unknown user_id is created (upsert, no failure),
  metadata is replaced whole, an empty dict leaves it, fields not sent are left, a role is set.
- Rows are done one after another, each on its own: a failed row is ``success: false`` in a 200
  and the rows around it are written (not atomic); the same user twice: the last row wins. The one
  row failure we can cause is /user/update's own: an unknown e-mail without a user_id inserts that
  user and then fails ("'LiteLLM_UserTable' object has no attribute 'get'").
- Validation is per request: one row with an unknown role or neither id nor e-mail is a 422 for
  the whole request (nothing written); more than 500 rows, an empty list or no ``users`` is a 400.
- Admin-only like /user/update: a non-admin key is a 401 in auth itself.
- Unlike /user/update on one point of 1.108.7 vs 1.80.0: none (``max_budget: null`` clears the
  budget on 1.108.7 and is ignored on 1.80.0, through either route; the sync never sends it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.contract.conftest import EMULATOR_KEY, Factory, Target, factory_for
from tests.proxy_http import proxy_client
from tests.real_proxies import real_proxy

ROUTE = "/user/bulk_update"
EMAIL_QUIRK = "'LiteLLM_UserTable' object has no attribute 'get'"
TARGETS = ["emulator", pytest.param("1.108.7", marks=pytest.mark.litellm_real),
           pytest.param("1.80.0", marks=pytest.mark.litellm_real)]


@pytest.fixture(scope="module", params=TARGETS)
def proxy(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "emulator":
        base_url, key = request.getfixturevalue("_emulator").base_url, EMULATOR_KEY
    else:
        base_url, key = real_proxy("contract" if request.param == "1.108.7" else "older")
    with proxy_client(base_url, key) as client:
        yield Target(request.param, base_url, key, client)


@pytest.fixture
def made(proxy: Target) -> Iterator[Factory]:
    yield from factory_for(proxy)


def _bulk(proxy: Target, rows: Any) -> httpx.Response:
    return proxy.client.post(ROUTE, json={"users": rows})


def _results(response: httpx.Response) -> list[tuple[Any, ...]]:
    assert response.status_code == 200, response.text
    return [(r["user_id"], r["user_email"], r["success"], r["error"]) for r in response.json()["results"]]


def _kept(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["metadata"], row["user_role"], row["max_budget"], row["user_email"]


def test_rows_are_written_as_user_update_writes_them(proxy: Target, made: Factory) -> None:
    uid = uuid.uuid4().hex[:10]
    bulk_ids, single_ids = [f"cu-b{i}-{uid}" for i in range(2)], [f"cu-s{i}-{uid}" for i in range(2)]
    for user_id in bulk_ids + single_ids:
        made.user(user_id=user_id, user_email=f"{user_id}@example.com", metadata={"k": 1}, max_budget=5)
    made.track_users(f"cu-bnew-{uid}", f"cu-snew-{uid}")
    rows = [{"metadata": {"x": 2}, "user_role": "internal_user_viewer"}, {"metadata": {}}, {"metadata": {"x": 3}}]
    response = _bulk(proxy, [{**row, "user_id": user_id}
                             for row, user_id in zip(rows, [*bulk_ids, f"cu-bnew-{uid}"], strict=True)])
    assert _results(response) == [(bulk_ids[0], None, True, None), (bulk_ids[1], None, True, None),
                                  (f"cu-bnew-{uid}", None, True, None)]
    body = response.json()
    assert {k: v for k, v in body.items() if k != "results"} == {
        "total_requested": 3, "successful_updates": 3, "failed_updates": 0}
    updated = body["results"][0]["updated_user"]
    assert set(updated) == {"user_id", "data"} and updated["data"]["metadata"] == {"x": 2}
    for row, user_id in zip(rows, [*single_ids, f"cu-snew-{uid}"], strict=True):
        assert proxy.client.post("/user/update", json={**row, "user_id": user_id}).status_code == 200
    # the same three changes by /user/update leave the same rows (e-mails aside)
    for bulk_id, single_id in zip([*bulk_ids, f"cu-bnew-{uid}"], [*single_ids, f"cu-snew-{uid}"], strict=True):
        by_bulk, by_single = _kept(proxy.user_row(bulk_id)), _kept(proxy.user_row(single_id))
        assert by_bulk[:3] == by_single[:3]
    assert _kept(proxy.user_row(bulk_ids[0])) == (
        {"x": 2}, "internal_user_viewer", 5.0, f"{bulk_ids[0]}@example.com")  # metadata replaced, budget left
    assert _kept(proxy.user_row(bulk_ids[1]))[:3] == ({"k": 1}, None, 5.0)  # an empty dict is no change
    assert _kept(proxy.user_row(f"cu-bnew-{uid}")) == ({"x": 3}, None, None, None)  # an unknown id: created


def test_rows_succeed_or_fail_one_by_one(proxy: Target, made: Factory) -> None:
    uid = uuid.uuid4().hex[:10]
    first, second = (made.user(user_id=f"cu-{i}-{uid}", metadata={"k": 1})["user_id"] for i in range(2))
    nobody = f"cu-nobody-{uid}@example.com"
    response = _bulk(proxy, [{"user_id": first, "metadata": {"a": 1}}, {"user_email": nobody, "metadata": {"a": 2}},
                             {"user_id": second, "metadata": {"b": 1}}, {"user_id": second, "metadata": {"b": 2}}])
    assert _results(response) == [(first, None, True, None), (None, nobody, False, EMAIL_QUIRK),
                                  (second, None, True, None), (second, None, True, None)]
    assert response.json()["results"][1]["updated_user"] is None
    assert (response.json()["successful_updates"], response.json()["failed_updates"]) == (3, 1)
    assert proxy.user_row(first)["metadata"] == {"a": 1}  # written despite the failed row after it
    assert proxy.user_row(second)["metadata"] == {"b": 2}  # the last row for a user wins
    inserted = proxy.client.get("/user/list", params={"user_email": nobody}).json()["users"]
    made.track_users(*(u["user_id"] for u in inserted))
    assert [u["user_email"] for u in inserted] == [nobody]  # as /user/update: inserted, then failed


def test_a_bad_row_refuses_the_whole_request(proxy: Target, made: Factory) -> None:
    uid = uuid.uuid4().hex[:10]
    user_id = made.user(user_id=f"cu-{uid}", metadata={"k": 1})["user_id"]
    role = _bulk(proxy, [{"user_id": user_id, "metadata": {"a": 1}}, {"user_id": user_id, "user_role": "superuser"}])
    assert role.status_code == 422
    ((kind, loc),) = [(e["type"], e["loc"]) for e in role.json()["detail"]]
    assert (kind, loc) == ("literal_error", ["body", "users", 1, "user_role"])
    nameless = _bulk(proxy, [{"metadata": {"a": 1}}])
    assert nameless.status_code == 422
    assert [(e["type"], e["loc"], e["msg"]) for e in nameless.json()["detail"]] == [
        ("value_error", ["body", "users", 0], "Value error, Either user id or user email must be provided")]
    assert proxy.user_row(user_id)["metadata"] == {"k": 1}  # nothing written


def test_the_request_takes_1_to_500_rows(proxy: Target) -> None:
    uid = uuid.uuid4().hex[:10]
    over = _bulk(proxy, [{"user_id": f"cu-{i}-{uid}", "metadata": {"a": 1}} for i in range(501)])
    assert (over.status_code, over.json()) == (
        400, {"detail": {"error": "Maximum 500 users can be updated at once. Found 501 users."}})
    neither = {"detail": {"error": "Must specify either 'users' for individual updates or 'all_users=True' "
                                   "with 'user_updates' for bulk updates"}}
    for body in ({"users": []}, {}):
        refused = proxy.client.post(ROUTE, json=body)
        assert (refused.status_code, refused.json()) == (400, neither)
    not_a_list = _bulk(proxy, "x")
    assert not_a_list.status_code == 422
    assert [(e["type"], e["loc"]) for e in not_a_list.json()["detail"]] == [("list_type", ["body", "users"])]
    listed = proxy.client.get("/user/list", params={"user_ids": f"cu-0-{uid},cu-500-{uid}"}).json()["users"]
    assert listed == []  # the refused request wrote nothing (1.80.0's /user/info answers 200 for nobody)


def test_a_non_admin_key_is_turned_away(proxy: Target, made: Factory) -> None:
    uid = uuid.uuid4().hex[:10]
    key = made.user(user_id=f"cu-{uid}", user_role="internal_user", auto_create_key=True)["key"]
    with httpx.Client(base_url=proxy.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        refused = client.post(ROUTE, json={"users": [{"user_id": f"cu-{uid}", "metadata": {"a": 1}}]})
    assert refused.status_code == 401
    assert "Route=/user/bulk_update. Your role=internal_user" in refused.json()["error"]["message"]

"""Keys, for leavers: /key/generate, /key/list by user, /key/block and /key/unblock, and what
removing a member, deleting a user and updating a user's role do (the sync's client drives them)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from sync_core.litellm.client import LiteLLMClient
from tests.contract.conftest import Factory, Target
from tests.proxy_http import proxy_client
from tests.real_proxies import real_proxy


def _generate(litellm: Target, user_id: str, team_id: str | None = None) -> dict:
    body = {"user_id": user_id, **({"team_id": team_id} if team_id else {})}
    response = litellm.client.post("/key/generate", json=body)
    assert response.status_code == 200, response.text
    key = response.json()
    assert key["key"].startswith("sk-") and len(key["token"]) == 64 and key["team_id"] == team_id
    return key


def _listing(litellm: Target, **params: object) -> dict:
    response = litellm.client.get("/key/list", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _keys(litellm: Target, user_id: str) -> dict[str, tuple]:
    """token -> (team_id, blocked) of every key of the user, through the sync's client."""

    async def read() -> dict[str, tuple]:
        async with LiteLLMClient(litellm.base_url, litellm.key) as client:
            return {k.token: (k.team_id, k.blocked) for k in await client.keys_of(user_id)}

    return asyncio.run(read())


def test_key_list_by_user_pages_full_objects_team_and_personal(litellm: Target, make: Factory, uid: str) -> None:
    team = make.team(team_id=f"ct-{uid}", team_alias="keys")
    make.user(user_id=f"ct-{uid}", teams=[team["team_id"]])
    make.user(user_id=f"ct-{uid}-other")  # a user_id that contains the first: not matched
    personal, in_team = _generate(litellm, f"ct-{uid}"), _generate(litellm, f"ct-{uid}", team["team_id"])
    _generate(litellm, f"ct-{uid}-other")
    first = _listing(litellm, user_id=f"ct-{uid}", return_full_object="true", size=1, page=1,
                     sort_by="token", sort_order="asc")
    assert (first["total_count"], first["current_page"], first["total_pages"]) == (2, 1, 2)
    (row,) = first["keys"]
    assert row["token"] == min(personal["token"], in_team["token"]) and row["user_id"] == f"ct-{uid}"
    assert row["blocked"] is None and row["key_name"].startswith("sk-...")
    past = _listing(litellm, user_id=f"ct-{uid}", size=1, page=3)
    assert (past["keys"], past["total_count"], past["total_pages"]) == ([], 2, 2)
    tokens = _listing(litellm, user_id=f"ct-{uid}", size=100)["keys"]  # without full objects: the hashes
    assert sorted(tokens) == sorted([personal["token"], in_team["token"]])
    assert litellm.client.get("/key/list", params={"user_id": f"ct-{uid}", "size": 101}).status_code == 422
    assert _keys(litellm, f"ct-{uid}") == {personal["token"]: (None, False), in_team["token"]: (team["team_id"], False)}
    assert _keys(litellm, f"ct-nobody-{uid}") == {}


def test_key_block_and_unblock_by_token(litellm: Target, make: Factory, uid: str) -> None:
    make.user(user_id=f"ct-{uid}")
    key = _generate(litellm, f"ct-{uid}")
    for path, blocked in [("/key/block", True), ("/key/block", True), ("/key/unblock", False),
                          ("/key/unblock", False)]:  # each twice: both are idempotent
        response = litellm.client.post(path, json={"key": key["token"]})
        assert response.status_code == 200, response.text
        assert response.json()["token"] == key["token"]
        assert _keys(litellm, f"ct-{uid}") == {key["token"]: (None, blocked)}
    unknown = litellm.client.post("/key/block", json={"key": "0" * 64})
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"


def test_a_blocked_key_is_refused(litellm: Target, make: Factory, uid: str) -> None:
    make.user(user_id=f"ct-{uid}")
    key = _generate(litellm, f"ct-{uid}")
    litellm.client.post("/key/block", json={"key": key["token"]})
    with litellm.unauthenticated() as anyone:
        as_owner = {"Authorization": f"Bearer {key['key']}"}
        refused = anyone.get("/user/info", params={"user_id": f"ct-{uid}"}, headers=as_owner)
        assert refused.status_code == 401 and refused.json()["error"]["message"] == (
            "Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin.")
        litellm.client.post("/key/unblock", json={"key": key["token"]})
        assert anyone.get("/user/info", params={"user_id": f"ct-{uid}"}, headers=as_owner).status_code == 200


def test_member_removal_deletes_that_members_keys_in_that_team_only(litellm: Target, make: Factory,
                                                                     uid: str) -> None:
    one, two = make.team(team_id=f"ct-{uid}-1"), make.team(team_id=f"ct-{uid}-2")
    make.user(user_id=f"ct-{uid}", teams=[one["team_id"], two["team_id"]])
    make.user(user_id=f"ct-{uid}-b", teams=[one["team_id"]])
    personal = _generate(litellm, f"ct-{uid}")
    in_one, in_two = _generate(litellm, f"ct-{uid}", one["team_id"]), _generate(litellm, f"ct-{uid}", two["team_id"])
    others = _generate(litellm, f"ct-{uid}-b", one["team_id"])
    response = litellm.client.post("/team/member_delete", json={"team_id": one["team_id"], "user_id": f"ct-{uid}"})
    assert response.status_code == 200, response.text
    assert set(_keys(litellm, f"ct-{uid}")) == {personal["token"], in_two["token"]}
    assert in_one["token"] not in _keys(litellm, f"ct-{uid}")
    assert set(_keys(litellm, f"ct-{uid}-b")) == {others["token"]}


def test_user_delete_deletes_their_keys_then_404(litellm: Target, make: Factory, uid: str) -> None:
    team = make.team(team_id=f"ct-{uid}")
    make.user(user_id=f"ct-{uid}", teams=[team["team_id"]])
    personal = _generate(litellm, f"ct-{uid}")
    _generate(litellm, f"ct-{uid}", team["team_id"])
    assert litellm.client.post("/user/delete", json={"user_ids": [f"ct-{uid}"]}).json() == 1
    assert _keys(litellm, f"ct-{uid}") == {}
    gone = litellm.client.post("/key/unblock", json={"key": personal["token"]})
    assert gone.status_code == 404
    assert litellm.client.post("/user/delete", json={"user_ids": [f"ct-{uid}"]}).status_code == 404


def test_the_clients_key_block_and_user_calls_are_idempotent(litellm: Target, make: Factory, uid: str) -> None:
    make.user(user_id=f"ct-{uid}", user_role="internal_user", metadata={"kept": 1})
    key = _generate(litellm, f"ct-{uid}")

    async def update() -> None:
        async with LiteLLMClient(litellm.base_url, litellm.key) as client:
            await client.update_user(f"ct-{uid}", user_role="proxy_admin")  # the role alone: metadata stays
            await client.block_key(key["token"], blocked=True)

    async def remove() -> None:
        async with LiteLLMClient(litellm.base_url, litellm.key) as client:
            await client.delete_user(f"ct-{uid}")
            await client.delete_user(f"ct-{uid}")  # already gone: done
            await client.block_key(key["token"], blocked=False)  # its key went with it: done

    asyncio.run(update())
    row = litellm.user_row(f"ct-{uid}")
    assert row is not None and (row["user_role"], row["metadata"]) == ("proxy_admin", {"kept": 1})
    assert _keys(litellm, f"ct-{uid}") == {key["token"]: (None, True)}
    asyncio.run(remove())
    assert litellm.user_row(f"ct-{uid}") is None


def _newest_first(litellm: Target, user_id: str) -> None:
    """/key/list sorts by created_at, newest first, and pages; the sync's client lists the owners
    of the keys made since a given time that way (one page in a quiet run)."""
    async def owners(since: datetime) -> set[str]:
        async with LiteLLMClient(litellm.base_url, litellm.key) as client:
            return await client.key_owners_since(since)

    before = datetime.now(UTC) - timedelta(minutes=10)  # the proxy's clock may differ a little
    tokens = [_generate(litellm, user_id)["token"] for _ in range(3)]
    pages = [_listing(litellm, user_id=user_id, return_full_object="true", size=2, page=n,
                      sort_by="created_at", sort_order="desc") for n in (1, 2)]
    assert [k["token"] for page in pages for k in page["keys"]] == tokens[::-1]
    assert [(p["total_count"], p["current_page"], p["total_pages"]) for p in pages] == [(3, 1, 2), (3, 2, 2)]
    stamps = [k["created_at"] for page in pages for k in page["keys"]]
    assert all(s.endswith("Z") or "+" in s for s in stamps), stamps  # with a zone: compared as UTC
    assert user_id in asyncio.run(owners(before))
    assert user_id not in asyncio.run(owners(datetime.now(UTC) + timedelta(hours=1)))


def test_keys_are_listed_newest_first_page_by_page(litellm: Target, make: Factory, uid: str) -> None:
    make.user(user_id=f"ct-{uid}")
    _newest_first(litellm, f"ct-{uid}")


@pytest.mark.litellm_real
def test_the_older_proxy_lists_keys_newest_first_too(uid: str) -> None:
    url, key = real_proxy("older")
    with proxy_client(url, key) as http:
        older = Target("1.80.0", url, key, http)
        factory = Factory(older)
        try:
            factory.user(user_id=f"ct-{uid}")
            _newest_first(older, f"ct-{uid}")
        finally:
            factory.cleanup()

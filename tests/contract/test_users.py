"""Users: /user/new, /user/info, /user/list, /user/update, /user/delete."""

from __future__ import annotations

import asyncio

from sync_core.litellm.client import LiteLLMClient
from tests.contract.conftest import Factory, Target


def _users(litellm: Target, **params: object) -> dict:
    response = litellm.client.get("/user/list", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_user_new_without_key_creates_no_key(litellm: Target, make: Factory, uid: str) -> None:
    created = make.user(user_id=f"ct-{uid}", user_email=f"ct-{uid}@example.com", auto_create_key=False)
    assert (created["key"], created["key_name"]) == ("", None)
    assert created["teams"] is None and created["user_role"] is None
    info = litellm.client.get("/user/info", params={"user_id": f"ct-{uid}"}).json()
    assert info["keys"] == []
    assert info["user_info"]["user_email"] == f"ct-{uid}@example.com"
    (listed,) = _users(litellm, user_ids=f"ct-{uid}")["users"]
    assert listed["key_count"] == 0


def test_user_new_creates_a_key_by_default(litellm: Target, make: Factory, uid: str) -> None:
    response = litellm.client.post("/user/new", json={"user_id": f"ct-{uid}", "models": ["gpt-4o"]})
    assert response.status_code == 200
    make.track_users(f"ct-{uid}")
    key = response.json()["key"]
    assert key.startswith("sk-") and response.json()["key_name"] == f"sk-...{key[-4:]}"
    keys = litellm.client.get("/user/info", params={"user_id": f"ct-{uid}"}).json()["keys"]
    assert [(k["key_name"], k["user_id"], k["models"]) for k in keys] == [(f"sk-...{key[-4:]}", f"ct-{uid}",
                                                                          ["gpt-4o"])]
    assert _users(litellm, user_ids=f"ct-{uid}")["users"][0]["key_count"] == 1


def test_user_new_without_id_generates_one(litellm: Target, make: Factory, uid: str) -> None:
    created = make.user(user_email=f"ct-auto-{uid}@example.com")
    assert len(created["user_id"]) == 36 and litellm.user_row(created["user_id"]) is not None


def test_duplicate_user_id_is_409(litellm: Target, make: Factory, uid: str) -> None:
    make.user(user_id=f"ct-{uid}")
    response = litellm.client.post("/user/new", json={"user_id": f"ct-{uid}", "auto_create_key": False})
    assert response.status_code == 409
    assert response.json() == {"error": {"message": f"{{'error': 'User with id ct-{uid} already exists'}}",
                                         "type": "internal_server_error", "param": None, "code": "409"}}


def test_duplicate_email_in_another_case_is_409(litellm: Target, make: Factory, uid: str) -> None:
    make.user(user_id=f"ct-a-{uid}", user_email=f"Mixed.{uid}@Example.com")
    response = litellm.client.post("/user/new", json={"user_id": f"ct-b-{uid}", "auto_create_key": False,
                                                      "user_email": f"mixed.{uid}@example.COM"})
    assert response.status_code == 409
    # the message quotes the e-mail as stored, not as sent
    assert response.json()["error"]["message"] == (
        f"{{'error': 'User with email Mixed.{uid}@Example.com already exists'}}")
    assert litellm.user_row(f"ct-b-{uid}") is None


def test_user_role_must_be_a_known_role(litellm: Target, uid: str) -> None:
    response = litellm.client.post("/user/new", json={"user_id": f"ct-{uid}", "user_role": "superuser"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert (error["type"], error["loc"]) == ("literal_error", ["body", "user_role"])
    assert "'internal_user_viewer'" in error["msg"]


def test_user_new_teams_adds_memberships(litellm: Target, make: Factory, uid: str) -> None:
    team_id = make.team(team_id=f"ct-{uid}")["team_id"]
    created = make.user(user_id=f"ct-u-{uid}", user_email=f"ct-u-{uid}@example.com",
                        teams=[team_id, f"ct-missing-{uid}"])
    assert created["teams"] == [team_id]  # the unknown team is skipped silently
    assert litellm.roster(team_id)[-1] == {"user_id": f"ct-u-{uid}", "user_email": f"ct-u-{uid}@example.com",
                                           "role": "user"}
    assert litellm.user_row(f"ct-u-{uid}")["teams"] == [team_id]


def test_user_new_stores_sso_user_id(litellm: Target, make: Factory, uid: str) -> None:
    make.user(user_id=f"ct-{uid}", sso_user_id=f"sso-{uid}", metadata={"auth_provider": "microsoft"})
    row = litellm.user_row(f"ct-{uid}")
    assert (row["sso_user_id"], row["metadata"]) == (f"sso-{uid}", {"auth_provider": "microsoft"})
    assert [u["user_id"] for u in _users(litellm, sso_user_ids=f"sso-{uid}")["users"]] == [f"ct-{uid}"]


def test_user_info_unknown_user_is_404(litellm: Target, uid: str) -> None:
    response = litellm.client.get("/user/info", params={"user_id": f"ct-nope-{uid}"})
    assert response.status_code == 404
    assert response.json() == {"error": {"message": f"User ct-nope-{uid} not found",
                                         "type": "internal_server_error", "param": None, "code": "404"}}


# ---------------------------------------------------------------------------------------- /user/list


def _three_users(make: Factory, uid: str) -> list[str]:
    return [make.user(user_id=f"ct-{uid}-{i}", user_email=f"ct-{uid}-{i}@Example.com")["user_id"]
            for i in range(3)]


def test_user_list_pages_newest_first(litellm: Target, make: Factory, uid: str) -> None:
    ids = _three_users(make, uid)
    first = _users(litellm, user_ids=f"ct-{uid}", page_size=2)
    assert {k: first[k] for k in ("total", "page", "page_size", "total_pages")} == {
        "total": 3, "page": 1, "page_size": 2, "total_pages": 2}
    assert [u["user_id"] for u in first["users"]] == [ids[2], ids[1]]
    assert [u["user_id"] for u in _users(litellm, user_ids=f"ct-{uid}", page=2, page_size=2)["users"]] == [ids[0]]
    past = _users(litellm, user_ids=f"ct-{uid}", page=9, page_size=2)
    assert (past["users"], past["total"]) == ([], 3)
    assert _users(litellm, user_ids=f"ct-{uid}")["page_size"] == 25  # the default


def test_user_list_page_size_is_1_to_100(litellm: Target) -> None:
    too_big = litellm.client.get("/user/list", params={"page_size": 101})
    assert too_big.status_code == 422
    assert too_big.json() == {"detail": [{"type": "less_than_equal", "loc": ["query", "page_size"],
                                          "msg": "Input should be less than or equal to 100"}]}
    assert litellm.client.get("/user/list", params={"page": 0}).status_code == 422
    assert litellm.client.get("/user/list", params={"page_size": 100}).status_code == 200


def test_user_list_user_ids_semantics(litellm: Target, make: Factory, uid: str) -> None:
    ids = _three_users(make, uid)
    # one id: a case-insensitive *contains* match
    assert _users(litellm, user_ids=f"CT-{uid}".upper())["total"] == 3
    assert [u["user_id"] for u in _users(litellm, user_ids=ids[1])["users"]] == [ids[1]]
    # two or more ids: exact matches only (the bare prefix matches nothing)
    two = _users(litellm, user_ids=f"{ids[0]},{ids[2]}", sort_by="user_id", sort_order="asc")
    assert [u["user_id"] for u in two["users"]] == [ids[0], ids[2]]
    assert [u["user_id"] for u in _users(litellm, user_ids=f"ct-{uid},{ids[1]}")["users"]] == [ids[1]]


def test_user_list_email_filter_and_sorting(litellm: Target, make: Factory, uid: str) -> None:
    ids = _three_users(make, uid)
    assert _users(litellm, user_email=f"CT-{uid}-1@example")["total"] == 1  # contains, any case
    ascending = _users(litellm, user_ids=f"ct-{uid}", sort_by="created_at", sort_order="asc")
    assert [u["user_id"] for u in ascending["users"]] == ids
    bad = litellm.client.get("/user/list", params={"sort_by": "bogus"})
    assert bad.status_code == 400
    assert bad.json() == {"detail": {"error": "Invalid sort column. Must be one of: user_id, user_email, "
                                              "created_at, spend, user_alias, user_role"}}


def test_client_lookups_by_id_and_by_email(litellm: Target, make: Factory, uid: str) -> None:
    # What the targeted read of incremental runs relies on, through the sync's own client.
    ids = [make.user(user_id=f"ct-{uid}-{i:02d}", user_email=f"ct-{uid}-{i:02d}@Example.com")["user_id"]
           for i in range(55)]
    make.user(user_id=f"ct-{uid}-decoy", user_email=f"x.ct-{uid}-07@example.com.au")

    async def lookups() -> tuple[list, list, list, list]:
        async with LiteLLMClient(litellm.base_url, litellm.key) as client:
            return await asyncio.gather(
                client.users_by_id([*ids, f"ct-{uid}-nobody"]),  # two requests of up to 50 ids
                client.users_by_id([f"ct-{uid}-0"]),  # a lone id is a substring to LiteLLM: no match here
                client.users_with_email(f"ct-{uid}-07@example.com"),  # stored in another case, decoy around it
                client.users_with_email(f"ct-{uid}-nobody@example.com"))

    many, lone, email, nobody = asyncio.run(lookups())
    assert sorted(u.user_id for u in many) == ids
    assert lone == [] and nobody == []
    assert [(u.user_id, u.email) for u in email] == [(f"ct-{uid}-07", f"ct-{uid}-07@example.com")]


def test_user_list_team_filter(litellm: Target, make: Factory, uid: str) -> None:
    team_id = make.team(team_id=f"ct-{uid}")["team_id"]
    make.user(user_id=f"ct-u-{uid}", teams=[team_id])
    assert {u["user_id"] for u in _users(litellm, team=team_id)["users"]} == {f"ct-u-{uid}", "default_user_id"}


# ---------------------------------------------------------------------------------------- /user/update


def test_user_update_on_an_unknown_id_creates_the_user(litellm: Target, make: Factory, uid: str) -> None:
    make.track_users(f"ct-{uid}")
    response = litellm.client.post("/user/update", json={"user_id": f"ct-{uid}", "max_budget": 3})
    assert response.status_code == 200
    assert response.json()["user_id"] == f"ct-{uid}"
    row = litellm.user_row(f"ct-{uid}")
    assert row is not None and (row["max_budget"], row["teams"], row["user_role"]) == (3.0, [], None)


def test_user_update_replaces_metadata_but_ignores_empty_values(litellm: Target, make: Factory, uid: str) -> None:
    make.user(user_id=f"ct-{uid}", metadata={"a": 1, "b": 2})
    first = litellm.client.post("/user/update", json={"user_id": f"ct-{uid}", "metadata": {"b": 3}})
    assert first.status_code == 200 and set(first.json()) == {"user_id", "data"}
    assert first.json()["data"]["metadata"] == {"b": 3}
    # unlike /team/update, an empty dict is "no change"
    litellm.client.post("/user/update", json={"user_id": f"ct-{uid}", "metadata": {}})
    assert litellm.user_row(f"ct-{uid}")["metadata"] == {"b": 3}


def test_user_update_by_email_and_its_validation(litellm: Target, make: Factory, uid: str) -> None:
    make.user(user_id=f"ct-{uid}", user_email=f"ct-{uid}@example.com")
    response = litellm.client.post("/user/update", json={"user_email": f"ct-{uid}@example.com", "max_budget": 9})
    assert response.status_code == 200 and response.json()["user_id"] == f"ct-{uid}"
    assert litellm.user_row(f"ct-{uid}")["max_budget"] == 9.0
    neither = litellm.client.post("/user/update", json={"max_budget": 1})
    assert neither.status_code == 422
    assert neither.json() == {"detail": [{"type": "value_error", "loc": ["body"],
                                          "msg": "Value error, Either user id or user email must be provided"}]}


# ---------------------------------------------------------------------------------------- /user/delete


def test_user_delete_answers_a_bare_count_and_is_all_or_nothing(litellm: Target, make: Factory, uid: str) -> None:
    ids = [make.user(user_id=f"ct-{uid}-{i}")["user_id"] for i in range(2)]
    refused = litellm.client.post("/user/delete", json={"user_ids": [ids[0], f"ct-nope-{uid}"]})
    assert refused.status_code == 404
    assert refused.json() == {"detail": {"error": f"User not found, passed user_id=ct-nope-{uid}"}}
    assert litellm.user_row(ids[0]) is not None
    deleted = litellm.client.post("/user/delete", json={"user_ids": ids})
    assert (deleted.status_code, deleted.json()) == (200, 2)
    assert litellm.user_row(ids[0]) is None and litellm.user_row(ids[1]) is None


def test_user_delete_removes_the_user_from_rosters(litellm: Target, make: Factory, uid: str) -> None:
    team_id = make.team(team_id=f"ct-{uid}")["team_id"]
    make.user(user_id=f"ct-u-{uid}", teams=[team_id])
    assert f"ct-u-{uid}" in [m["user_id"] for m in litellm.roster(team_id)]
    assert litellm.client.post("/user/delete", json={"user_ids": [f"ct-u-{uid}"]}).json() == 1
    assert [m["user_id"] for m in litellm.roster(team_id)] == ["default_user_id"]

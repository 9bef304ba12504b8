"""Teams: /team/new, /team/update, block/unblock, /team/delete, /team/info and the two list endpoints."""

from __future__ import annotations

import re
import uuid

from tests.contract.conftest import Factory, Target

MASTER_ADMIN = {"user_id": "default_user_id", "user_email": None, "role": "admin"}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


def test_team_new_returns_the_team_with_the_master_key_as_admin(litellm: Target, make: Factory, uid: str) -> None:
    team = make.team(team_id=f"ct-{uid}", team_alias=f"Contract {uid}", metadata={"owner": "ct", "n": 1},
                     max_budget=10.5, models=["gpt-4o"], tpm_limit=1000)
    assert team["team_id"] == f"ct-{uid}"
    assert team["team_alias"] == f"Contract {uid}"
    assert team["metadata"] == {"owner": "ct", "n": 1}
    assert (team["max_budget"], team["models"], team["tpm_limit"]) == (10.5, ["gpt-4o"], 1000)
    assert team["blocked"] is False
    # the caller is added as team admin; for the master key that is "default_user_id"
    assert team["members_with_roles"] == [MASTER_ADMIN]
    assert TIMESTAMP.match(team["created_at"]) and team["created_at"] == team["updated_at"]


def test_team_new_records_the_team_on_the_default_user_row(litellm: Target, make: Factory, uid: str) -> None:
    team = make.team(team_id=f"ct-{uid}")
    row = litellm.user_row("default_user_id")
    assert row is not None
    assert team["team_id"] in row["teams"]
    assert row["user_role"] == "internal_user"


def test_team_new_without_an_id_generates_a_uuid(litellm: Target, make: Factory, uid: str) -> None:
    team = make.team(team_alias=f"no-id {uid}")
    assert str(uuid.UUID(team["team_id"])) == team["team_id"]


def test_duplicate_team_id_is_400_already_exists(litellm: Target, make: Factory, uid: str) -> None:
    make.team(team_id=f"ct-{uid}")
    response = litellm.client.post("/team/new", json={"team_id": f"ct-{uid}", "team_alias": "again"})
    assert response.status_code == 400
    assert response.json() == {"error": {
        "message": f"{{'error': 'Team id = ct-{uid} already exists. Please use a different team id.'}}",
        "type": "internal_server_error", "param": None, "code": "400"}}


def test_team_new_members_with_roles_creates_users_and_appends_the_admin(
        litellm: Target, make: Factory, uid: str) -> None:
    team = make.team(team_id=f"ct-{uid}", members_with_roles=[
        {"user_id": f"ct-m1-{uid}", "role": "user"}, {"user_id": f"ct-m2-{uid}", "role": "admin"}])
    make.track_users(f"ct-m1-{uid}", f"ct-m2-{uid}")
    # admin members are accepted here without a licence; the caller comes last
    assert team["members_with_roles"] == [
        {"user_id": f"ct-m1-{uid}", "user_email": None, "role": "user"},
        {"user_id": f"ct-m2-{uid}", "user_email": None, "role": "admin"}, MASTER_ADMIN]
    row = litellm.user_row(f"ct-m1-{uid}")
    assert row is not None and row["teams"] == [f"ct-{uid}"] and row["user_role"] == "internal_user"


def test_team_new_validates_field_types(litellm: Target) -> None:
    response = litellm.client.post("/team/new", json={"team_id": 123})
    assert response.status_code == 422
    assert response.json() == {"detail": [
        {"type": "string_type", "loc": ["body", "team_id"], "msg": "Input should be a valid string"}]}


def test_team_update_replaces_metadata_and_answers_team_id_and_data(
        litellm: Target, make: Factory, uid: str) -> None:
    make.team(team_id=f"ct-{uid}", team_alias="before", metadata={"keep": "no", "owner": "a"})
    response = litellm.client.post("/team/update", json={"team_id": f"ct-{uid}", "team_alias": "after",
                                                         "metadata": {"owner": "b"}})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"team_id", "data"} and body["team_id"] == f"ct-{uid}"
    assert body["data"]["metadata"] == {"owner": "b"}  # replaced, not merged
    assert body["data"]["team_alias"] == "after"
    assert body["data"]["members_with_roles"] == [{"role": "admin", "user_id": "default_user_id",
                                                   "user_email": None}]
    info = litellm.client.get("/team/info", params={"team_id": f"ct-{uid}"}).json()["team_info"]
    assert (info["metadata"], info["team_alias"]) == ({"owner": "b"}, "after")
    cleared = litellm.client.post("/team/update", json={"team_id": f"ct-{uid}", "metadata": {}})
    assert cleared.json()["data"]["metadata"] == {}


def test_team_update_leaves_fields_not_sent(litellm: Target, make: Factory, uid: str) -> None:
    make.team(team_id=f"ct-{uid}", team_alias="alias", metadata={"a": 1}, max_budget=5)
    data = litellm.client.post("/team/update", json={"team_id": f"ct-{uid}", "tpm_limit": 7}).json()["data"]
    assert (data["team_alias"], data["metadata"], data["max_budget"], data["tpm_limit"]) == ("alias", {"a": 1}, 5, 7)


def test_team_update_unknown_team_is_404(litellm: Target, uid: str) -> None:
    response = litellm.client.post("/team/update", json={"team_id": f"ct-nope-{uid}", "team_alias": "x"})
    assert response.status_code == 404
    assert response.json() == {"error": {
        "message": f"{{'error': 'Team not found, passed team_id=ct-nope-{uid}'}}",
        "type": "internal_server_error", "param": None, "code": "404"}}


def test_block_and_unblock_are_idempotent(litellm: Target, make: Factory, uid: str) -> None:
    make.team(team_id=f"ct-{uid}")
    for path, expected in (("/team/block", True), ("/team/block", True), ("/team/unblock", False),
                           ("/team/unblock", False)):
        response = litellm.client.post(path, json={"team_id": f"ct-{uid}"})
        assert response.status_code == 200, (path, response.text)
        assert response.json()["team_id"] == f"ct-{uid}" and response.json()["blocked"] is expected
    litellm.client.post("/team/block", json={"team_id": f"ct-{uid}"})
    info = litellm.client.get("/team/info", params={"team_id": f"ct-{uid}"}).json()
    assert info["team_info"]["blocked"] is True


def test_block_unknown_team_is_404(litellm: Target, uid: str) -> None:
    for path in ("/team/block", "/team/unblock"):
        response = litellm.client.post(path, json={"team_id": f"ct-nope-{uid}"})
        assert response.status_code == 404
        assert response.json() == {"detail": {"error": f"Team not found, passed team_id=ct-nope-{uid}"}}


def test_team_delete_is_all_or_nothing(litellm: Target, make: Factory, uid: str) -> None:
    first, second = make.team(team_id=f"ct-a-{uid}")["team_id"], make.team(team_id=f"ct-b-{uid}")["team_id"]
    refused = litellm.client.post("/team/delete", json={"team_ids": [first, f"ct-nope-{uid}"]})
    assert refused.status_code == 404
    assert refused.json() == {"detail": {"error": f"Team not found, passed team_id=ct-nope-{uid}"}}
    assert litellm.client.get("/team/info", params={"team_id": first}).status_code == 200  # nothing deleted
    deleted = litellm.client.post("/team/delete", json={"team_ids": [first, second]})
    assert (deleted.status_code, deleted.json()) == (200, {"deleted_teams": [first, second]})
    gone = litellm.client.get("/team/info", params={"team_id": first})
    assert gone.status_code == 404
    assert gone.json() == {"error": {"message": f"{{'message': 'Team not found, passed team id: {first}.'}}",
                                     "type": "auth_error", "param": "None", "code": "404"}}
    empty = litellm.client.post("/team/delete", json={"team_ids": []})
    assert (empty.status_code, empty.json()) == (200, {"deleted_teams": []})


def test_team_delete_removes_the_team_from_its_members(litellm: Target, make: Factory, uid: str) -> None:
    team_id = make.team(team_id=f"ct-{uid}")["team_id"]
    make.user(user_id=f"ct-u-{uid}", teams=[team_id])
    assert litellm.user_row(f"ct-u-{uid}")["teams"] == [team_id]
    litellm.client.post("/team/delete", json={"team_ids": [team_id]})
    row = litellm.user_row(f"ct-u-{uid}")
    assert row is not None and row["teams"] == []  # the user survives, without the team
    assert team_id not in litellm.user_row("default_user_id")["teams"]


def test_team_info_shape_and_missing_team_id(litellm: Target, make: Factory, uid: str) -> None:
    make.team(team_id=f"ct-{uid}")
    body = litellm.client.get("/team/info", params={"team_id": f"ct-{uid}"}).json()
    assert set(body) == {"team_id", "team_info", "keys", "team_memberships"}
    assert body["team_info"]["members_with_roles"] == [{**MASTER_ADMIN, "user_alias": None}]
    assert [m["user_id"] for m in body["team_memberships"]] == ["default_user_id"]
    missing = litellm.client.get("/team/info")
    assert missing.status_code == 422
    assert missing.json()["error"]["message"] == "{'message': 'Malformed request. No team id passed in.'}"


# ---------------------------------------------------------------------------------------- lists


def _three_teams(make: Factory, uid: str) -> list[str]:
    return [make.team(team_id=f"ct-{uid}-{i}", team_alias=f"CtList {uid} {i}")["team_id"] for i in range(3)]


def _v2(litellm: Target, **params: object) -> dict:
    response = litellm.client.get("/v2/team/list", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_v2_team_list_pages_newest_first(litellm: Target, make: Factory, uid: str) -> None:
    ids = _three_teams(make, uid)
    first = _v2(litellm, team_alias=f"CtList {uid}", page_size=2)
    assert {k: first[k] for k in ("total", "page", "page_size", "total_pages")} == {
        "total": 3, "page": 1, "page_size": 2, "total_pages": 2}
    assert [t["team_id"] for t in first["teams"]] == [ids[2], ids[1]]
    second = _v2(litellm, team_alias=f"CtList {uid}", page=2, page_size=2)
    assert [t["team_id"] for t in second["teams"]] == [ids[0]]
    past = _v2(litellm, team_alias=f"CtList {uid}", page=3, page_size=2)
    assert (past["teams"], past["total"], past["total_pages"]) == ([], 3, 2)


def test_v2_team_list_items_carry_roster_and_counts(litellm: Target, make: Factory, uid: str) -> None:
    team_id = make.team(team_id=f"ct-{uid}", team_alias=f"CtItem {uid}")["team_id"]
    make.user(user_id=f"ct-u-{uid}", teams=[team_id])
    (item,) = _v2(litellm, team_id=team_id)["teams"]
    assert [m["user_id"] for m in item["members_with_roles"]] == ["default_user_id", f"ct-u-{uid}"]
    assert item["members_count"] == 2 and item["keys_count"] == 0


def test_v2_team_list_page_size_is_1_to_100(litellm: Target, make: Factory, uid: str) -> None:
    _three_teams(make, uid)
    assert len(_v2(litellm, team_alias=f"CtList {uid}", page_size=100)["teams"]) == 3
    too_big = litellm.client.get("/v2/team/list", params={"page_size": 101})
    assert too_big.status_code == 422
    assert too_big.json() == {"detail": [{"type": "less_than_equal", "loc": ["query", "page_size"],
                                          "msg": "Input should be less than or equal to 100"}]}
    for params, loc in (({"page": 0}, "page"), ({"page_size": 0}, "page_size")):
        response = litellm.client.get("/v2/team/list", params=params)
        assert response.status_code == 422
        assert response.json() == {"detail": [{"type": "greater_than_equal", "loc": ["query", loc],
                                               "msg": "Input should be greater than or equal to 1"}]}


def test_v2_team_list_sorting(litellm: Target, make: Factory, uid: str) -> None:
    ids = _three_teams(make, uid)
    alias = f"CtList {uid}"
    assert [t["team_id"] for t in _v2(litellm, team_alias=alias, sort_by="created_at",
                                      sort_order="asc")["teams"]] == ids
    assert [t["team_id"] for t in _v2(litellm, team_alias=alias, sort_by="team_id",
                                      sort_order="desc")["teams"]] == ids[::-1]
    # an unknown sort column is ignored: the default, newest first
    assert [t["team_id"] for t in _v2(litellm, team_alias=alias, sort_by="bogus")["teams"]] == ids[::-1]


def test_v2_team_list_filters(litellm: Target, make: Factory, uid: str) -> None:
    ids = _three_teams(make, uid)
    make.user(user_id=f"ct-u-{uid}", teams=[ids[1]])
    assert [t["team_id"] for t in _v2(litellm, team_id=ids[0])["teams"]] == [ids[0]]
    assert _v2(litellm, team_id=ids[0][:-1])["total"] == 0  # team_id is an exact match
    assert _v2(litellm, team_alias=f"ctlist {uid}".upper())["total"] == 3  # alias: contains, any case
    assert [t["team_id"] for t in _v2(litellm, user_id=f"ct-u-{uid}")["teams"]] == [ids[1]]
    unknown = litellm.client.get("/v2/team/list", params={"user_id": f"ct-nobody-{uid}"})
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": {"error": f"User not found, passed user_id=ct-nobody-{uid}"}}


def test_legacy_team_list_is_an_unpaged_array(litellm: Target, make: Factory, uid: str) -> None:
    team_id = make.team(team_id=f"ct-{uid}")["team_id"]
    make.user(user_id=f"ct-u-{uid}", teams=[team_id])
    response = litellm.client.get("/team/list", params={"user_id": f"ct-u-{uid}"})
    assert response.status_code == 200
    (team,) = response.json()
    assert team["team_id"] == team_id
    assert [m["user_id"] for m in team["team_memberships"]] == [f"ct-u-{uid}"]


def test_team_new_with_an_unknown_organization_is_400_and_creates_nothing(litellm: Target, uid: str) -> None:
    response = litellm.client.post("/team/new", json={"team_id": f"ct-{uid}", "organization_id": f"ct-org-{uid}"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == f"Organization not found for organization_id=ct-org-{uid}"
    assert litellm.client.get("/team/info", params={"team_id": f"ct-{uid}"}).status_code == 404
    assert _v2(litellm, organization_id=f"ct-org-{uid}")["total"] == 0

"""Authentication: the four 401 bodies, the accepted headers, and what needs no key."""

from __future__ import annotations

import uuid

import pytest

from tests.contract.conftest import Factory, Target

INVALID_KEY_BODY = {"error": {"message": "Authentication Error, Invalid API key provided.",
                              "type": "token_not_found_in_db", "param": "key", "code": "401"}}


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/team/new", {"team_alias": "never-created"}),
    ("POST", "/user/new", {"user_id": "never-created"}),
    ("GET", "/v2/team/list", None),
])
def test_wrong_key_is_401_token_not_found(litellm: Target, method: str, path: str, body: dict | None) -> None:
    wrong = f"sk-wrong-{uuid.uuid4().hex}"
    with litellm.unauthenticated() as client:
        response = client.request(method, path, json=body, headers={"Authorization": f"Bearer {wrong}"})
    assert response.status_code == 401
    assert response.json() == INVALID_KEY_BODY


def test_auth_is_checked_before_the_body_and_query(litellm: Target) -> None:
    with litellm.unauthenticated() as client:
        bad_body = client.post("/team/delete", json={}, headers={"Authorization": "Bearer sk-wrong"})
        bad_query = client.get("/v2/team/list", params={"page_size": 101},
                               headers={"Authorization": "Bearer sk-wrong"})
    assert (bad_body.status_code, bad_query.status_code) == (401, 401)


def test_missing_key_is_401(litellm: Target) -> None:
    with litellm.unauthenticated() as client:
        response = client.get("/team/list")
    assert response.status_code == 401
    assert response.json() == {"error": {"message": "Authentication Error, No api key passed in.",
                                         "type": "auth_error", "param": "None", "code": "401"}}


def test_key_without_bearer_prefix_is_401_malformed(litellm: Target) -> None:
    with litellm.unauthenticated() as client:
        response = client.get("/team/list", headers={"Authorization": litellm.key})
    assert response.status_code == 401
    assert response.json()["error"] == {
        "message": "Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix.",
        "type": "auth_error", "param": "None", "code": "401"}


def test_key_not_starting_with_sk_is_401_and_masked(litellm: Target) -> None:
    with litellm.unauthenticated() as client:
        response = client.get("/team/list", headers={"Authorization": "Bearer not-a-key"})
    assert response.status_code == 401
    assert response.json()["error"] == {
        "message": "LiteLLM Virtual Key expected. Received=not-****-key, expected to start with 'sk-'.",
        "type": "auth_error", "param": "None", "code": "401"}


def test_x_litellm_api_key_header_is_accepted_and_wins(litellm: Target) -> None:
    with litellm.unauthenticated() as client:
        alone = client.get("/v2/team/list", params={"page_size": 1}, headers={"x-litellm-api-key": litellm.key})
        # x-litellm-api-key takes precedence over a valid Authorization header
        overridden = client.get("/v2/team/list", headers={"Authorization": f"Bearer {litellm.key}",
                                                          "x-litellm-api-key": "sk-wrong"})
    assert alone.status_code == 200
    assert set(alone.json()) == {"teams", "total", "page", "page_size", "total_pages"}
    assert overridden.status_code == 401


def test_readiness_needs_no_key(litellm: Target) -> None:
    with litellm.unauthenticated() as client:
        response = client.get("/health/readiness")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


def test_unknown_route_404_and_wrong_method_405_come_before_auth(litellm: Target) -> None:
    with litellm.unauthenticated() as client:
        missing = client.get(f"/no/such/route/{uuid.uuid4().hex}")
        wrong_method = client.get("/team/new")
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    assert (wrong_method.status_code, wrong_method.json()) == (405, {"detail": "Method Not Allowed"})


def test_internal_user_key_is_not_admin(litellm: Target, make: Factory, uid: str) -> None:
    user_id = f"ct-lowpriv-{uid}"
    response = litellm.client.post("/user/new", json={"user_id": user_id, "user_role": "internal_user"})
    assert response.status_code == 200, response.text
    make.track_users(user_id)
    key = response.json()["key"]
    with litellm.unauthenticated() as client:
        headers = {"Authorization": f"Bearer {key}"}
        create = client.post("/team/new", json={"team_alias": "never-created"}, headers=headers)
        users = client.get("/user/list", headers=headers)
        own = client.get("/user/info", params={"user_id": user_id}, headers=headers)
    masked = f"{user_id[:6]}{'*' * (len(user_id) - 8)}{user_id[-2:]}"
    assert create.status_code == 401
    assert create.json()["error"]["message"] == (
        "Authentication Error, Only proxy admin can be used to generate, delete, update info for new "
        f"keys/users/teams. Route=/team/new. Your role=internal_user. Your user_id={masked}")
    assert users.status_code == 403
    assert users.json() == {"detail": {"error": "Only proxy admins and organization admins can list users."}}
    assert own.status_code == 200 and own.json()["user_id"] == user_id


def test_team_admin_key_rules(litellm: Target, make: Factory, uid: str) -> None:
    admin_id = f"ct-tadmin-{uid}"
    response = litellm.client.post("/user/new", json={"user_id": admin_id, "user_role": "internal_user"})
    assert response.status_code == 200, response.text
    make.track_users(admin_id)
    team_id = make.team(team_id=f"ct-{uid}", members_with_roles=[{"user_id": admin_id, "role": "admin"}])["team_id"]
    with litellm.unauthenticated() as client:
        client.headers["Authorization"] = f"Bearer {response.json()['key']}"
        info = client.get("/team/info", params={"team_id": team_id})
        update = client.post("/team/update", json={"team_id": team_id, "team_alias": "by team admin"})
        by_id = client.post("/team/member_add", json={"team_id": team_id,
                                                      "member": {"user_id": f"ct-new-{uid}", "role": "user"}})
        by_mail = client.post("/team/member_add", json={
            "team_id": team_id, "member": {"user_email": f"ct-new-{uid}@example.com", "role": "user"}})
        elsewhere = client.post("/team/update", json={"team_id": f"ct-nope-{uid}", "team_alias": "x"})
    assert info.status_code == 200
    assert info.json()["team_info"]["caller_edit_access"] == {"kind": "team_admin_disabled"}
    assert update.status_code == 403
    assert update.json()["error"]["message"].startswith("Team admins on this proxy cannot edit team settings.")
    # a team admin may invite by e-mail but may not mint a user_id
    assert by_id.status_code == 403
    assert by_id.json()["detail"]["error"].startswith(
        f"Only proxy admins can add a user_id that does not exist yet: ct-new-{uid}. ")
    assert by_mail.status_code == 200, by_mail.text
    make.track_users(*(u["user_id"] for u in by_mail.json()["updated_users"]))
    # without access, an unknown team is a 403, not a 404
    assert (elsewhere.status_code, elsewhere.json()["error"]["message"]) == (403, "You do not have access to this team")


@pytest.mark.parametrize("role", ["proxy_admin", "proxy_admin_viewer", "internal_user"])
def test_key_info_and_readiness_details_say_who_the_key_is(litellm: Target, make: Factory, uid: str,
                                                            role: str) -> None:
    """What `doctor` reads: the master key is not in the key table (404); any other key's row names
    its user; 1.108.7 tells its version to proxy admins and admin viewers only."""
    master = litellm.client.get("/key/info")
    assert master.status_code == 404 and master.json()["error"]["message"] == "Key not found in database"
    details = litellm.client.get("/health/readiness/details")
    assert details.status_code == 200 and details.json()["litellm_version"]
    user_id = f"ct-keyinfo-{role}-{uid}"
    response = litellm.client.post("/user/new", json={"user_id": user_id, "user_role": role})
    assert response.status_code == 200, response.text
    make.track_users(user_id)
    with litellm.unauthenticated() as client:
        headers = {"Authorization": f"Bearer {response.json()['key']}"}
        own = client.get("/key/info", headers=headers)
        user = client.get("/user/info", params={"user_id": user_id}, headers=headers)
        details = client.get("/health/readiness/details", headers=headers)
    assert own.status_code == 200 and own.json()["info"]["user_id"] == user_id
    assert user.json()["user_info"]["user_role"] == role
    if role == "internal_user":
        assert details.status_code == 401 and "Only proxy admin" in details.json()["error"]["message"]
    else:
        assert details.status_code == 200 and details.json()["litellm_version"]

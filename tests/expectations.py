"""What LiteLLM must look like for a tenant, and LiteLLM's actual state read back over its API.

Both sides are computed independently of sync_core: the expectation from the tenant document
with its own recursion, the actual state with raw HTTP calls. The same check serves the
emulator and the real proxy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tests.proxy_http import proxy_client


@dataclass(frozen=True)
class Expected:
    teams: dict[str, str]  # team_id -> alias
    members: dict[str, set[str]]  # team_id -> user ids with role user
    emails: dict[str, str]  # user_id -> e-mail, for every user the sync must have created


def expected_state(tenant: dict[str, Any], *, nested: bool = True, email_attribute: str = "userPrincipalName") -> Expected:
    users = {u["id"]: u for u in tenant["users"]}
    groups = {g["id"]: g for g in tenant["groups"]}

    def user_members(group_id: str, seen: frozenset[str]) -> set[str]:
        found: set[str] = set()
        for member in groups[group_id]["members"]:
            if member in users:
                found.add(member)
            elif member in groups and nested and member not in seen:
                found |= user_members(member, seen | {member})
        return found

    def email(user: dict[str, Any]) -> str:
        upn, mail = (user.get("userPrincipalName") or "").lower(), (user.get("mail") or "").lower()
        return (mail or upn) if email_attribute == "mail" else (upn or mail)

    def provisioned(user_id: str) -> bool:
        return users[user_id]["accountEnabled"] and bool(email(users[user_id]))

    assigned = [a for a in tenant["assignments"] if a["principalType"] == "Group"]
    teams = {a["principalId"]: groups[a["principalId"]]["displayName"] for a in assigned}
    members = {t: {u for u in user_members(t, frozenset({t})) if provisioned(u)} for t in teams}
    direct = {a["principalId"] for a in tenant["assignments"] if a["principalType"] == "User"}
    everyone = set().union(*members.values(), {u for u in direct if provisioned(u)})
    return Expected(teams, members, {u: email(users[u]) for u in everyone})


class LiteLLMReadback:
    """LiteLLM's teams and users, read with plain HTTP calls."""

    def __init__(self, base_url: str, key: str) -> None:
        self._http = proxy_client(base_url, key)  # a real proxy's transient answers are retried

    def _pages(self, path: str, field: str, key: str) -> list[dict[str, Any]]:
        # Sorted by the unique id: rows one bulk request wrote share created_at, the default order,
        # and ties have no stable order across pages.
        rows, page = [], 1
        while True:
            params = {"page": page, "page_size": 100, "sort_by": key, "sort_order": "asc"}
            body = self._http.get(path, params=params).raise_for_status().json()
            rows += body[field]
            if page >= body["total_pages"]:
                return rows
            page += 1

    # ``ensure``: ids looked up directly where the listing missed them. Paging by offset skips rows
    # when other tests write to the same (real) proxy meanwhile; a lookup by id does not.

    def teams(self, ensure: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
        teams = {t["team_id"]: t for t in self._pages("/v2/team/list", "teams", "team_id")}
        for team_id in set(ensure) - teams.keys():
            body = self._http.get("/v2/team/list", params={"team_id": team_id}).raise_for_status().json()
            teams.update({t["team_id"]: t for t in body["teams"] if t["team_id"] == team_id})
        return teams

    def users(self, ensure: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
        users = {u["user_id"]: u for u in self._pages("/user/list", "users", "user_id")}
        missing = sorted(set(ensure) - users.keys())
        for chunk in (missing[i:i + 50] for i in range(0, len(missing), 50)):
            params = {"user_ids": ",".join(chunk), "page_size": 100}
            body = self._http.get("/user/list", params=params).raise_for_status().json()
            users.update({u["user_id"]: u for u in body["users"] if u["user_id"] in chunk})
        return users

    def forget(self, user_ids: list[str], team_ids: list[str]) -> None:
        """Deletes what a test made in a shared proxy, which keeps it otherwise: every full read of
        the tests after it would list it again. By the bulk route, 500 a request, where the proxy
        has it (1.108.7; an unknown id fails its row only), else by /user/delete (1.80.0)."""
        if team_ids:
            self._http.post("/team/delete", json={"team_ids": team_ids})
        for i in range(0, len(user_ids), 500):
            answer = self._http.post("/management/v1/users/bulk_delete", json={"user_ids": user_ids[i:i + 500]})
            if answer.status_code == 404:
                break
        else:
            return
        for i in range(0, len(user_ids), 100):  # an id it does not hold fails the whole request
            params = {"user_ids": ",".join(user_ids[i:i + 100]), "page_size": 100}
            held = [u["user_id"] for u in self._http.get("/user/list", params=params).json().get("users", [])]
            if held:
                self._http.post("/user/delete", json={"user_ids": held})

    def user_members(self, team: dict[str, Any]) -> set[str]:
        return {m["user_id"] for m in team["members_with_roles"] if m["role"] == "user"}


def assert_in_sync(expected: Expected, readback: LiteLLMReadback) -> None:
    teams, users = readback.teams(expected.teams), readback.users(expected.emails)
    for team_id, alias in expected.teams.items():
        assert team_id in teams, f"team {alias} ({team_id}) missing"
        team = teams[team_id]
        assert team["team_alias"] == alias
        assert team["metadata"]["entra_sync"]["group_id"] == team_id
        assert not team["blocked"]
        assert readback.user_members(team) == expected.members[team_id], alias
    for user_id, email in expected.emails.items():
        assert user_id in users, f"user {email} missing"
        assert (users[user_id]["user_email"] or "").lower() == email

"""Users: the user table, /user/new, /user/update, /user/delete and /user/list."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emulators.litellm.state.base import StateBase, has_email, page_of, sorted_rows
from emulators.litellm.state.clock import budget_reset_at
from emulators.litellm.state.errors import CreatedByEmailQuirk, NotTeamMember, UserExists, UserNotFound

USER_ROLES = ("proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer")
USER_SORT_COLUMNS = ("user_id", "user_email", "created_at", "spend", "user_alias", "user_role")

USER_FIELDS = (
    "user_email",
    "user_alias",
    "user_role",
    "sso_user_id",
    "max_budget",
    "budget_duration",
    "models",
    "metadata",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
)


@dataclass
class UserQuery:
    page: int = 1
    page_size: int = 25
    role: str | None = None
    user_ids: str | None = None
    sso_user_ids: str | None = None
    user_email: str | None = None
    team: str | None = None
    organization_ids: str | None = None
    search: str | None = None
    sort_by: str | None = None
    sort_order: str = "asc"


def _new_user_row(user_id: str, stamp: str) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "user_alias": None,
        "team_id": None,
        "sso_user_id": None,
        "organization_id": None,
        "object_permission_id": None,
        "password_reset_required": None,
        "last_breach_check_at": None,
        "teams": [],
        "user_role": None,
        "max_budget": None,
        "spend": 0.0,
        "user_email": None,
        "models": [],
        "metadata": {},
        "max_parallel_requests": None,
        "tpm_limit": None,
        "rpm_limit": None,
        "budget_duration": None,
        "budget_reset_at": None,
        "allowed_cache_controls": [],
        "policies": [],
        "model_spend": {},
        "model_max_budget": {},
        "created_at": stamp,
        "updated_at": stamp,
        "organization_memberships": None,
        "object_permission": None,
    }


class UserState(StateBase):
    """User operations (mixed into LiteLLMState)."""

    def seed_user(self, user_id: str, user_email: str | None = None, **fields: Any) -> dict[str, Any]:
        """Create a user row directly (no key, no teams unless given)."""
        with self.lock, self._operation():
            row = self._create_user(user_id, user_email=user_email, **fields)
            return copy.deepcopy(row)

    def new_user(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], str | None, list[str] | None]:
        """/user/new: returns (user row, the new key or None, the user's teams if any were asked)."""
        with self.lock, self._operation():
            self._check_unique_user(data.get("user_id"), data.get("user_email"))
            user_id = data.get("user_id") or str(uuid.uuid4())
            fields = {k: data[k] for k in USER_FIELDS if data.get(k) is not None}
            row = self._create_user(user_id, **fields)
            wants_key = data.get("auto_create_key", True)
            secret = self._new_key(user_id, data.get("models") or []) if wants_key else None
            asked = self._join_requested_teams(row, data)
            teams = list(self.users[user_id]["teams"]) if asked else None
            return copy.deepcopy(self.users[user_id]), secret, teams

    def user(self, user_id: str) -> dict[str, Any]:
        with self.lock:
            if user_id not in self.users:
                raise UserNotFound(user_id)
            return copy.deepcopy(self.users[user_id])

    def check_team_list_user(self, user_id: str, team_id: str | None) -> bool:
        """The real /v2/team/list checks the user_id filter up front: False means 'no teams at all'."""
        with self.lock:
            user = self.users.get(user_id)
            if user is None:
                raise UserNotFound(user_id)
            if not user["teams"]:
                return False
            if team_id is not None and team_id not in user["teams"]:
                raise NotTeamMember(team_id)
            return True

    def list_users(self, query: UserQuery) -> tuple[list[dict[str, Any]], int]:
        with self.lock:
            rows = self._listing(query, lambda: self._user_rows(query))
            return copy.deepcopy(page_of(rows, query.page, query.page_size)), len(rows)

    def _user_rows(self, query: UserQuery) -> list[dict[str, Any]]:
        matches = _user_filter(query)
        rows = [u for u in self.users.values() if matches(u)]
        if query.sort_by is not None:
            return sorted_rows(rows, query.sort_by, query.sort_order.lower(), self._user_position)
        return sorted_rows(rows, "created_at", "desc", self._user_position)

    def update_user(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """/user/update: an unknown user_id is created (upsert); empty values are not written."""
        with self.lock, self._operation():
            changes = _user_changes(data)
            user_id = data.get("user_id")
            if user_id:
                row = self.users.get(user_id) or self._create_user(user_id)
            else:
                email = data["user_email"]
                found = sorted(
                    (u for u in self.users.values() if has_email(u, email, fold=False)),
                    key=self._user_position,
                )  # the real proxy updates the first match in table order
                if not found:
                    created = self._create_user(str(uuid.uuid4()), **{**changes, "user_email": email})
                    raise CreatedByEmailQuirk(created["user_id"])
                row = found[0]
            self._apply_user_fields(row, changes)
            self._touch("user", row)
            return copy.deepcopy(row)

    def delete_users(self, user_ids: Sequence[str]) -> int:
        """All or nothing; removes the users from every roster and deletes their keys."""
        with self.lock, self._operation():
            for user_id in user_ids:
                if user_id not in self.users:
                    raise UserNotFound(user_id)
            for user_id in dict.fromkeys(user_ids):
                self._drop_user(user_id)
            return len(user_ids)

    def _user_position(self, row: Mapping[str, Any]) -> int:
        return self._heap[f"user:{row['user_id']}"]

    def _check_unique_user(self, user_id: str | None, user_email: str | None) -> None:
        if user_id and user_id.strip() in self.users:
            raise UserExists("id", user_id.strip())
        if user_email:
            holders = self._by_email.get(user_email.strip().lower())
            if holders:
                raise UserExists("email", self.users[min(holders)]["user_email"])

    def _create_user(self, user_id: str, **fields: Any) -> dict[str, Any]:
        row = self.users.get(user_id)
        if row is None:
            row = _new_user_row(user_id, self._stamp())
            self.users[user_id] = row
        self._apply_user_fields(row, fields)
        self._touch("user", row)
        return row

    @staticmethod
    def _apply_user_fields(row: dict[str, Any], fields: Mapping[str, Any]) -> None:
        for name, value in fields.items():
            row[name] = copy.deepcopy(value)
        if "budget_duration" in fields:
            row["budget_reset_at"] = budget_reset_at(fields["budget_duration"])

    def _drop_user(self, user_id: str) -> None:
        del self.users[user_id]
        self._index_email(user_id, None)
        self._heap.pop(f"user:{user_id}", None)
        self._drop_keys(lambda k: k["user_id"] == user_id)
        for key in [k for k in self.memberships if k[1] == user_id]:
            del self.memberships[key]
        for team in self.teams.values():
            if any(e["user_id"] == user_id for e in team["members_with_roles"]):
                team["members_with_roles"] = [
                    e for e in team["members_with_roles"] if e["user_id"] != user_id
                ]
                self._touch("team", team)


def _user_filter(query: UserQuery) -> Callable[[Mapping[str, Any]], bool]:
    """The query's filters, parsed once for the whole table."""
    ids = [i.strip() for i in (query.user_ids or "").split(",") if i.strip()]
    id_set = set(ids)
    sso_ids = {i.strip() for i in (query.sso_user_ids or "").split(",") if i.strip()}
    email = query.user_email.lower() if query.user_email is not None else None
    organizations = any(i.strip() for i in (query.organization_ids or "").split(","))
    needle = query.search.lower() if query.search else None

    def matches(row: Mapping[str, Any]) -> bool:
        if query.role and row["user_role"] != query.role:
            return False
        # one id is a case-insensitive *contains* match, two or more an exact `in`
        if len(ids) == 1 and ids[0].lower() not in row["user_id"].lower():
            return False
        if len(ids) > 1 and row["user_id"] not in id_set:
            return False
        if query.sso_user_ids and row["sso_user_id"] not in sso_ids:
            return False
        if email is not None and (row["user_email"] is None or email not in row["user_email"].lower()):
            return False
        if query.team is not None and query.team not in row["teams"]:
            return False
        if organizations:
            return False  # no organizations here, so no user is a member of one
        if needle:
            return needle in row["user_id"].lower() or needle in (row["user_email"] or "").lower()
        return True

    return matches


def _user_changes(data: Mapping[str, Any]) -> dict[str, Any]:
    """What /user/update writes: budget and limit fields when sent (even null), others only when
    non-empty, so ``metadata: {}`` leaves the metadata as it was."""
    changes: dict[str, Any] = {}
    for name in USER_FIELDS:
        if name not in data:
            continue
        value = data[name]
        always = name in ("max_budget", "budget_duration", "tpm_limit", "rpm_limit")
        if always or (value is not None and value != [] and value != {}):
            changes[name] = value
    return changes

"""Teams: the team table, /team/new, /team/update, block, delete, and the team listings."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emulators.litellm.state.base import MASTER_USER_ID, StateBase, page_of, sorted_rows
from emulators.litellm.state.clock import budget_reset_at
from emulators.litellm.state.errors import (
    InvalidBudget,
    NoModelsConfigured,
    OrganizationNotFound,
    TeamExists,
    TeamNotFound,
)
from emulators.litellm.state.members import Member

TEAM_SORT_COLUMNS = ("team_id", "team_alias", "created_at")

# Fields a caller may set on /team/new and /team/update (anything else is accepted and ignored).
TEAM_FIELDS = (
    "team_alias",
    "organization_id",
    "metadata",
    "tpm_limit",
    "rpm_limit",
    "tpd_limit",
    "max_budget",
    "soft_budget",
    "budget_duration",
    "models",
    "blocked",
    "max_parallel_requests",
)


@dataclass
class TeamQuery:
    page: int = 1
    page_size: int = 10
    team_id: str | None = None
    team_alias: str | None = None
    user_id: str | None = None
    organization_id: str | None = None
    sort_by: str | None = None
    sort_order: str = "asc"
    deleted: bool = False


def _new_team_row(team_id: str, stamp: str) -> dict[str, Any]:
    return {
        "team_alias": None,
        "team_id": team_id,
        "organization_id": None,
        "admins": [],
        "members": [],
        "members_with_roles": [],
        "team_member_permissions": [],
        "metadata": {},
        "tpm_limit": None,
        "rpm_limit": None,
        "tpd_limit": None,
        "max_budget": None,
        "soft_budget": None,
        "budget_duration": None,
        "budget_limits": None,
        "models": [],
        "blocked": False,
        "router_settings": {},
        "access_group_ids": [],
        "default_team_member_models": [],
        "spend": 0.0,
        "max_parallel_requests": None,
        "budget_reset_at": None,
        "model_id": None,
        "model_spend": {},
        "model_max_budget": {},
        "policies": [],
        "allow_team_guardrail_config": False,
        "litellm_model_table": None,
        "object_permission": None,
        "object_permission_id": None,
        "updated_at": stamp,
        "created_at": stamp,
    }


class TeamState(StateBase):
    """Team operations (mixed into LiteLLMState)."""

    def seed_team(
        self,
        team_id: str,
        team_alias: str | None = None,
        members: Iterable[Any] = (),
        metadata: Mapping[str, Any] | None = None,
        blocked: bool = False,
        *,
        with_default_admin: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create a team with members (user_id strings or member dicts), as member_add would have left it.

        Missing member users are created like member_add creates them. No default_user_id admin
        is added unless ``with_default_admin``.
        """
        with self.lock, self._operation():
            if team_id in self.teams:
                raise TeamExists(team_id)
            team = self._insert_team(
                team_id,
                {"team_alias": team_alias, "metadata": dict(metadata or {}), "blocked": blocked, **fields},
            )
            wanted = [Member(m) if isinstance(m, str) else Member.from_entry(m) for m in members]
            if with_default_admin:
                wanted.append(Member(MASTER_USER_ID, None, "admin"))
            for member in wanted:
                self._resolve_member(member)
            self._link_members(team, wanted)
            return copy.deepcopy(team)

    # ------------------------------------------------------------------ teams

    def new_team(self, data: Mapping[str, Any], caller_id: str | None) -> dict[str, Any]:
        with self.lock, self._operation():
            _check_budgets(data)
            team_id = data.get("team_id") or str(uuid.uuid4())
            if team_id in self.teams:
                raise TeamExists(team_id)
            if data.get("organization_id") is not None:
                raise OrganizationNotFound(data["organization_id"])
            wanted = [Member.from_entry(m) for m in data.get("members_with_roles") or []]
            if caller_id is not None:  # the caller becomes team admin; for the master key, default_user_id
                wanted.append(Member(caller_id, None, "admin"))
            for member in wanted:  # before the insert, so a bad member leaves no team behind
                self._resolve_member(member)
            team = self._insert_team(team_id, {k: data[k] for k in TEAM_FIELDS if k in data})
            self._link_members(team, wanted)
            return copy.deepcopy(team)

    def update_team(self, team_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Only the fields sent change; metadata is replaced as a whole (null included)."""
        with self.lock, self._operation():
            team = self._team(team_id)
            _check_budgets(changes)
            if changes.get("organization_id") is not None:
                raise NoModelsConfigured()
            self._apply_team_fields(team, {k: changes[k] for k in TEAM_FIELDS if k in changes})
            self._touch("team", team)
            return copy.deepcopy(team)

    def set_blocked(self, team_id: str, blocked: bool) -> dict[str, Any]:
        return self.update_team(team_id, {"blocked": blocked})

    def delete_teams(self, team_ids: Sequence[str]) -> list[str]:
        """All or nothing: one unknown id and no team is deleted."""
        with self.lock, self._operation():
            for team_id in team_ids:
                self._team(team_id)
            for team_id in team_ids:
                if team_id in self.teams:
                    self._drop_team(team_id)
            return list(team_ids)

    def team(self, team_id: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self._team(team_id))

    def team_memberships(self, team_id: str, user_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                copy.deepcopy(row)
                for (tid, uid), row in self.memberships.items()
                if tid == team_id and (user_id is None or uid == user_id)
            ]

    def list_teams(self, query: TeamQuery) -> tuple[list[dict[str, Any]], int]:
        """/v2/team/list: filter, order (newest first by default), then one page."""
        with self.lock:
            rows = self._listing(query, lambda: self._team_rows(query))
            return copy.deepcopy(page_of(rows, query.page, query.page_size)), len(rows)

    def _team_rows(self, query: TeamQuery) -> list[dict[str, Any]]:
        source = self.deleted_teams if query.deleted else list(self.teams.values())
        rows = [t for t in source if self._team_matches(t, query)]
        heap = (
            (lambda r: self._heap[f"deleted:{r['id']}"])
            if query.deleted
            else (lambda r: self._heap[f"team:{r['team_id']}"])
        )
        column, order = "created_at", "desc"  # the default, also for an unknown sort_by
        if query.sort_by in TEAM_SORT_COLUMNS:
            column = query.sort_by
            order = query.sort_order.lower() if query.sort_order.lower() in ("asc", "desc") else "asc"
        return sorted_rows(rows, column, order, heap)

    def legacy_team_list(self, user_id: str | None) -> list[dict[str, Any]]:
        """/team/list: every team in the table's physical order (no ORDER BY), optionally only
        those whose roster names ``user_id``."""
        with self.lock:
            teams = [
                t
                for t in self.teams.values()
                if user_id is None or any(m["user_id"] == user_id for m in t["members_with_roles"])
            ]
            teams.sort(key=lambda t: self._heap[f"team:{t['team_id']}"])
            return copy.deepcopy(teams)

    def _team(self, team_id: str) -> dict[str, Any]:
        team = self.teams.get(team_id)
        if team is None:
            raise TeamNotFound(team_id)
        return team

    def _insert_team(self, team_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        team = _new_team_row(team_id, self._stamp())
        self._apply_team_fields(team, fields)
        self.teams[team_id] = team
        self._touch("team", team)
        return team

    @staticmethod
    def _apply_team_fields(team: dict[str, Any], fields: Mapping[str, Any]) -> None:
        for name, value in fields.items():
            if name == "models":
                value = list(value or [])
            elif name == "blocked":
                value = bool(value)
            team[name] = copy.deepcopy(value)
        if "budget_duration" in fields:
            team["budget_reset_at"] = budget_reset_at(fields["budget_duration"])

    def _team_matches(self, team: Mapping[str, Any], query: TeamQuery) -> bool:
        if query.team_id and team["team_id"] != query.team_id:
            return False
        if query.organization_id and team.get("organization_id") != query.organization_id:
            return False
        alias = team.get("team_alias")
        if query.team_alias and (alias is None or query.team_alias.lower() not in alias.lower()):
            return False
        if query.user_id:
            if query.deleted:
                return query.user_id in team.get("members", [])
            user = self.users.get(query.user_id)
            return user is not None and team["team_id"] in user["teams"]
        return True

    def _drop_team(self, team_id: str) -> None:
        team = self.teams.pop(team_id)
        self._heap.pop(f"team:{team_id}")
        for tid, uid in [k for k in self.memberships if k[0] == team_id]:
            del self.memberships[(tid, uid)]
        for user in self.users.values():
            if team_id in user["teams"]:
                user["teams"] = [t for t in user["teams"] if t != team_id]
                self._touch("user", user)
        self._drop_keys(lambda k: k["team_id"] == team_id)
        audit = {
            **copy.deepcopy(team),
            "default_team_member_models": None,
            "id": str(uuid.uuid4()),
            "deleted_at": self._stamp(),
            "deleted_by": MASTER_USER_ID,
            "deleted_by_api_key": "litellm_proxy_master_key",
            "litellm_changed_by": None,
        }
        self.deleted_teams.append(audit)
        self._touch("deleted", audit)


def _check_budgets(data: Mapping[str, Any]) -> None:
    for name in ("max_budget", "soft_budget"):
        value = data.get(name)
        if value is not None and value < 0:
            raise InvalidBudget(name, float(value))

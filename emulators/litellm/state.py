"""In-memory LiteLLM admin state: teams, users, team memberships and virtual keys.

The semantics follow the real proxy (1.108.7) as observed in shared/reference/litellm-observed.md
and by probing a live proxy. The state raises the domain errors below; the server decides the
status code and the error-body shape, because the real proxy answers the same condition (an
unknown team, say) differently on different endpoints.

Every public method takes the one lock, so a request sees and leaves a consistent state, like
the real proxy's per-team advisory lock and its member_add transaction.
"""

from __future__ import annotations

import copy
import hashlib
import re
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

MASTER_USER_ID = "default_user_id"  # the identity LiteLLM gives the master key
USER_ROLES = ("proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer")
TEAM_SORT_COLUMNS = ("team_id", "team_alias", "created_at")
USER_SORT_COLUMNS = ("user_id", "user_email", "created_at", "spend", "user_alias", "user_role")

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


# ---------------------------------------------------------------------------------------- errors


class StateError(Exception):
    """A condition the real proxy reports as an error; the server renders it."""


@dataclass
class TeamNotFound(StateError):
    team_id: str


@dataclass
class TeamExists(StateError):
    team_id: str


@dataclass
class OrganizationNotFound(StateError):
    """The emulator has no organizations, so every organization_id is unknown."""

    organization_id: str


@dataclass
class NoModelsConfigured(StateError):
    """What the probed proxy (no models configured) answers to moving a team into an organization."""


@dataclass
class InvalidBudget(StateError):
    field_name: str
    value: float


@dataclass
class UserNotFound(StateError):
    user_id: str


@dataclass
class UserExists(StateError):
    label: str  # "id" or "email"
    value: str  # as stored, which is what the real proxy quotes


@dataclass
class PremiumAdmin(StateError):
    member: Member


@dataclass
class AlreadyInTeam(StateError):
    single: bool
    member: Member | None
    roster: list[Member]


@dataclass
class IdentityMismatch(StateError):
    user_email: str
    user_id: str


@dataclass
class AmbiguousEmail(StateError):
    user_email: str


@dataclass
class TransactionClosed(StateError):
    """The real proxy's 5 s member_add transaction timeout: nothing is committed."""

    team_id: str
    member: Member


@dataclass
class MemberNotInTeam(StateError):
    pass


@dataclass
class NotTeamMember(StateError):
    team_id: str


@dataclass
class UnknownUserIds(StateError):
    """A caller who is not proxy admin named user_ids that have no user row yet."""

    user_ids: list[str]


@dataclass
class CreatedByEmailQuirk(StateError):
    """/user/update by an unknown e-mail inserts the user and then fails with a 400."""

    user_id: str


# ---------------------------------------------------------------------------------------- values


@dataclass
class Member:
    user_id: str | None
    user_email: str | None = None
    role: str = "user"

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> Member:
        return cls(entry.get("user_id"), entry.get("user_email"), entry.get("role", "user"))

    def entry(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "user_email": self.user_email, "role": self.role}

    def py_repr(self) -> str:
        """How pydantic prints a Member inside a list (the real error messages embed it)."""
        return f"Member({self._fields(', ')})"

    def py_str(self) -> str:
        return self._fields(" ")

    def _fields(self, sep: str) -> str:
        return sep.join(f"{k}={v!r}" for k, v in self.entry().items())


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


@dataclass
class AddResult:
    team: dict[str, Any]
    updated_users: list[dict[str, Any]] = field(default_factory=list)
    memberships: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- time


def _now() -> datetime:
    # Postgres keeps milliseconds (timestamp(3)), so the API never shows more
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def fmt_time(moment: datetime) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond:06d}Z" if moment.microsecond else f"{text}Z"


def _parse_time(text: str) -> datetime:
    # the API omits a zero fraction ("...:02Z"), so these strings do not sort as text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def budget_reset_at(duration: str | None, now: datetime | None = None) -> str | None:
    """An approximation of LiteLLM's standardized reset times (midnight, Monday, month start)."""
    if not duration:
        return None
    now = now or _now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    match = re.fullmatch(r"(\d+)(mo|[smhdw])", duration.strip())
    if match is None:
        return fmt_time(midnight + timedelta(days=1))
    value, unit = int(match.group(1)), match.group(2)
    if unit == "mo" or (unit == "d" and value == 30):
        months = value if unit == "mo" else 1
        total = now.year * 12 + now.month - 1 + months
        return fmt_time(midnight.replace(year=total // 12, month=total % 12 + 1, day=1))
    if (unit == "d" and value == 7) or (unit == "w" and value == 1):
        return fmt_time(midnight + timedelta(days=7 - now.weekday()))
    if unit in ("d", "w"):
        return fmt_time(midnight + timedelta(days=value * (7 if unit == "w" else 1)))
    step = timedelta(**{{"h": "hours", "m": "minutes", "s": "seconds"}[unit]: value})
    boundary = midnight
    while boundary <= now:
        boundary += step
    return fmt_time(boundary)


# ---------------------------------------------------------------------------------------- rows


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


def _membership_row(user_id: str, team_id: str) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "team_id": team_id,
        "budget_id": None,
        "spend": 0.0,
        "total_spend": 0.0,
        "litellm_budget_table": None,
    }


def _key_row(token: str, key_name: str, user_id: str, models: list[str], stamp: str) -> dict[str, Any]:
    return {
        "token": token,
        "key_name": key_name,
        "key_alias": None,
        "soft_budget_cooldown": False,
        "spend": 0.0,
        "total_spend": 0.0,
        "expires": None,
        "models": list(models),
        "aliases": {},
        "config": {},
        "router_settings": {},
        "user_id": user_id,
        "team_id": None,
        "agent_id": None,
        "project_id": None,
        "permissions": {},
        "max_parallel_requests": None,
        "metadata": {},
        "blocked": None,
        "tpm_limit": None,
        "rpm_limit": None,
        "tpd_limit": None,
        "max_budget": None,
        "budget_duration": None,
        "budget_reset_at": None,
        "allowed_cache_controls": [],
        "allowed_routes": [],
        "key_type": None,
        "policies": [],
        "access_group_ids": [],
        "model_spend": {},
        "model_max_budget": {},
        "budget_fallbacks": {},
        "budget_id": None,
        "organization_id": None,
        "object_permission_id": None,
        "created_at": stamp,
        "created_by": None,
        "updated_at": stamp,
        "updated_by": None,
        "settings_updated_at": None,
        "last_active": None,
        "rotation_count": 0,
        "auto_rotate": False,
        "rotation_interval": None,
        "last_rotation_at": None,
        "key_rotation_at": None,
        "budget_limits": None,
        "litellm_budget_table": None,
        "litellm_organization_table": None,
        "litellm_project_table": None,
        "object_permission": None,
        "jwt_key_mappings": None,
        "team_alias": "None",
    }


def _sorted_rows(
    rows: list[dict[str, Any]], column: str, order: str, heap: Callable[[Mapping[str, Any]], int]
) -> list[dict[str, Any]]:
    """Postgres order: NULLs last ascending and first descending. Equal values keep the table's
    physical order, which is the order of each row's last write, in both directions (observed)."""
    rows = sorted(rows, key=heap)
    present = [r for r in rows if r.get(column) is not None]
    value = _parse_time if column in ("created_at", "updated_at") else (lambda v: v)
    present.sort(key=lambda r: value(r[column]), reverse=order == "desc")  # stable, also when reversed
    missing = [r for r in rows if r.get(column) is None]
    return missing + present if order == "desc" else present + missing


def _page(rows: list[dict[str, Any]], page: int, page_size: int) -> list[dict[str, Any]]:
    start = (page - 1) * page_size
    return rows[start : start + page_size]


def _has_email(row: Mapping[str, Any], email: str, *, fold: bool) -> bool:
    value = row.get("user_email")
    if value is None:
        return False
    return value.lower() == email.lower() if fold else value == email


# ---------------------------------------------------------------------------------------- state


class LiteLLMState:
    """Teams, users, memberships and keys, as LiteLLM's database would hold them."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.teams: dict[str, dict[str, Any]] = {}  # team_id -> team object as /team/new shows it
        self.users: dict[str, dict[str, Any]] = {}  # user_id -> user row as /user/list shows it
        self.memberships: dict[tuple[str, str], dict[str, Any]] = {}  # (team_id, user_id) -> row
        self.keys: dict[str, dict[str, Any]] = {}  # hashed token -> key row
        self.deleted_teams: list[dict[str, Any]] = []  # the audit table behind ?status=deleted
        self._secrets: dict[str, str] = {}  # "sk-..." -> hashed token
        self._heap: dict[str, int] = {}  # "team:<id>" / "user:<id>" / "deleted:<id>" -> last write
        self._writes = 0
        self._op_stamp: str | None = None
        self._last_time: datetime | None = None
        # lower-cased e-mail -> user ids holding it, kept by _touch/_drop_user: the duplicate
        # check of /user/new must not scan every user (O(n^2) for a 50,000-user benchmark).
        self._by_email: dict[str, set[str]] = {}
        self._listings: dict[tuple[Any, ...], list[dict[str, Any]]] = {}  # emptied by every write
        self._email_of: dict[str, str] = {}

    # ------------------------------------------------------------------ seeding (tests)

    def seed_user(self, user_id: str, user_email: str | None = None, **fields: Any) -> dict[str, Any]:
        """Create a user row directly (no key, no teams unless given)."""
        with self.lock, self._operation():
            row = self._create_user(user_id, user_email=user_email, **fields)
            return copy.deepcopy(row)

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

    # ------------------------------------------------------------------ auth

    def key_row(self, secret: str) -> dict[str, Any] | None:
        """The key row of an "sk-..." secret, or None (the master key has none)."""
        with self.lock:
            token = self._secrets.get(secret)
            key = self.keys.get(token) if token else None
            return copy.deepcopy(key) if key else None

    def key_owner(self, secret: str) -> dict[str, Any] | None:
        with self.lock:
            token = self._secrets.get(secret)
            key = self.keys.get(token) if token else None
            return copy.deepcopy(self.users.get(key["user_id"])) if key else None

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
            return copy.deepcopy(_page(rows, query.page, query.page_size)), len(rows)

    def _listing(self, query: TeamQuery | UserQuery,
                 compute: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """The filtered, ordered rows of a listing, reused while nothing was written: a client
        paging through 50,000 users asks for the same order 500 times (a database has an index)."""
        filters = sorted((k, v) for k, v in vars(query).items() if k not in ("page", "page_size"))
        key = (type(query).__name__, *filters)
        if key not in self._listings:
            self._listings[key] = compute()
        return self._listings[key]

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
        return _sorted_rows(rows, column, order, heap)

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

    def team_key_count(self, team_id: str) -> int:
        with self.lock:
            return sum(1 for k in self.keys.values() if k["team_id"] == team_id)

    # ------------------------------------------------------------------ members

    def add_members(
        self,
        team_id: str,
        members: Sequence[Member],
        *,
        single: bool,
        limit: int | None = None,
        caller_can_manage: Callable[[dict[str, Any]], None] | None = None,
        may_create_users: bool = True,
    ) -> AddResult:
        """/team/member_add, in the real proxy's order of checks; commits all or nothing.

        ``caller_can_manage`` (team dict -> None, raises to refuse) is the permission check, which
        the real proxy runs after the duplicate check and before touching any user. Without
        ``may_create_users`` (callers that are not proxy admin), unknown user_ids are refused.
        """
        with self.lock, self._operation():
            _check_premium(members)
            team = self._team(team_id)
            members = [replace(m) for m in members]  # the real proxy fills these in as it resolves them
            self._check_duplicates(team, members, single)
            if caller_can_manage is not None:
                caller_can_manage(copy.deepcopy(team))
            unknown = [m.user_id for m in members if m.user_id is not None and m.user_id not in self.users]
            if unknown and not may_create_users:
                raise UnknownUserIds(unknown)
            for member in members:
                self._resolve_member(member)
            roster = _Roster(team)
            todo = [m for m in members if m not in roster]
            if limit is not None and len(todo) > limit:
                raise TransactionClosed(team_id, todo[limit])
            return self._commit_members(team, todo, members)

    def delete_member(
        self,
        team_id: str,
        user_id: str | None,
        user_email: str | None,
        caller_can_manage: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """/team/member_delete; the answer is the team as read before the write (old updated_at)."""
        with self.lock, self._operation():
            team = self._team(team_id)
            if caller_can_manage is not None:
                caller_can_manage(copy.deepcopy(team))
            before = copy.deepcopy(team)
            removed = [e for e in team["members_with_roles"] if _addresses(e, user_id, user_email)]
            addressed = (
                {e["user_id"] for e in removed if e["user_id"]}
                if removed
                else ({user_id} if user_id else set())
            )
            rows = (
                [u for u in self.users.values() if u["user_id"] in addressed]
                if addressed
                else [u for u in self.users.values() if user_email and _has_email(u, user_email, fold=False)]
            )
            stale = [u for u in rows if team_id in u["teams"]]
            if not removed and not stale:
                raise MemberNotInTeam()
            team["members_with_roles"] = [e for e in team["members_with_roles"] if e not in removed]
            for row in stale:
                row["teams"] = [t for t in row["teams"] if t != team_id]
                self._touch("user", row)
            for uid in addressed | {u["user_id"] for u in (rows if removed else stale)}:
                self.memberships.pop((team_id, uid), None)
                self._drop_keys(lambda k, uid=uid: k["user_id"] == uid and k["team_id"] == team_id)
            self._touch("team", team)
            before["members_with_roles"] = copy.deepcopy(team["members_with_roles"])
            return before

    # ------------------------------------------------------------------ users

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

    def user_keys(self, user_id: str | None) -> list[dict[str, Any]]:
        """Keys of one user, or every key when ``user_id`` is None."""
        with self.lock:
            keys = self.keys.values()
            return [copy.deepcopy(k) for k in keys if user_id is None or k["user_id"] == user_id]

    def list_users(self, query: UserQuery) -> tuple[list[dict[str, Any]], int]:
        with self.lock:
            rows = self._listing(query, lambda: self._user_rows(query))
            return copy.deepcopy(_page(rows, query.page, query.page_size)), len(rows)

    def _user_rows(self, query: UserQuery) -> list[dict[str, Any]]:
        matches = _user_filter(query)
        rows = [u for u in self.users.values() if matches(u)]
        if query.sort_by is not None:
            return _sorted_rows(rows, query.sort_by, query.sort_order.lower(), self._user_position)
        return _sorted_rows(rows, "created_at", "desc", self._user_position)

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
                    (u for u in self.users.values() if _has_email(u, email, fold=False)),
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

    # ------------------------------------------------------------------ internals: transactions

    @contextmanager
    def _operation(self) -> Iterator[None]:
        """One request is one transaction: every row it writes gets the same timestamp, as on the
        real proxy. Successive operations get strictly increasing milliseconds, so creation order
        stays visible in created_at even when the emulator answers within one millisecond."""
        if self._op_stamp is not None:  # nested: keep the outer operation's stamp
            yield
            return
        self._listings.clear()  # every write goes through here
        now = _now()
        if self._last_time is not None and now <= self._last_time:
            now = self._last_time + timedelta(milliseconds=1)
        self._last_time = now
        self._op_stamp = fmt_time(now)
        try:
            yield
        finally:
            self._op_stamp = None

    def _user_position(self, row: Mapping[str, Any]) -> int:
        return self._heap[f"user:{row['user_id']}"]

    def _stamp(self) -> str:
        assert self._op_stamp is not None, "state writes happen inside _operation()"
        return self._op_stamp

    def _touch(self, kind: str, row: dict[str, Any]) -> None:
        """A write: bump updated_at and move the row to the end of the table's physical order."""
        if "updated_at" in row:
            row["updated_at"] = self._stamp()
        self._writes += 1
        self._heap[f"{kind}:{row['id'] if kind == 'deleted' else row[f'{kind}_id']}"] = self._writes
        if kind == "user":
            self._index_email(row["user_id"], row.get("user_email"))

    def _index_email(self, user_id: str, email: str | None) -> None:
        old = self._email_of.pop(user_id, None)
        if old is not None:
            self._by_email[old].discard(user_id)
        if email:
            self._email_of[user_id] = email.lower()
            self._by_email.setdefault(email.lower(), set()).add(user_id)

    # ------------------------------------------------------------------ internals: teams

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

    # ------------------------------------------------------------------ internals: members

    def _check_duplicates(self, team: Mapping[str, Any], members: Sequence[Member], single: bool) -> None:
        """LiteLLM counts every (member, matching roster entry) pair, by id and by e-mail separately.

        So a member matching one entry on both id and e-mail counts twice: a single such member
        passes the check (and is then skipped), exactly as on the real proxy.
        """
        roster = _Roster(team)
        hits = sum(roster.hits(m) for m in members)
        if not single and hits == len(members):
            raise AlreadyInTeam(False, None, roster.members())
        if single and hits == 1:
            raise AlreadyInTeam(True, members[0], roster.members())

    def _resolve_member(self, member: Member) -> None:
        """Fill in the id or e-mail the caller left out, from an existing user (in place)."""
        if member.user_id is not None and member.user_email is not None:
            exact = [u for u in self.users.values() if _has_email(u, member.user_email, fold=False)]
            if len(exact) > 1:
                raise AmbiguousEmail(member.user_email)
            if exact and exact[0]["user_id"] != member.user_id:
                raise IdentityMismatch(member.user_email, member.user_id)
        elif member.user_email is not None:
            folded = [u for u in self.users.values() if _has_email(u, member.user_email, fold=True)]
            if not folded:
                return
            if sum(1 for u in self.users.values() if _has_email(u, member.user_email, fold=False)) > 1:
                raise AmbiguousEmail(member.user_email)
            member.user_id = folded[0]["user_id"]
        elif member.user_id in self.users:
            member.user_email = self.users[member.user_id]["user_email"]

    def _commit_members(
        self, team: dict[str, Any], todo: Sequence[Member], requested: Sequence[Member]
    ) -> AddResult:
        result = AddResult(team)
        for member in todo:
            user = self._link_user(team["team_id"], member)
            result.updated_users.append(user)
            key = (team["team_id"], user["user_id"])
            self.memberships.setdefault(key, _membership_row(user["user_id"], team["team_id"]))
            result.memberships.append(copy.deepcopy(self.memberships[key]))
        roster = _Roster(team)
        for member in requested:
            resolved = _resolve_identity(member, result.updated_users)
            if resolved not in roster:  # dedupes repeats within the same request too
                roster.add(resolved)
                team["members_with_roles"].append(resolved.entry())
        self._touch("team", team)
        result.team = copy.deepcopy(team)
        return result

    def _link_user(self, team_id: str, member: Member) -> dict[str, Any]:
        """Create the user or add the team to it; returns the row as the real proxy reports it
        (for an existing user, as it was before the team was appended)."""
        if member.user_id is not None:
            existing = self.users.get(member.user_id)
            if existing is None:  # created by id: no e-mail is stored, even when one was given
                return copy.deepcopy(
                    self._create_user(member.user_id, user_role="internal_user", teams=[team_id])
                )
            snapshot = copy.deepcopy(existing)
            self._append_team(existing, team_id)
            return snapshot
        created = self._create_user(
            str(uuid.uuid4()), user_email=member.user_email, user_role="internal_user", teams=[team_id]
        )
        return copy.deepcopy(created)

    def _link_members(self, team: dict[str, Any], members: Sequence[Member]) -> None:
        """/team/new's members_with_roles (admins allowed) plus the caller, no duplicate check."""
        roster = _Roster(team)
        todo = [m for m in members if m not in roster]
        self._commit_members(team, todo, members)

    def _append_team(self, user: dict[str, Any], team_id: str) -> None:
        if team_id not in user["teams"]:
            user["teams"] = [*user["teams"], team_id]
            self._touch("user", user)

    def _join_requested_teams(self, row: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
        """/user/new's ``teams`` and ``team_id``: role 'user' only (admin is premium, silently
        skipped); unknown teams and any other failure are only logged by the real proxy."""
        requested = list(data.get("teams") or [])
        if data.get("team_id"):
            requested.insert(0, data["team_id"])
        for entry in requested:
            team_id, role = (
                (entry, "user")
                if isinstance(entry, str)
                else (entry.get("team_id"), entry.get("user_role", "user"))
            )
            team = self.teams.get(team_id) if team_id else None
            if team is None or role == "admin":
                continue
            member = Member(row["user_id"], data.get("user_email"), "user")
            try:
                self._check_duplicates(team, [member], single=True)
                self._resolve_member(member)
                self._commit_members(team, [member], [member])
            except StateError:
                continue
        return data.get("teams") is not None or bool(data.get("team_id"))

    # ------------------------------------------------------------------ internals: users and keys

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

    def _new_key(self, user_id: str, models: list[str]) -> str:
        secret = "sk-" + secrets.token_urlsafe(16)
        token = hashlib.sha256(secret.encode()).hexdigest()
        self.keys[token] = _key_row(token, f"sk-...{secret[-4:]}", user_id, models, self._stamp())
        self._secrets[secret] = token
        return secret

    def _drop_keys(self, predicate: Callable[[dict[str, Any]], bool]) -> None:
        for token in [t for t, k in self.keys.items() if predicate(k)]:
            del self.keys[token]
        for secret in [s for s, t in self._secrets.items() if t not in self.keys]:
            del self._secrets[secret]

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


# ---------------------------------------------------------------------------------------- helpers


def _check_premium(members: Sequence[Member]) -> None:
    for member in members:
        if member.role == "admin":
            raise PremiumAdmin(member)


def _check_budgets(data: Mapping[str, Any]) -> None:
    for name in ("max_budget", "soft_budget"):
        value = data.get(name)
        if value is not None and value < 0:
            raise InvalidBudget(name, float(value))


class _Roster:
    """A team's members_with_roles indexed by id and by e-mail, so a member_add of n members
    to a team of m costs O(n), not O(n * m): large groups arrive in many chunked calls."""

    def __init__(self, team: Mapping[str, Any]) -> None:
        self.entries = team["members_with_roles"]
        self.ids: Counter[str] = Counter(e["user_id"] for e in self.entries if e.get("user_id") is not None)
        self.emails: Counter[str] = Counter(
            e["user_email"] for e in self.entries if e.get("user_email") is not None)

    def hits(self, member: Member) -> int:
        """Matching entries, by id and by e-mail counted separately (as LiteLLM counts them)."""
        by_id = self.ids[member.user_id] if member.user_id is not None else 0
        return by_id + (self.emails[member.user_email] if member.user_email is not None else 0)

    def __contains__(self, member: Member) -> bool:
        return self.hits(member) > 0

    def add(self, member: Member) -> None:
        if member.user_id is not None:
            self.ids[member.user_id] += 1
        if member.user_email is not None:
            self.emails[member.user_email] += 1

    def members(self) -> list[Member]:
        return [Member.from_entry(e) for e in self.entries]


def _addresses(entry: Mapping[str, Any], user_id: str | None, user_email: str | None) -> bool:
    return bool(
        (user_id is not None and entry.get("user_id") == user_id)
        or (user_email is not None and entry.get("user_email") == user_email)
    )


def _resolve_identity(member: Member, users: Sequence[Mapping[str, Any]]) -> Member:
    email = member.user_email
    user_id = member.user_id or next(
        (u["user_id"] for u in users if email is not None and u["user_email"] == email), None
    )
    if email is None and user_id is not None:
        email = next((u["user_email"] for u in users if u["user_id"] == user_id and u["user_email"]), None)
    return Member(user_id, email, member.role)


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

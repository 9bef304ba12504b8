"""Team membership: the Member value, /team/member_add and /team/member_delete, and the
membership rows that link users to teams."""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from emulators.litellm.state.base import StateBase, has_email
from emulators.litellm.state.errors import (
    AlreadyInTeam,
    AmbiguousEmail,
    IdentityMismatch,
    MemberNotInTeam,
    PremiumAdmin,
    StateError,
    TransactionClosed,
    UnknownUserIds,
)


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
class AddResult:
    team: dict[str, Any]
    updated_users: list[dict[str, Any]] = field(default_factory=list)
    memberships: list[dict[str, Any]] = field(default_factory=list)


def _membership_row(user_id: str, team_id: str) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "team_id": team_id,
        "budget_id": None,
        "spend": 0.0,
        "total_spend": 0.0,
        "litellm_budget_table": None,
    }


class MemberState(StateBase):
    """Team membership operations (mixed into LiteLLMState)."""

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
            if not self.licensed:
                _check_premium(members)
            team = self._team(team_id)
            members = [replace(m) for m in members]  # the real proxy fills these in as it resolves them
            self._check_duplicates(team, members, single)
            if caller_can_manage is not None:
                caller_can_manage(_team_copy(team))
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

    def update_member_role(self, team_id: str, user_id: str, role: str) -> dict[str, Any]:
        """/team/member_update of a member's role; an admin role needs a licence."""
        with self.lock, self._operation():
            if role == "admin" and not self.licensed:
                raise PremiumAdmin(Member(user_id, None, role))
            team = self._team(team_id)
            entries = [e for e in team["members_with_roles"] if e.get("user_id") == user_id]
            if not entries:
                raise MemberNotInTeam()
            for entry in entries:
                entry["role"] = role
            self._touch("team", team)
            return {"team_id": team_id, "user_id": user_id, "user_email": entries[0].get("user_email")}

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
                caller_can_manage(_team_copy(team))
            before = _team_copy(team)
            removed = [e for e in team["members_with_roles"] if _addresses(e, user_id, user_email)]
            addressed = (
                {e["user_id"] for e in removed if e["user_id"]}
                if removed
                else ({user_id} if user_id else set())
            )
            rows = (
                [u for u in self.users.values() if u["user_id"] in addressed]
                if addressed
                else [u for u in self.users.values() if user_email and has_email(u, user_email, fold=False)]
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
            exact = [u for u in self.users.values() if has_email(u, member.user_email, fold=False)]
            if len(exact) > 1:
                raise AmbiguousEmail(member.user_email)
            if exact and exact[0]["user_id"] != member.user_id:
                raise IdentityMismatch(member.user_email, member.user_id)
        elif member.user_email is not None:
            folded = [u for u in self.users.values() if has_email(u, member.user_email, fold=True)]
            if not folded:
                return
            if sum(1 for u in self.users.values() if has_email(u, member.user_email, fold=False)) > 1:
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
        result.team = _team_copy(team)
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


def _check_premium(members: Sequence[Member]) -> None:
    for member in members:
        if member.role == "admin":
            raise PremiumAdmin(member)


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


def _team_copy(team: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a team whose roster entries are flat (Member.entry): a roster of 20,000
    copied entry by entry instead of through deepcopy, which took most of a member_add's time."""
    return {key: [dict(e) for e in value] if key == "members_with_roles" else copy.deepcopy(value)
            for key, value in team.items()}

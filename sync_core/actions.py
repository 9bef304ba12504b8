"""The typed actions a plan is made of, and the plan itself.

Each action knows how to describe itself in one line and as JSON; the executor is the only
place that turns an action into LiteLLM calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from sync_core.team_policy import FieldChange


@dataclass(frozen=True, kw_only=True)
class Action:
    kind: ClassVar[str]
    order: ClassVar[int]  # apply order: teams, then users, then additions, then removals
    removal: ClassVar[bool] = False  # counts toward the deletion circuit breaker
    reason: str

    def ids(self) -> dict[str, str]:
        return {}

    def describe(self) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, **self.ids(), "reason": self.reason}


@dataclass(frozen=True, kw_only=True)
class TeamAction(Action):
    """An action on one team; ``verb`` makes its one-line description."""

    verb: ClassVar[str]
    team_id: str
    alias: str | None

    def ids(self) -> dict[str, str]:
        return {"team_id": self.team_id}

    def describe(self) -> str:
        return f"{self.verb} team {self.alias!r} ({self.team_id})"


@dataclass(frozen=True, kw_only=True)
class CreateTeam(TeamAction):
    kind, order, verb = "create_team", 0, "create"
    alias: str
    params: Mapping[str, Any] = field(default_factory=dict)
    app: str | None = None  # the enterprise app, recorded in the team's marker
    rules: Mapping[str, str] = field(default_factory=dict)  # field -> the team policy rule that set it

    def ids(self) -> dict[str, Any]:
        ids: dict[str, Any] = {"team_id": self.team_id, "team_alias": self.alias}
        return ids | ({"policy": dict(self.rules)} if self.rules else {})

    def describe(self) -> str:
        by_rule: dict[str, list[str]] = {}
        for name, rule in self.rules.items():
            by_rule.setdefault(rule, []).append(name)
        policy = "; ".join(f"{', '.join(names)} (rule {rule!r})" for rule, names in by_rule.items())
        return super().describe() + (f" with {policy}" if policy else "")


@dataclass(frozen=True, kw_only=True)
class AdoptTeam(TeamAction):
    """Mark an existing team (e.g. made by LiteLLM's SSO) as managed, keeping its metadata."""

    kind, order, verb = "adopt_team", 1, "adopt"
    metadata: Mapping[str, Any]  # the full metadata to write: /team/update replaces it wholesale


@dataclass(frozen=True, kw_only=True)
class RenameTeam(TeamAction):
    kind, order, verb = "rename_team", 2, "rename"
    old_alias: str | None
    alias: str

    def ids(self) -> dict[str, str]:
        return {"team_id": self.team_id, "team_alias": self.alias}

    def describe(self) -> str:
        return f"rename team {self.team_id}: {self.old_alias!r} -> {self.alias!r}"


@dataclass(frozen=True, kw_only=True)
class UnblockTeam(TeamAction):
    """Also rewrites the metadata: the marker records that the sync, not an admin, blocked it."""

    kind, order, verb = "unblock_team", 3, "unblock"
    metadata: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class UpdateTeam(TeamAction):
    """Puts a team's settings back to the team policy. One action per team; when it narrows the
    team's access (a model removed, a budget or limit lowered) it counts as one removal."""

    kind, order, verb = "update_team", 3, "update"  # UnblockTeam's phase: team setup, in plan order
    changes: tuple[FieldChange, ...]
    body: Mapping[str, Any]  # what /team/update gets: the fields, and the full metadata when it changes

    @property
    def removal(self) -> bool:  # type: ignore[override]
        return any(change.narrows for change in self.changes)

    def ids(self) -> dict[str, Any]:
        return {"team_id": self.team_id, "team_alias": self.alias, "narrows": self.removal,
                "changes": [change.to_dict() for change in self.changes]}

    def describe(self) -> str:
        return f"update team {self.alias!r}: {'; '.join(c.describe() for c in self.changes)}"


@dataclass(frozen=True, kw_only=True)
class CreateUser(Action):
    kind, order = "create_user", 4
    user_id: str
    email: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def ids(self) -> dict[str, str]:
        return {"user_id": self.user_id, "user_email": self.email}

    def describe(self) -> str:
        return f"create user {self.email} ({self.user_id})"


@dataclass(frozen=True, kw_only=True)
class UpdateUser(Action):
    """One /user/update of a user in scope: the marker (adopting the user, recording the role the
    sync set, clearing a leaver's record), the role, and the keys to unblock for someone who came
    back. One action per user, so the metadata is written once and whole (update replaces it)."""

    kind, order = "update_user", 4  # CreateUser's phase: both act on users, never on the same one
    user_id: str
    email: str | None
    metadata: Mapping[str, Any]
    role: str | None = None  # the new user_role; None leaves it
    old_role: str | None = None
    adopt: bool = False  # the user gets the sync's marker: now managed
    unblock_keys: tuple[str, ...] = ()  # token hashes the sync had blocked
    returned: bool = False  # a leaver is in scope again

    def ids(self) -> dict[str, Any]:
        ids: dict[str, Any] = {"user_id": self.user_id, "user_email": self.email}
        if self.role is not None:
            ids |= {"user_role": self.role, "old_user_role": self.old_role}
        if self.unblock_keys:
            ids["unblock_keys"] = list(self.unblock_keys)
        return {k: v for k, v in ids.items() if v is not None}

    def describe(self) -> str:
        parts = []
        if self.adopt:
            parts.append("mark as managed")
        if self.role is not None:
            loud = "GRANT PROXY ADMIN: " if self.role == "proxy_admin" else ""
            parts.append(f"{loud}role {self.old_role} -> {self.role}")
        if self.returned:
            parts.append(f"back in scope, unblock {len(self.unblock_keys)} key(s)")
        if not parts:
            parts.append("update the sync's record of the role")
        return f"update user {self.email or self.user_id}: {'; '.join(parts)}"


@dataclass(frozen=True, kw_only=True)
class AddMember(Action):
    kind, order = "add_member", 5
    team_id: str
    user_id: str
    email: str | None = field(default=None, compare=False)  # for the humans reading the plan
    team_alias: str | None = field(default=None, compare=False)  # likewise

    def ids(self) -> dict[str, str]:
        return {"team_id": self.team_id, "user_id": self.user_id}

    def describe(self) -> str:
        return f"add {self.email or self.user_id} to team {_team_name(self.team_id, self.team_alias)}"


@dataclass(frozen=True, kw_only=True)
class RemoveMember(Action):
    kind, order, removal = "remove_member", 6, True
    team_id: str
    user_id: str | None
    user_email: str | None = None  # set when the member is known only by e-mail
    # For the humans reading the plan (how it reads can depend on how LiteLLM was read):
    email: str | None = field(default=None, compare=False)  # the e-mail of a member known by id
    team_alias: str | None = field(default=None, compare=False)

    def ids(self) -> dict[str, str]:
        ids = {"team_id": self.team_id, "user_id": self.user_id, "user_email": self.user_email}
        return {k: v for k, v in ids.items() if v}

    def describe(self) -> str:
        who = self.email or self.user_email or self.user_id
        return f"remove {who} from team {_team_name(self.team_id, self.team_alias)}"


@dataclass(frozen=True, kw_only=True)
class SetTeamAdmins(TeamAction):
    """The team's admins follow the group's owners (team policy owners_as_admins): ``promote``
    members to admin; of the admins the sync made (recorded in the team's marker) who no longer
    own the group, ``demote`` those still in the group to plain members and ``drop`` the others
    from the team; ``forget`` record entries that are no longer admins. The planner keeps
    promotions and demotions in separate actions: a demotion counts toward the breaker."""

    kind, order, verb = "set_team_admins", 6, "set admins of"  # RemoveMember's phase: after additions
    promote: tuple[str, ...] = ()
    demote: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    forget: tuple[str, ...] = ()

    @property
    def removal(self) -> bool:  # type: ignore[override]
        return bool(self.demote or self.drop)

    def ids(self) -> dict[str, Any]:
        return {"team_id": self.team_id, "team_alias": self.alias, "promote": list(self.promote),
                "demote": list(self.demote), "drop": list(self.drop), "forget": list(self.forget)}

    def describe(self) -> str:
        parts = [f"{verb} {', '.join(ids)}" for verb, ids in (
            ("make admin", self.promote), ("make plain member", self.demote), ("remove", self.drop),
            ("forget as sync-made admin", self.forget)) if ids]
        return f"team {_team_name(self.team_id, self.alias)}: {'; '.join(parts)}"


@dataclass(frozen=True, kw_only=True)
class BlockTeam(TeamAction):
    """Also rewrites the metadata: the marker records that the sync, not an admin, blocked it."""

    kind, order, verb, removal = "block_team", 7, "block", True
    metadata: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class DeleteTeam(TeamAction):
    kind, order, verb, removal = "delete_team", 8, "delete", True


@dataclass(frozen=True, kw_only=True)
class BlockUser(Action):
    """A leaver's keys are blocked; the marker records when they left and which keys the sync
    blocked (written first: a key blocked without that record would read as an admin's block)."""

    kind, order, removal = "block_user", 9, True
    user_id: str
    email: str | None
    why: str  # disabled, deleted, out of scope, unassigned
    left_at: datetime  # the start of the run that first saw them out
    recorded: bool = False  # an earlier run recorded them as a leaver: keys made since, or a retry
    block_keys: tuple[str, ...]  # token hashes
    key_names: tuple[str, ...] = ()  # for people: aliases or masked keys
    metadata: Mapping[str, Any]

    def ids(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "user_email": self.email, "leaver": self.why,
                "left_at": self.left_at.isoformat(), "block_keys": list(self.block_keys)}

    def describe(self) -> str:
        keys = f": {', '.join(self.key_names)}" if self.key_names else ""
        seen = f", seen out by the run of {self.left_at:%Y-%m-%d %H:%M} UTC" if self.recorded else ""
        return f"block {len(self.block_keys)} key(s) of {self.email or self.user_id} ({self.why}{seen}){keys}"


@dataclass(frozen=True, kw_only=True)
class DeleteUser(Action):
    """A leaver for longer than SYNC_LEAVER_DELETE_AFTER_DAYS: the user and their keys go."""

    kind, order, removal = "delete_user", 10, True
    user_id: str
    email: str | None
    why: str
    keys: int  # how many keys go with the user

    def ids(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "user_email": self.email, "leaver": self.why, "keys": self.keys}

    def describe(self) -> str:
        return f"delete user {self.email or self.user_id} ({self.why}) and their {self.keys} key(s)"


def _team_name(team_id: str, alias: str | None) -> str:
    return repr(alias) if alias else team_id


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    # Things an operator must know that are not actions: users reused under another id, e-mail clashes.
    notes: tuple[str, ...] = ()
    # Role-"user" memberships in managed teams before the run: the base of the removal percent.
    managed_memberships: int = 0
    # What the plan could not see (a group whose read failed, an assignment list that broke off):
    # the parts of LiteLLM left as they were. A run with gaps needs attention.
    gaps: tuple[str, ...] = ()
    # Entra id -> the LiteLLM user standing for them, for everyone the plan resolved (scope.py keeps it).
    people: Mapping[str, str] = field(default_factory=dict)

    @property
    def removals(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.removal)

    def __len__(self) -> int:
        return len(self.actions)

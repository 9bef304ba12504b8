"""The typed actions a plan is made of, and the plan itself.

Each action knows how to describe itself in one line and as JSON; the executor is the only
place that turns an action into LiteLLM calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


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

    def ids(self) -> dict[str, str]:
        return {"team_id": self.team_id, "team_alias": self.alias}


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
class AddMember(Action):
    kind, order = "add_member", 5
    team_id: str
    user_id: str
    email: str | None = None  # for the humans reading the plan

    def ids(self) -> dict[str, str]:
        return {"team_id": self.team_id, "user_id": self.user_id}

    def describe(self) -> str:
        return f"add {self.email or self.user_id} to team {self.team_id}"


@dataclass(frozen=True, kw_only=True)
class RemoveMember(Action):
    kind, order, removal = "remove_member", 6, True
    team_id: str
    user_id: str | None
    user_email: str | None = None  # set when the member is known only by e-mail

    def ids(self) -> dict[str, str]:
        ids = {"team_id": self.team_id, "user_id": self.user_id, "user_email": self.user_email}
        return {k: v for k, v in ids.items() if v}

    def describe(self) -> str:
        return f"remove {self.user_email or self.user_id} from team {self.team_id}"


@dataclass(frozen=True, kw_only=True)
class BlockTeam(TeamAction):
    """Also rewrites the metadata: the marker records that the sync, not an admin, blocked it."""

    kind, order, verb, removal = "block_team", 7, "block", True
    metadata: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class DeleteTeam(TeamAction):
    kind, order, verb, removal = "delete_team", 8, "delete", True


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

    @property
    def removals(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.removal)

    def __len__(self) -> int:
        return len(self.actions)

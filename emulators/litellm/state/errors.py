"""The domain errors the state raises; the route handlers render each one as the real proxy does.

The real proxy answers the same condition (an unknown team, say) with different status codes and
body shapes on different endpoints, so the state only names the condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emulators.litellm.state.members import Member


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

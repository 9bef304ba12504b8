"""What the two sides look like, as plain frozen dataclasses.

The readers (graph/, litellm/) turn wire data into these; the planner only ever sees these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The metadata key that marks a LiteLLM team as managed by this sync. Namespaced so it never
# collides with LiteLLM's own keys (SCIM uses scim_managed / scim_data).
MANAGED_KEY = "entra_sync"
# In a team's marker: the user_ids the sync made team admins because they own the group.
ADMINS_KEY = "admins"


# ---------------------------------------------------------------- Entra ID (desired side)


@dataclass(frozen=True)
class EntraUser:
    id: str  # Entra object id; becomes the LiteLLM user_id
    email: str  # already mapped per SYNC_USER_EMAIL_ATTRIBUTE and lower-cased
    display_name: str
    enabled: bool


@dataclass(frozen=True)
class EntraGroup:
    id: str  # Entra object id; becomes the LiteLLM team_id
    display_name: str  # becomes the team_alias
    # Enabled and disabled user members (nested groups flattened when configured). None means
    # the read failed or was incomplete: unknown, which is never the same as empty.
    member_ids: frozenset[str] | None
    error: str | None = None
    # The group's user owners, read only where a team policy rule makes owners team admins.
    # None: not read, or the read failed: unknown, and no team admin is changed.
    owner_ids: frozenset[str] | None = None
    owners_error: str | None = None

    @property
    def known(self) -> bool:
        return self.member_ids is not None


@dataclass(frozen=True)
class Directory:
    """Everything Entra says, for one run."""

    groups: Mapping[str, EntraGroup]  # the groups assigned to the app, by id
    users: Mapping[str, EntraUser]  # every user referenced by a group or a direct assignment
    direct_user_ids: frozenset[str] = frozenset()  # users assigned to the app directly
    # False when the assignment list itself could not be read to the end: then the groups we
    # did not see may still be assigned, so no team may be treated as orphaned.
    assignments_complete: bool = True
    assignments_error: str | None = None
    # Entra user id -> the LiteLLM role values (proxy_admin, internal_user, ...) the enterprise
    # app's app roles give that user, as Entra puts them in a sign-in token: from a direct
    # assignment, or from an assigned group the user is a direct member of. App-role values that
    # are not LiteLLM roles are left out; a user with none is absent.
    app_roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # False when app_roles may lack roles Entra gives: the app's appRoles, the assignment list or
    # the direct members of a group whose assignment gives a role could not be read completely.
    app_roles_complete: bool = True
    app_roles_error: str | None = None
    # Managed LiteLLM users' Entra accounts that no assignment mentions, as Graph has them now (None:
    # Graph says the account does not exist). The runner fills it; a user not in it is unknown, never
    # a leaver. ``lookups_error`` says the lookup failed: then nobody is made a leaver.
    lookups: Mapping[str, EntraUser | None] = field(default_factory=dict)
    lookups_error: str | None = None

    @property
    def complete(self) -> bool:
        """Every assignment, every group and every lookup was read: only then can someone be out."""
        return (self.assignments_complete and self.lookups_error is None
                and all(g.known for g in self.groups.values()))


# ---------------------------------------------------------------- LiteLLM (observed side)


@dataclass(frozen=True)
class TeamMember:
    user_id: str | None
    user_email: str | None
    role: str  # "admin" or "user"


@dataclass(frozen=True)
class LiteLLMTeam:
    team_id: str
    alias: str | None
    metadata: Mapping[str, Any]
    blocked: bool
    members: tuple[TeamMember, ...] = ()
    # The settings a team policy can set, as the proxy reports them (team_policy.FIELDS names); a
    # field absent here was not read (this proxy does not report it), which is never "unset".
    fields: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def managed(self) -> bool:
        marker = self.metadata.get(MANAGED_KEY)
        return isinstance(marker, Mapping) and marker.get("group_id") == self.team_id

    def ours(self, app: str | None) -> bool:
        """Managed by the sync for the enterprise app ``app``: a proxy may serve several syncs, and
        one never adopts-back, renames or orphans another's teams. Markers written before the app
        was recorded count as ours."""
        return self.managed and self.metadata[MANAGED_KEY].get("app") in (None, app)

    @property
    def admins_by_sync(self) -> frozenset[str]:
        """The team admins the sync made (from group owners): the only admins it ever demotes."""
        marker = self.metadata.get(MANAGED_KEY)
        admins = marker.get(ADMINS_KEY) if isinstance(marker, Mapping) else None
        return frozenset(a for a in admins if isinstance(a, str)) if isinstance(admins, list) else frozenset()

    @property
    def blocked_by_sync(self) -> bool:
        """Blocked by the sync itself (orphaned), as opposed to by an admin, whose block stays."""
        return self.blocked and self.managed and bool(self.metadata[MANAGED_KEY].get("blocked_by_sync"))

    def with_blocked_flag(self, blocked: bool) -> dict[str, Any]:
        """The team's full metadata with the sync's block flag set or cleared (update replaces it)."""
        marker = {**self.metadata.get(MANAGED_KEY, {}), "blocked_by_sync": blocked}
        if not blocked:
            marker.pop("blocked_by_sync")
        return {**self.metadata, MANAGED_KEY: marker}


@dataclass(frozen=True)
class LiteLLMKey:
    token: str  # the key's hash: /key/block and /key/unblock take it; the secret is never read
    name: str | None  # key_alias, else LiteLLM's masked key_name ("sk-...3Rjg"), for people
    team_id: str | None
    blocked: bool


@dataclass(frozen=True)
class LiteLLMUser:
    user_id: str
    email: str | None
    role: str | None = None  # LiteLLM's user_role; None where the read did not carry it
    sso_user_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
    # False for a user known only from a team roster (a targeted read): role and metadata unread.
    row_read: bool = True

    @property
    def managed(self) -> bool:
        """Created by the sync or matched by it to an Entra user (the marker records which)."""
        marker = self.metadata.get(MANAGED_KEY)
        return isinstance(marker, Mapping) and bool(marker.get("entra_id"))

    def ours(self, app: str | None) -> bool:
        """Managed by this sync: the one for the enterprise app ``app`` (a proxy may serve several)."""
        return self.managed and self.marker.get("app") == app

    @property
    def marker(self) -> Mapping[str, Any]:
        """The sync's own metadata entry on this user, empty when unmanaged."""
        marker = self.metadata.get(MANAGED_KEY)
        return marker if isinstance(marker, Mapping) else {}

    def with_marker(self, entra_id: str, **changes: Any) -> dict[str, Any]:
        """The user's full metadata with the marker updated (/user/update replaces metadata
        wholesale); a change to None drops that field."""
        fields = {**self.marker, **user_marker(entra_id)[MANAGED_KEY], **changes}
        return {**self.metadata, MANAGED_KEY: {k: v for k, v in fields.items() if v is not None}}


@dataclass(frozen=True)
class LiteLLMState:
    """Everything LiteLLM has that the planner needs, for one run."""

    teams: Mapping[str, LiteLLMTeam]
    users: Mapping[str, LiteLLMUser]
    users_by_email: Mapping[str, LiteLLMUser] = field(default_factory=dict)
    # The keys of the users whose keys were listed (leavers and those the sync blocked keys of),
    # by user_id; a user absent here had their keys not listed.
    keys: Mapping[str, tuple[LiteLLMKey, ...]] = field(default_factory=dict)
    # The models the proxy serves, read only when a team policy names models (None: not read).
    models: frozenset[str] | None = None
    # Whether the proxy accepts team admins (a LiteLLM licence), read only when a team policy rule
    # makes owners admins. None: not read, or the proxy would not say.
    team_admins: bool | None = None

    @staticmethod
    def build(teams: list[LiteLLMTeam], users: list[LiteLLMUser],
              keys: Mapping[str, tuple[LiteLLMKey, ...]] | None = None) -> LiteLLMState:
        by_email: dict[str, LiteLLMUser] = {}
        for user in users:
            if user.email:
                # LiteLLM's own lookup by e-mail takes the first row it finds; of several users
                # sharing an e-mail, the lowest user_id is the one here, whatever order they came in.
                held = by_email.get(user.email.lower())
                if held is None or user.user_id < held.user_id:
                    by_email[user.email.lower()] = user
        return LiteLLMState(
            teams={t.team_id: t for t in teams},
            users={u.user_id: u for u in users},
            users_by_email=by_email,
            keys=dict(keys or {}),
        )


def managed_marker(group_id: str, app: str | None = None) -> dict[str, Any]:
    """The metadata entry that makes a team managed, naming the enterprise app it follows."""
    marker = {"group_id": group_id, "managed_by": "entra-litellm-sync"}
    return {MANAGED_KEY: {**marker, "app": app} if app else marker}


def user_marker(entra_id: str, **fields: Any) -> dict[str, Any]:
    """The metadata entry that makes a LiteLLM user managed: the Entra user it stands for, plus
    whatever the sync keeps about it (the role it set, the keys it blocked, ...)."""
    return {MANAGED_KEY: {"entra_id": entra_id, "managed_by": "entra-litellm-sync", **fields}}

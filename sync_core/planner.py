"""The pure heart of the sync: (what Entra says, what LiteLLM has, the policy) -> a plan.

No I/O here. The rules, in the order the code applies them:
1. every needed Entra user maps to a LiteLLM user: the one with user_id = object id, else the
   one holding the same e-mail in any letter case (reused, as LiteLLM's SSO would), else a new
   one; one person, one LiteLLM user: of two Entra users who would share one, only the first
   gets it (its own Entra user, then the one its marker names, then the first asking), with a note;
2. every assigned group has a team with team_id = group id: created, or adopted when it exists
   unmarked; renamed when the alias drifted; unblocked when the sync had blocked it (an
   admin's block stays); its settings follow the team policy's rules (team_policy.py): all of
   them at creation, the enforce rules' on every run;
3. a managed team's role-"user" members follow the group's enabled members, unless the group's
   read failed (unknown is never empty); role-"admin" members are never touched, except that where
   the team policy makes a group's owners its team's admins, the owners are added and promoted and
   the admins the sync made demoted when they stop owning it (owners.py);
4. a managed team whose group is no longer assigned is blocked, deleted or kept, but only when
   the assignment list was read completely;
5. a user in scope gets at most one update: the sync's marker, the role from Entra's app roles, and
   if they had left, the keys the sync blocked back (user_updates.py, roles.py);
6. a managed user who left (disabled, deleted, out of scope) has their keys blocked, or is deleted
   after a while, but only when everything was read completely (leavers.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sync_core.actions import (
    Action,
    AddMember,
    AdoptTeam,
    BlockTeam,
    CreateTeam,
    CreateUser,
    DeleteTeam,
    Plan,
    RemoveMember,
    RenameTeam,
    UnblockTeam,
    UpdateTeam,
    UpdateUser,
)
from sync_core.leavers import LeaverAction, leaver_actions
from sync_core.model import Directory, EntraGroup, EntraUser, LiteLLMState, LiteLLMTeam, managed_marker
from sync_core.owners import LICENCE_UNKNOWN, NO_LICENCE, admin_actions
from sync_core.roles import SSO_NEW_USER_ROLE
from sync_core.scope import Via
from sync_core.team_policy import MEMBER_BUDGET_FIELDS, TeamPolicy, changes, creation_params
from sync_core.user_updates import new_user_fields, user_update


class OrphanAction(StrEnum):
    BLOCK = "block"
    KEEP = "keep"
    DELETE = "delete"


@dataclass(frozen=True)
class Policy:
    default_team_params: Mapping[str, Any] = field(default_factory=dict)
    default_user_params: Mapping[str, Any] = field(default_factory=dict)
    orphaned_team_action: OrphanAction = OrphanAction.BLOCK
    # Provision on demand: plan only these assigned groups, and no orphan or leaver handling.
    only_group_ids: frozenset[str] | None = None
    leaver_action: LeaverAction = LeaverAction.BLOCK
    leaver_delete_after: timedelta = timedelta(days=30)
    app_roles: bool = True  # user_role follows the enterprise app's app roles
    now: datetime = field(default_factory=lambda: datetime.now(UTC))  # the run's clock, for leavers' dates
    # The enterprise app this sync serves (ENTRA_APP_ID, else ENTRA_SERVICE_PRINCIPAL_ID), recorded in
    # the user marker: users another sync (another app or tenant) manages in the same proxy are not ours.
    app: str | None = None
    team_policy: TeamPolicy = field(default_factory=TeamPolicy)  # SYNC_TEAM_POLICY_FILE, parsed
    # Who was in scope at the last complete run, and why (scope.py): a leaver who was assigned
    # directly is "unassigned". None when not known.
    last_scope: Mapping[str, Via] | None = None

    @property
    def fallback_role(self) -> str:
        """The role a user falls back to when the app role the sync gave is gone."""
        return str(self.default_user_params.get("user_role") or SSO_NEW_USER_ROLE)


def plan(directory: Directory, litellm: LiteLLMState, policy: Policy) -> Plan:
    users = _UserResolver(directory, litellm, policy)
    groups = [g for _, g in sorted(directory.groups.items()) if _in_scope(g.id, policy)]
    owners = {g.id: _owners(g, litellm, policy) for g in groups}
    for group in groups:
        if group.known:
            users.require(group.member_ids or ())
            users.require(owners[group.id] or ())
    if policy.only_group_ids is None:
        users.require(directory.direct_user_ids)

    actions: list[Action] = [*users.creations, *users.updates()]
    notes: list[str] = list(users.notes)
    if policy.app_roles and not directory.app_roles_complete:
        notes.append(f"the app roles could not be read completely ({directory.app_roles_error}); "
                     f"no role is changed this run")
    gaps: list[str] = []
    unread: set[str] = set()  # policy fields this proxy does not report
    for group in groups:
        team = litellm.teams.get(group.id)
        actions.extend(_team_actions(group, team, policy, unread))
        members = _wanted_members(group.member_ids, users)
        admins = _wanted_members(owners[group.id], users) if group.known else None
        actions.extend(_member_actions(group, team, users, {**(admins or {}), **(members or {})}))
        if admins is not None:
            actions.extend(admin_actions(group, team, admins, members))
        if not group.known:
            gaps.append(f"group {group.display_name!r} ({group.id}) could not be read completely: "
                        f"{group.error}; its team gets no membership changes this run")
        if (litellm.team_admins and group.owner_ids is None
                and policy.team_policy.owners_as_admins(group.id, group.display_name)):
            gaps.append(f"the owners of group {group.display_name!r} ({group.id}) could not be read: "
                        f"{group.owners_error or 'not read'}; its team admins are not changed this run")
    notes.extend(_policy_notes(directory, litellm, policy, unread))
    if policy.only_group_ids is None:
        if directory.assignments_complete:
            actions.extend(_orphan_actions(directory, litellm, policy))
        else:
            gaps.append(f"the app's group assignments could not be read completely "
                        f"({directory.assignments_error}); no team is blocked or deleted this run")
        actions.extend(leaver_actions(directory, litellm, users.in_scope, app=policy.app,
                                      action=policy.leaver_action, delete_after=policy.leaver_delete_after,
                                      now=policy.now, was=policy.last_scope))
        if directory.lookups_error is not None:
            gaps.append(f"Graph could not say whether managed users outside every assigned group still "
                        f"exist ({directory.lookups_error}); nobody is made a leaver this run")
        elif not directory.complete and policy.leaver_action is not LeaverAction.KEEP:
            notes.append("Entra was not read completely; nobody is made a leaver this run")

    actions.sort(key=lambda a: a.order)  # stable: keeps the per-kind order built above
    return Plan(tuple(actions), tuple(notes), _managed_memberships(litellm, policy.app), tuple(gaps),
                users.people)


def _owners(group: EntraGroup, litellm: LiteLLMState, policy: Policy) -> frozenset[str] | None:
    """The group's owners, when they are to be its team's admins and that can be done: the policy
    says so, the proxy accepts team admins, the owners were read. None: no admin changes (nor
    when the group's members are unknown: an owner may have to join the team)."""
    if not (litellm.team_admins and policy.team_policy.owners_as_admins(group.id, group.display_name)):
        return None
    return group.owner_ids


def _in_scope(group_id: str, policy: Policy) -> bool:
    return policy.only_group_ids is None or group_id in policy.only_group_ids


class _UserResolver:
    """Maps Entra user ids to LiteLLM user ids, planning CreateUser where none exists."""

    def __init__(self, directory: Directory, litellm: LiteLLMState, policy: Policy) -> None:
        self._entra = directory.users
        self._litellm = litellm
        self._policy = policy
        self._directory = directory
        self._resolved: dict[str, str | None] = {}
        self._claimed_emails: dict[str, str] = {}  # e-mail -> Entra id, for users created in this plan
        self._matched: dict[str, str] = {}  # LiteLLM user_id -> the Entra id matched to it by e-mail
        self.creations: list[CreateUser] = []
        self.notes: list[str] = []

    def require(self, entra_ids: Iterable[str]) -> None:
        for entra_id in sorted(entra_ids):
            self.resolve(entra_id)

    def email_of(self, entra_id: str) -> str:
        return self._entra[entra_id].email

    def known_email(self, user_id: str | None) -> str | None:
        """A LiteLLM user's e-mail as Entra or LiteLLM has it, for the plan's readers."""
        entra, lite = self._entra.get(user_id or ""), self._litellm.users.get(user_id or "")
        return (entra.email if entra else None) or (lite.email if lite else None)

    def resolve(self, entra_id: str) -> str | None:
        """The LiteLLM user_id for an enabled Entra user, or None when it must not be a member."""
        if entra_id not in self._resolved:
            self._resolved[entra_id] = self._resolve(entra_id)
        return self._resolved[entra_id]

    def _resolve(self, entra_id: str) -> str | None:
        user = self._entra.get(entra_id)
        if user is None or not user.enabled:
            return None
        if entra_id in self._litellm.users:
            return entra_id
        existing = self._litellm.users_by_email.get(user.email)
        if existing is None:
            return self._create(user)
        owner = self._owner(existing.user_id, existing.marker.get("entra_id"), entra_id)
        if owner != entra_id:
            self.notes.append(f"users {owner} and {entra_id} would share the LiteLLM user "
                              f"{existing.user_id!r} (e-mail {user.email}); only {owner} is matched to it")
            return None
        self.notes.append(f"user {user.email} ({entra_id}) reuses the LiteLLM user {existing.user_id!r} "
                          f"that already holds this e-mail")
        return existing.user_id

    def _owner(self, user_id: str, marked: object, entra_id: str) -> str:
        """The Entra user a LiteLLM user found by e-mail stands for: the Entra user with its id, else
        the one its marker names, else the first that asked."""
        for candidate in (user_id, marked):
            if isinstance(candidate, str) and candidate in self._entra:
                return candidate
        return self._matched.setdefault(user_id, entra_id)

    def _create(self, user: EntraUser) -> str | None:
        if not user.email:
            self.notes.append(f"user {user.id} ({user.display_name!r}) has no e-mail; not provisioned")
            return None
        first = self._claimed_emails.setdefault(user.email, user.id)
        if first != user.id:
            self.notes.append(f"users {first} and {user.id} share the e-mail {user.email}; "
                              f"only {first} is provisioned")
            return None
        self.creations.append(CreateUser(
            user_id=user.id, email=user.email,
            params=new_user_fields(user.id, self._roles(user.id), self._policy.default_user_params,
                                   self._policy.app),
            reason=f"Entra user {user.display_name!r} has no LiteLLM user",
        ))
        return user.id

    def _roles(self, entra_id: str) -> frozenset[str] | None:
        """The user's LiteLLM app roles; None leaves roles alone (off, or not all read: a role
        not seen could be the strongest)."""
        if not (self._policy.app_roles and self._directory.app_roles_complete):
            return None
        return self._directory.app_roles.get(entra_id, frozenset())

    @property
    def people(self) -> dict[str, str]:
        """Entra id -> the LiteLLM user standing for them, for everyone resolved."""
        return {e: u for e, u in self._resolved.items() if u is not None}

    @property
    def in_scope(self) -> set[str]:
        """The LiteLLM users that stand for someone in scope (created ones included)."""
        return {u for u in self._resolved.values() if u is not None}

    def updates(self) -> Iterator[UpdateUser]:
        """One update at most per existing LiteLLM user resolved, for the first Entra user it stands for."""
        seen: set[str] = set()
        for entra_id, user_id in sorted(self._resolved.items()):
            user = self._litellm.users.get(user_id or "")
            if user is None or not user.row_read or user.user_id in seen:
                continue
            seen.add(user.user_id)
            update = user_update(self._entra[entra_id], user, self._roles(entra_id),
                                 self._policy.fallback_role, self._policy.app)
            if update is not None:
                yield update


def _team_actions(group: EntraGroup, team: LiteLLMTeam | None, policy: Policy,
                  unread: set[str]) -> Iterator[Action]:
    name = group.display_name
    if team is None:
        resolved = creation_params(policy.team_policy.wanted(group.id, name, creating=True))
        defaults = policy.default_team_params
        metadata = {**defaults.get("metadata", {}), **resolved.params.get("metadata", {})}
        params = {**defaults, **resolved.params, **({"metadata": metadata} if metadata else {})}
        yield CreateTeam(team_id=group.id, alias=name, params=params, app=policy.app, rules=resolved.rules,
                         reason=f"group {name!r} is assigned to the app and has no team")
        return
    metadata = team.metadata  # as the setup actions leave it: each rewrites it whole
    if not team.ours(policy.app):
        metadata = {**team.metadata, **managed_marker(group.id, policy.app)}
        yield AdoptTeam(team_id=team.team_id, alias=team.alias, metadata=metadata,
                        reason=f"team already exists for group {name!r}; adopting it")
    if team.alias != name:
        yield RenameTeam(team_id=team.team_id, old_alias=team.alias, alias=name,
                         reason=f"group was renamed to {name!r}")
    if team.blocked_by_sync:
        metadata = team.with_blocked_flag(False)
        yield UnblockTeam(team_id=team.team_id, alias=name, metadata=metadata,
                          reason=f"group {name!r} is assigned to the app again")
    update = _policy_update(group, team, metadata, policy.team_policy, unread)
    if update is not None:
        yield update


def _policy_update(group: EntraGroup, team: LiteLLMTeam, metadata: Mapping[str, Any], team_policy: TeamPolicy,
                   unread: set[str]) -> UpdateTeam | None:
    """The team put back to what the enforce rules say, where it differs."""
    wanted = team_policy.wanted(group.id, group.display_name, creating=False)
    if not wanted:
        return None
    found, missing = changes(wanted, team.fields, metadata)
    unread |= missing
    if not found:
        return None
    body: dict[str, Any] = {c.field: c.after for c in found if not c.field.startswith("metadata.")}
    # 1.80.0 drops the metadata a member-budget update does not carry: the marker would go with it.
    if len(body) < len(found) or MEMBER_BUDGET_FIELDS.keys() & body.keys():
        body["metadata"] = {**metadata, **{c.field.removeprefix("metadata."): c.after
                                           for c in found if c.field.startswith("metadata.")}}
    return UpdateTeam(team_id=team.team_id, alias=group.display_name, changes=tuple(found), body=body,
                      reason=f"the team policy for group {group.display_name!r}")


def _policy_notes(directory: Directory, litellm: LiteLLMState, policy: Policy,
                  unread: set[str]) -> Iterator[str]:
    team_policy = policy.team_policy
    if policy.only_group_ids is None:
        groups = [(g.id, g.display_name) for g in directory.groups.values()]
        for rule in team_policy.unmatched(groups):
            yield f"team policy rule {rule.name!r} matches no assigned group"
    for name in sorted(unread):
        yield (f"team policy: this proxy does not report {name}, so it is set when a team is created "
               f"but not kept in force")
    if team_policy.reads_owners and not litellm.team_admins:
        yield NO_LICENCE if litellm.team_admins is False else LICENCE_UNKNOWN
    if team_policy.models and litellm.models == frozenset():
        yield "the proxy lists no models, so the team policy's models were not checked against it"


def _wanted_members(entra_ids: frozenset[str] | None, users: _UserResolver) -> dict[str, str] | None:
    """LiteLLM user_id -> Entra id of the enabled users among ``entra_ids``; None when unknown."""
    if entra_ids is None:
        return None
    wanted: dict[str, str] = {}
    for entra_id in sorted(entra_ids):
        user_id = users.resolve(entra_id)
        if user_id is not None:
            wanted.setdefault(user_id, entra_id)
    return wanted


def _member_actions(group: EntraGroup, team: LiteLLMTeam | None, users: _UserResolver,
                    wanted: Mapping[str, str]) -> Iterator[Action]:
    """``wanted``: the group's enabled members and, where they are its team's admins, its owners."""
    if group.member_ids is None:
        return
    members = team.members if team else ()
    present = {m.user_id for m in members if m.user_id}
    for user_id in sorted(wanted.keys() - present):
        yield AddMember(team_id=group.id, user_id=user_id, email=users.email_of(wanted[user_id]),
                        team_alias=group.display_name, reason=f"member of group {group.display_name!r}")
    for member in members:
        if member.role != "user" or (member.user_id and member.user_id in wanted):
            continue
        yield RemoveMember(team_id=group.id, user_id=member.user_id,
                           user_email=None if member.user_id else member.user_email,
                           email=users.known_email(member.user_id) or member.user_email,
                           team_alias=group.display_name,
                           reason=f"not an enabled member of group {group.display_name!r}")


def _orphan_actions(directory: Directory, litellm: LiteLLMState, policy: Policy) -> Iterator[Action]:
    for team_id, team in sorted(litellm.teams.items()):
        if not team.ours(policy.app) or team_id in directory.groups:
            continue
        reason = "its group is no longer assigned to the app (or was deleted)"
        if policy.orphaned_team_action is OrphanAction.DELETE:
            yield DeleteTeam(team_id=team_id, alias=team.alias, reason=reason)
        elif policy.orphaned_team_action is OrphanAction.BLOCK and not team.blocked:
            yield BlockTeam(team_id=team_id, alias=team.alias, metadata=team.with_blocked_flag(True),
                            reason=reason)


def _managed_memberships(litellm: LiteLLMState, app: str | None) -> int:
    return sum(1 for t in litellm.teams.values() if t.ours(app) for m in t.members if m.role == "user")

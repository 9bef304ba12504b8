"""Builders for planner tests, and a pure model of what applying a plan does to LiteLLM.

The model follows the real proxy's observed semantics (member_add creates memberships,
/team/update replaces metadata, block flips a flag); the end-to-end tests check the same
outcomes against the emulator and the real proxy.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import replace

from sync_core.actions import (
    AddMember,
    AdoptTeam,
    BlockTeam,
    BlockUser,
    CreateTeam,
    CreateUser,
    DeleteTeam,
    DeleteUser,
    Plan,
    RemoveMember,
    RenameTeam,
    SetTeamAdmins,
    UnblockTeam,
    UpdateUser,
)
from sync_core.model import (
    ADMINS_KEY,
    MANAGED_KEY,
    Directory,
    EntraGroup,
    EntraUser,
    LiteLLMKey,
    LiteLLMState,
    LiteLLMTeam,
    LiteLLMUser,
    TeamMember,
    managed_marker,
    user_marker,
)


def gid(n: int) -> str:
    return str(uuid.UUID(int=0x1000 + n))


def uid(n: int) -> str:
    return str(uuid.UUID(int=0x9000 + n))


def user(n: int, *, enabled: bool = True, email: str | None = None) -> EntraUser:
    return EntraUser(uid(n), email if email is not None else f"user{n}@contoso.com", f"User {n}", enabled)


def group(n: int, members: Iterable[int] | None, name: str | None = None, error: str | None = None) -> EntraGroup:
    ids = None if members is None else frozenset(uid(m) for m in members)
    return EntraGroup(gid(n), name or f"Group {n}", ids, error)


def directory(groups: Iterable[EntraGroup], users: Iterable[EntraUser], *, direct: Iterable[int] = (),
              complete: bool = True) -> Directory:
    return Directory({g.id: g for g in groups}, {u.id: u for u in users},
                     frozenset(uid(n) for n in direct), complete, None if complete else "page 2 failed")


def team(team_id: str, alias: str | None, members: Iterable[int | str] = (), *, managed: bool = True,
         admins: Iterable[int] = (), blocked: bool = False, metadata: dict | None = None,
         blocked_by_sync: bool = False, app: str | None = None) -> LiteLLMTeam:
    meta = {**(metadata or {}), **(managed_marker(team_id, app) if managed else {})}
    if blocked_by_sync:
        meta["entra_sync"]["blocked_by_sync"] = True
    roster = [TeamMember(uid(m) if isinstance(m, int) else m, None, "user") for m in members]
    roster += [TeamMember(uid(m), None, "admin") for m in admins]
    return LiteLLMTeam(team_id, alias, meta, blocked, tuple(roster))


def lite_user(n: int, *, managed: bool = True, role: str | None = None, user_id: str | None = None,
              sync_role: str | None = None, **marker: object) -> LiteLLMUser:
    """The LiteLLM user for Entra user ``n``; managed (the sync's marker) unless told otherwise.
    ``sync_role``: the role the marker records as set by the sync."""
    marker = {**marker, **({"role": sync_role} if sync_role else {})}
    metadata = user_marker(uid(n), **marker) if managed else {}
    return LiteLLMUser(user_id or uid(n), f"user{n}@contoso.com", role=role, metadata=metadata)


def key(n: int, *, blocked: bool = False, team_id: str | None = None) -> LiteLLMKey:
    return LiteLLMKey(f"{n:064x}", f"sk-...{n:04d}", team_id, blocked)


def litellm(teams: Iterable[LiteLLMTeam] = (), users: Iterable[int | LiteLLMUser] = (),
            keys: dict[str, tuple[LiteLLMKey, ...]] | None = None) -> LiteLLMState:
    rows = [u if isinstance(u, LiteLLMUser) else lite_user(u) for u in users]
    return LiteLLMState.build(list(teams), rows, keys)


def apply_plan(plan: Plan, state: LiteLLMState) -> LiteLLMState:
    """What LiteLLM looks like after every action of ``plan`` succeeded."""
    teams = dict(state.teams)
    users = {u.user_id: u for u in state.users.values()}
    keys = dict(state.keys)
    for action in plan.actions:
        match action:
            case CreateTeam(team_id=t, alias=alias, app=app):
                teams[t] = LiteLLMTeam(t, alias, managed_marker(t, app), False, ())
            case AdoptTeam(team_id=t, metadata=metadata):
                teams[t] = replace(teams[t], metadata=dict(metadata))
            case RenameTeam(team_id=t, alias=alias):
                teams[t] = replace(teams[t], alias=alias)
            case UnblockTeam(team_id=t, metadata=metadata):
                teams[t] = replace(teams[t], blocked=False, metadata=dict(metadata))
            case BlockTeam(team_id=t, metadata=metadata):
                teams[t] = replace(teams[t], blocked=True, metadata=dict(metadata))
            case DeleteTeam(team_id=t):
                del teams[t]
            case CreateUser(user_id=u, email=email, params=params):
                users[u] = LiteLLMUser(u, email, role=params.get("user_role"), metadata=params["metadata"])
            case UpdateUser(user_id=u, role=role, metadata=metadata, unblock_keys=tokens):
                users[u] = replace(users[u], role=role or users[u].role, metadata=dict(metadata))
                keys[u] = _set_blocked(keys.get(u, ()), tokens, False)
            case BlockUser(user_id=u, metadata=metadata, block_keys=tokens):
                users[u] = replace(users[u], metadata=dict(metadata))
                keys[u] = _set_blocked(keys.get(u, ()), tokens, True)
            case DeleteUser(user_id=u):  # the proxy deletes the user's keys and takes them out of rosters
                del users[u]
                keys.pop(u, None)
                teams = {t: replace(team_, members=tuple(m for m in team_.members if m.user_id != u))
                         for t, team_ in teams.items()}
            case AddMember(team_id=t, user_id=u):
                teams[t] = replace(teams[t], members=(*teams[t].members, TeamMember(u, None, "user")))
            case RemoveMember(team_id=t, user_id=u, user_email=email):
                kept = tuple(m for m in teams[t].members
                             if not (m.role == "user" and (m.user_id == u if u else m.user_email == email)))
                teams[t] = replace(teams[t], members=kept)
            case SetTeamAdmins(team_id=t):
                teams[t] = _set_admins(teams[t], action)
    after = LiteLLMState.build(list(teams.values()), list(users.values()), keys)
    return replace(after, models=state.models, team_admins=state.team_admins)


def _set_admins(team_: LiteLLMTeam, action: SetTeamAdmins) -> LiteLLMTeam:
    roles = {**dict.fromkeys(action.promote, "admin"), **dict.fromkeys(action.demote, "user")}
    members = tuple(replace(m, role=roles.get(m.user_id or "", m.role)) for m in team_.members
                    if m.user_id not in action.drop)
    marker = dict(team_.metadata.get(MANAGED_KEY, {}))
    gone = {*action.demote, *action.drop, *action.forget}
    marker[ADMINS_KEY] = sorted((team_.admins_by_sync | set(action.promote)) - gone)
    return replace(team_, members=members, metadata={**team_.metadata, MANAGED_KEY: marker})


def _set_blocked(keys: tuple[LiteLLMKey, ...], tokens: Iterable[str], blocked: bool) -> tuple[LiteLLMKey, ...]:
    chosen = set(tokens)
    return tuple(replace(k, blocked=blocked) if k.token in chosen else k for k in keys)

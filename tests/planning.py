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
    CreateTeam,
    CreateUser,
    DeleteTeam,
    Plan,
    RemoveMember,
    RenameTeam,
    UnblockTeam,
)
from sync_core.model import (
    Directory,
    EntraGroup,
    EntraUser,
    LiteLLMState,
    LiteLLMTeam,
    LiteLLMUser,
    TeamMember,
    managed_marker,
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


def team(team_id: str, alias: str | None, members: Iterable[int] = (), *, managed: bool = True,
         admins: Iterable[int] = (), blocked: bool = False, metadata: dict | None = None,
         blocked_by_sync: bool = False) -> LiteLLMTeam:
    meta = {**(metadata or {}), **(managed_marker(team_id) if managed else {})}
    if blocked_by_sync:
        meta["entra_sync"]["blocked_by_sync"] = True
    roster = [TeamMember(uid(m), None, "user") for m in members]
    roster += [TeamMember(uid(m), None, "admin") for m in admins]
    return LiteLLMTeam(team_id, alias, meta, blocked, tuple(roster))


def litellm(teams: Iterable[LiteLLMTeam] = (), users: Iterable[int | LiteLLMUser] = ()) -> LiteLLMState:
    rows = [u if isinstance(u, LiteLLMUser) else LiteLLMUser(uid(u), f"user{u}@contoso.com") for u in users]
    return LiteLLMState.build(list(teams), rows)


def apply_plan(plan: Plan, state: LiteLLMState) -> LiteLLMState:
    """What LiteLLM looks like after every action of ``plan`` succeeded."""
    teams = dict(state.teams)
    users = {u.user_id: u for u in state.users.values()}
    for action in plan.actions:
        match action:
            case CreateTeam(team_id=t, alias=alias):
                teams[t] = LiteLLMTeam(t, alias, managed_marker(t), False, ())
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
            case CreateUser(user_id=u, email=email):
                users[u] = LiteLLMUser(u, email)
            case AddMember(team_id=t, user_id=u):
                teams[t] = replace(teams[t], members=(*teams[t].members, TeamMember(u, None, "user")))
            case RemoveMember(team_id=t, user_id=u, user_email=email):
                kept = tuple(m for m in teams[t].members
                             if not (m.role == "user" and (m.user_id == u if u else m.user_email == email)))
                teams[t] = replace(teams[t], members=kept)
    return LiteLLMState.build(list(teams.values()), list(users.values()))

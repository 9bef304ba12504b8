"""Applies a plan to LiteLLM: the only code that writes.

Phases run in plan order (teams, users, additions, removals, team blocks/deletes). Within a
phase, work for different teams runs concurrently and work for one team runs in order,
because LiteLLM rewrites a team's member list per call. A failed call fails only its own
actions (and the additions that depended on it); the next run retries them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Literal

from sync_core.actions import (
    Action,
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
    UnblockTeam,
    UpdateUser,
)
from sync_core.concurrency import gather_limited
from sync_core.errors import TargetAuthError, TargetError
from sync_core.litellm.client import LiteLLMClient
from sync_core.model import managed_marker

log = logging.getLogger(__name__)

Status = Literal["planned", "applied", "failed", "skipped", "held"]


@dataclass
class Outcome:
    status: Status = "planned"
    error: str | None = None


@dataclass(frozen=True)
class ExecutionOptions:
    hold_removals: bool = False  # the circuit breaker tripped and no --force
    member_add_chunk: int = 200  # the real proxy commits ~500 new members per call at most
    concurrency: int = 8
    should_stop: Callable[[], bool] = lambda: False  # e.g. the run lock was lost


class Executor:
    def __init__(self, client: LiteLLMClient, options: ExecutionOptions) -> None:
        self._client = client
        self._options = options
        self._failed_teams: set[str] = set()
        self._failed_users: set[str] = set()
        self._auth_error: TargetAuthError | None = None

    async def apply(self, plan: Plan) -> list[Outcome]:
        outcomes = [Outcome() for _ in plan.actions]
        indexed = list(enumerate(plan.actions))
        for _, phase in groupby(indexed, key=lambda pair: _phase(pair[1])):
            await self._run_phase(list(phase), outcomes)
        return outcomes

    async def _run_phase(self, items: list[tuple[int, Action]], outcomes: list[Outcome]) -> None:
        by_key: dict[str, list[tuple[int, Action]]] = defaultdict(list)
        for index, action in items:
            by_key[getattr(action, "team_id", None) or getattr(action, "user_id", "")].append((index, action))

        async def run_key(work: list[tuple[int, Action]]) -> None:
            for batch in self._batches(work):
                await self._run_batch(batch, outcomes)

        await gather_limited(self._options.concurrency, [lambda w=w: run_key(w) for w in by_key.values()])

    def _batches(self, work: list[tuple[int, Action]]) -> list[list[tuple[int, Action]]]:
        """Additions to one team go out as chunked member_add calls; everything else one by one."""
        adds = [pair for pair in work if isinstance(pair[1], AddMember)]
        others = [[pair] for pair in work if not isinstance(pair[1], AddMember)]
        size = self._options.member_add_chunk
        return others + [adds[i:i + size] for i in range(0, len(adds), size)]

    async def _run_batch(self, batch: Sequence[tuple[int, Action]], outcomes: list[Outcome]) -> None:
        skip = self._skip_reason(batch[0][1])
        runnable = []
        for index, action in batch:
            reason = skip or self._dependency_failure(action)
            if reason == "held":
                outcomes[index] = Outcome("held", "removal held back by the circuit breaker")
            elif reason:
                outcomes[index] = Outcome("skipped", reason)
            else:
                runnable.append((index, action))
        if not runnable:
            return
        try:
            await self._call(runnable)
        except TargetError as exc:
            if isinstance(exc, TargetAuthError):
                self._auth_error = exc
            self._record_failure(runnable, str(exc), outcomes)
            return
        for index, _ in runnable:
            outcomes[index] = Outcome("applied")

    def _skip_reason(self, action: Action) -> str | None:
        if self._auth_error is not None:
            return f"not attempted: {self._auth_error}"
        if self._options.should_stop():
            return "not attempted: the run lock was lost"
        if action.removal and self._options.hold_removals:
            return "held"
        return None

    def _dependency_failure(self, action: Action) -> str | None:
        if isinstance(action, AddMember):
            if action.team_id in self._failed_teams:
                return "not attempted: creating the team failed"
            if action.user_id in self._failed_users:
                # member_add would auto-create the user without e-mail or SSO id: wait for the next run
                return "not attempted: creating the user failed"
        return None

    def _record_failure(self, batch: Sequence[tuple[int, Action]], error: str,
                        outcomes: list[Outcome]) -> None:
        for index, action in batch:
            outcomes[index] = Outcome("failed", error)
            log.error("sync action failed: %s: %s", action.describe(), error,
                      extra={"action": action.to_dict(), "error": error})
            if isinstance(action, CreateTeam):
                self._failed_teams.add(action.team_id)
            elif isinstance(action, CreateUser):
                self._failed_users.add(action.user_id)

    async def _call(self, batch: Sequence[tuple[int, Action]]) -> None:
        client = self._client
        match batch[0][1]:
            case AddMember(team_id=team_id):
                await client.add_members(team_id, [a.user_id for _, a in batch if isinstance(a, AddMember)])
            case CreateTeam(team_id=team_id, alias=alias, params=params, app=app):
                defaults = dict(params)
                metadata = {**defaults.pop("metadata", {}), **managed_marker(team_id, app)}
                await client.create_team(team_id, alias, metadata, defaults)
            case AdoptTeam(team_id=team_id, metadata=metadata):
                await client.update_team(team_id, metadata=dict(metadata))
            case RenameTeam(team_id=team_id, alias=alias):
                await client.update_team(team_id, team_alias=alias)
            case UnblockTeam(team_id=team_id, metadata=metadata):
                await client.block_team(team_id, blocked=False)
                await client.update_team(team_id, metadata=dict(metadata))
            case CreateUser(user_id=user_id, email=email, params=params):
                await client.create_user(user_id, email, params)
            case RemoveMember(team_id=team_id, user_id=user_id, user_email=user_email):
                await client.remove_member(team_id, user_id=user_id, user_email=user_email)
            case BlockTeam(team_id=team_id, metadata=metadata):
                # flag first: a block without the flag would read as an admin's block and stay
                await client.update_team(team_id, metadata=dict(metadata))
                await client.block_team(team_id, blocked=True)
            case DeleteTeam(team_id=team_id):
                await client.delete_team(team_id)
            case UpdateUser(user_id=user_id, role=role, metadata=metadata, unblock_keys=tokens):
                # keys first: the marker keeps naming them until they are all unblocked
                for token in tokens:
                    await client.block_key(token, blocked=False)
                role_field = {"user_role": role} if role else {}
                await client.update_user(user_id, metadata=dict(metadata), **role_field)
            case BlockUser(user_id=user_id, metadata=metadata, block_keys=tokens):
                # the record first: a key blocked without it would read as an admin's block and stay
                await client.update_user(user_id, metadata=dict(metadata))
                for token in tokens:
                    await client.block_key(token, blocked=True)
            case DeleteUser(user_id=user_id):
                await client.delete_user(user_id)
            case other:
                raise AssertionError(f"no handler for {other!r}")


def _phase(action: Action) -> int:
    # Team setup (create, adopt, rename, unblock) is one phase: those run in order per team.
    return 0 if action.order <= UnblockTeam.order else action.order

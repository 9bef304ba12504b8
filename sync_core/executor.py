"""Applies a plan to LiteLLM: the only code that writes.

Phases run in plan order (teams, users, additions, removals, team blocks/deletes). Within a
phase, work for different teams runs concurrently and work for one team runs in order,
because LiteLLM rewrites a team's member list per call. A failed call fails only its own
actions (and the additions that depended on it); the next run retries them.

Where the proxy has LiteLLM's bulk routes (SYNC_LITELLM_BULK), new users are created up to 500
per request together with their memberships, and removals go up to 500 per team per request.
Rows fail independently, so each action still gets its own outcome. A bulk user creation writes
the rosters of several teams at once: the proxy takes each team's advisory lock for it, so
concurrent requests that touch one team lose nothing, but wait for each other: bulk_create
orders the users by team, keeps one request in flight and resolves lost answers. Additions the
creation did not settle (a user that already existed, a team it could not join) go through
member_add as before.

User updates (UpdateUser, BlockUser) go through /user/bulk_update (SYNC_USER_UPDATE_CHUNK to a request) on any
proxy that has the route (LiteLLM 1.74 and later; SYNC_LITELLM_BULK=off keeps /user/update). Each
row is an idempotent /user/update, so a request sent again after a lost answer does no harm. The
key writes around an update (unblocking a returning user's keys before it, blocking a leaver's
after it) stay per call, per action, as on the per-call path.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Literal, TypeVar

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
    SetTeamAdmins,
    UnblockTeam,
    UpdateTeam,
    UpdateUser,
)
from sync_core.bulk_create import BulkCreator, by_shared_teams
from sync_core.concurrency import gather_limited
from sync_core.errors import TargetAuthError, TargetError
from sync_core.litellm.client import LiteLLMClient, NewUser, UserChange
from sync_core.litellm.team_admins import set_team_admins
from sync_core.model import managed_marker

log = logging.getLogger(__name__)

Pair = tuple[int, Action]  # an action and its index in the plan (and in the outcomes)
PairT = TypeVar("PairT", bound=Pair)
Status = Literal["planned", "applied", "failed", "skipped", "held"]
UserWrite = UpdateUser | BlockUser  # the actions that write a user's row (/user/update)


@dataclass(frozen=True)
class Outcome:
    status: Status = "planned"
    error: str | None = None


# Shared: a large initial sync has a million actions, nearly all of them planned, then applied.
PLANNED, APPLIED = Outcome(), Outcome("applied")


@dataclass(frozen=True)
class ExecutionOptions:
    hold_removals: bool = False  # the circuit breaker tripped and no --force
    member_add_chunk: int = 200  # the real proxy commits ~500 new members per call at most
    concurrency: int = 8
    bulk: Literal["auto", "on", "off"] = "auto"  # "auto": where the proxy offers the bulk routes
    user_create_chunk: int = 500  # users per bulk creation
    member_delete_chunk: int = 500  # members per bulk removal
    user_update_chunk: int = 100  # users per bulk update
    bulk_in_flight: int = 1  # bulk user creations at once: they queue at the teams they share
    bulk_timeout: float = 120.0  # seconds for a bulk user creation's (or update's) answer
    should_stop: Callable[[], bool] = lambda: False  # e.g. the run lock was lost


class Executor:
    def __init__(self, client: LiteLLMClient, options: ExecutionOptions) -> None:
        self._client = client
        self._options = options
        self._failed_teams: set[str] = set()
        self._failed_users: set[str] = set()
        self._auth_error: TargetAuthError | None = None
        self._outcomes: list[Outcome] = []

    def done(self) -> int:
        """How many actions of the plan being applied have an outcome yet (for progress)."""
        return sum(1 for outcome in self._outcomes if outcome.status != "planned")

    async def apply(self, plan: Plan) -> list[Outcome]:
        outcomes = self._outcomes = [PLANNED] * len(plan.actions)
        indexed = list(enumerate(plan.actions))
        for _, phase in groupby(indexed, key=lambda pair: _phase(pair[1])):
            # Additions that a bulk user creation applied are no longer "planned".
            items = [pair for pair in phase if outcomes[pair[0]].status == "planned"]
            bulk = await self._bulk_wanted(items)
            creates = [(i, a) for i, a in items if isinstance(a, CreateUser)]
            if bulk and creates:
                await self._create_users_in_bulk(creates, _additions_by_user(indexed), outcomes)
                items = [pair for pair in items if not isinstance(pair[1], CreateUser)]
            writes = [pair for pair in items if isinstance(pair[1], UserWrite)]
            if writes and self._options.bulk != "off":
                await self._write_users_in_bulk(writes, outcomes)
                items = [pair for pair in items if not isinstance(pair[1], UserWrite)]
            await self._run_phase(items, outcomes, bulk)
        return outcomes

    async def _bulk_wanted(self, items: list[Pair]) -> bool:
        """Whether this phase goes through the /management/v1 bulk routes. Only user creations and
        removals have them; the proxy is asked (once per run) only when such a write is about to be
        made. (User updates need no asking: see _write_users_in_bulk.)"""
        if not items or self._options.bulk == "off":
            return False
        # the removal phase also holds SetTeamAdmins, which has no bulk route
        first = next((a for _, a in items if not isinstance(a, SetTeamAdmins)), None)
        if not isinstance(first, CreateUser | RemoveMember):
            return False
        if first.removal and self._options.hold_removals:
            return False
        return self._options.bulk == "on" or await self._client.probe_bulk()

    async def _run_phase(self, items: list[Pair], outcomes: list[Outcome], bulk: bool) -> None:
        by_key: dict[str, list[Pair]] = defaultdict(list)
        for index, action in items:
            by_key[getattr(action, "team_id", None) or getattr(action, "user_id", "")].append((index, action))

        async def run_key(work: list[Pair]) -> None:
            for batch in self._batches(work, bulk):
                await self._run_batch(batch, outcomes, bulk)

        await gather_limited(self._options.concurrency, [lambda w=w: run_key(w) for w in by_key.values()])

    def _batches(self, work: list[Pair], bulk: bool) -> list[list[Pair]]:
        """Additions to one team go out as chunked member_add calls, and so do removals from one
        team as bulk_delete calls where bulk is on; everything else one by one."""
        adds: list[Pair] = []
        removals: list[Pair] = []
        others: list[list[Pair]] = []
        for pair in work:
            if isinstance(pair[1], AddMember):
                adds.append(pair)
            elif bulk and isinstance(pair[1], RemoveMember):
                removals.append(pair)
            else:
                others.append([pair])
        return (others + _chunks(adds, self._options.member_add_chunk)
                + _chunks(removals, self._options.member_delete_chunk))

    async def _run_batch(self, batch: Sequence[Pair], outcomes: list[Outcome], bulk: bool) -> None:
        runnable = self._runnable(batch, outcomes)
        if not runnable:
            return
        try:
            errors = await self._call(runnable, bulk)
        except TargetError as exc:
            self._fail_call(runnable, exc, outcomes)
            return
        for (index, action), error in zip(runnable, errors or [None] * len(runnable), strict=True):
            if error is None:
                outcomes[index] = APPLIED
            else:
                self._record_failure([(index, action)], error, outcomes)

    def _runnable(self, batch: Sequence[Pair], outcomes: list[Outcome]) -> list[Pair]:
        """The actions of ``batch`` to attempt; the others get their held or skipped outcome."""
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
        return runnable

    async def _create_users_in_bulk(self, creates: list[tuple[int, CreateUser]],
                                    additions: Mapping[str, list[tuple[int, AddMember]]],
                                    outcomes: list[Outcome]) -> None:
        creator = BulkCreator(self._client, self._options.bulk_timeout)

        async def create(chunk: list[tuple[int, CreateUser]]) -> None:
            runnable = [(i, a) for i, a in self._runnable(chunk, outcomes) if isinstance(a, CreateUser)]
            if not runnable:
                return
            joins = {a.user_id: [(i, add) for i, add in additions.get(a.user_id, [])
                                 if add.team_id not in self._failed_teams] for _, a in runnable}
            users = [NewUser(a.user_id, a.email, a.params, tuple(add.team_id for _, add in joins[a.user_id]))
                     for _, a in runnable]
            try:
                results = await creator.create(users)
            except TargetError as exc:
                self._fail_call(runnable, exc, outcomes)
                return
            for (index, action), result in zip(runnable, results, strict=True):
                if result.error is not None:
                    self._record_failure([(index, action)], result.error, outcomes)
                    continue
                outcomes[index] = APPLIED
                for add_index, add in joins[action.user_id]:
                    if add.team_id in result.teams:
                        outcomes[add_index] = APPLIED

        def teams(pair: tuple[int, CreateUser]) -> list[str]:
            return [add.team_id for _, add in additions.get(pair[1].user_id, [])]

        ordered = by_shared_teams(creates, teams)
        chunks = _chunks(ordered, self._options.user_create_chunk)
        await gather_limited(self._options.bulk_in_flight, [lambda c=c: create(c) for c in chunks])

    async def _write_users_in_bulk(self, writes: list[Pair], outcomes: list[Outcome]) -> None:
        """User updates through /user/bulk_update, user_update_chunk to a request, ``concurrency``
        requests at once, as many as the per-call path has updates in flight: the proxy does the
        rows of a request one after another, each as long as a /user/update, so its throughput
        comes from the requests in flight, and a request lasts chunk x a row's time (docs/
        bulk-writes.md#user-updates). /user/bulk_update is no /management/v1 route and needs no
        probe: both proxies we run have it (1.80.0 and 1.108.7; it came with 1.74). With
        SYNC_LITELLM_BULK=auto a proxy that answers 404 (older) gets /user/update for the rest
        of the run."""

        async def write(chunk: list[Pair]) -> None:
            if self._client.offers_user_bulk_update is False:
                await self._run_phase(chunk, outcomes, bulk=False)
                return
            runnable = await self._each(self._runnable(chunk, outcomes), _keys_before, outcomes)
            if not runnable:
                return
            users = [a for _, a in runnable if isinstance(a, UserWrite)]
            changes = [UserChange(a.user_id, _user_fields(a)) for a in users]
            try:
                results = await self._client.update_users(changes, timeout=self._options.bulk_timeout)
            except TargetError as exc:
                if exc.status == 404 and self._options.bulk == "auto":  # keys unblocked again: harmless
                    self._client.offers_user_bulk_update = False
                    await self._run_phase(runnable, outcomes, bulk=False)
                else:
                    self._fail_call(runnable, exc, outcomes)
                return
            updated = []
            for pair, result in zip(runnable, results, strict=True):
                if result.error is None:
                    updated.append(pair)
                else:
                    self._record_failure([pair], result.error, outcomes)
            for index, _ in await self._each(updated, _keys_after, outcomes):
                outcomes[index] = APPLIED

        chunks = _chunks(writes, self._options.user_update_chunk)
        await gather_limited(self._options.concurrency, [lambda c=c: write(c) for c in chunks])

    async def _each(self, pairs: list[Pair], step: Callable[[LiteLLMClient, Any], Awaitable[None]],
                    outcomes: list[Outcome]) -> list[Pair]:
        """``step`` for each action in turn (the chunks run concurrently already); the actions whose
        step failed get their failed outcome, the others are returned."""
        done = []
        for pair in pairs:
            try:
                await step(self._client, pair[1])
            except TargetError as exc:
                self._fail_call([pair], exc, outcomes)
                continue
            done.append(pair)
        return done

    def _skip_reason(self, action: Action) -> str | None:
        if self._auth_error is not None:
            return f"not attempted: {self._auth_error}"
        if self._options.should_stop():
            return "not attempted: the run lock was lost"
        if action.removal and self._options.hold_removals:
            return "held"
        return None

    def _dependency_failure(self, action: Action) -> str | None:
        if isinstance(action, SetTeamAdmins) and action.team_id in self._failed_teams:
            return "not attempted: creating the team failed"
        if isinstance(action, AddMember):
            if action.team_id in self._failed_teams:
                return "not attempted: creating the team failed"
            if action.user_id in self._failed_users:
                # member_add would auto-create the user without e-mail or SSO id: wait for the next run
                return "not attempted: creating the user failed"
        return None

    def _fail_call(self, batch: Sequence[Pair], exc: TargetError, outcomes: list[Outcome]) -> None:
        if isinstance(exc, TargetAuthError):
            self._auth_error = exc
        self._record_failure(batch, str(exc), outcomes)

    def _record_failure(self, batch: Sequence[Pair], error: str,
                        outcomes: list[Outcome]) -> None:
        for index, action in batch:
            outcomes[index] = Outcome("failed", error)
            log.error("sync action failed: %s: %s", action.describe(), error,
                      extra={"action": action.to_dict(), "error": error})
            if isinstance(action, CreateTeam):
                self._failed_teams.add(action.team_id)
            elif isinstance(action, CreateUser):
                self._failed_users.add(action.user_id)

    async def _call(self, batch: Sequence[Pair], bulk: bool) -> list[str | None] | None:
        """Make the calls for ``batch``: None when all went through, else one error (or None) per action."""
        client = self._client
        match batch[0][1]:
            case RemoveMember(team_id=team_id) if bulk:
                members = [(a.user_id, a.user_email) for _, a in batch if isinstance(a, RemoveMember)]
                return [result.error for result in await client.remove_members(team_id, members)]
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
            case UpdateTeam(team_id=team_id, body=body):
                await client.update_team(team_id, **body)
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
            case SetTeamAdmins() as action:
                await set_team_admins(client, action)
            case UpdateUser() | BlockUser() as action:
                await _keys_before(client, action)
                await client.update_user(action.user_id, **_user_fields(action))
                await _keys_after(client, action)
            case DeleteUser(user_id=user_id):
                await client.delete_user(user_id)
            case other:
                raise AssertionError(f"no handler for {other!r}")
        return None


def _user_fields(action: UserWrite) -> dict[str, Any]:
    """What a user write sends besides the user_id: the whole metadata, and the role if it changes."""
    role = action.role if isinstance(action, UpdateUser) else None
    return {"metadata": dict(action.metadata), **({"user_role": role} if role else {})}


async def _keys_before(client: LiteLLMClient, action: UserWrite) -> None:
    # a returning user's keys are unblocked first: the marker keeps naming them until they all are
    if isinstance(action, UpdateUser):
        for token in action.unblock_keys:
            await client.block_key(token, blocked=False)


async def _keys_after(client: LiteLLMClient, action: UserWrite) -> None:
    # a leaver's record first: a key blocked without it would read as an admin's block and stay
    if isinstance(action, BlockUser):
        for token in action.block_keys:
            await client.block_key(token, blocked=True)


def _chunks(items: list[PairT], size: int) -> list[list[PairT]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _additions_by_user(indexed: list[Pair]) -> dict[str, list[tuple[int, AddMember]]]:
    by_user: dict[str, list[tuple[int, AddMember]]] = defaultdict(list)
    for index, action in indexed:
        if isinstance(action, AddMember):
            by_user[action.user_id].append((index, action))
    return by_user


def _phase(action: Action) -> int:
    # Team setup (create, adopt, rename, unblock, update) is one phase: those run in order per team.
    return 0 if action.order <= UnblockTeam.order else action.order

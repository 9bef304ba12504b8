"""One sync run, shared by the timer, the HTTP trigger and the CLI: read, plan, check, apply, report."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from sync_core import leavers, notify, planner, progress, provisioning_log, safety, scope, telemetry
from sync_core.errors import LockBusy, RequestError, SourceError, SyncError
from sync_core.executor import ExecutionOptions, Executor, Outcome
from sync_core.leavers import LeaverAction
from sync_core.litellm.client import LiteLLMClient
from sync_core.litellm.targeted import targeted_state
from sync_core.litellm.team_settings import read_for_policy
from sync_core.model import Directory, EntraUser, LiteLLMState
from sync_core.report import Report
from sync_core.settings import Settings

if TYPE_CHECKING:  # the state package imports the Azure Storage SDK
    from sync_core.state.base import StateBackend

log = logging.getLogger("sync_core.run")
# The stored last-run report keeps this many actions (failures first): the whole report of an
# initial sync of a large tenant is tens of MB, more than a status page needs.
STORED_ACTIONS = 2000
# New keys are listed from the last run's start less this: the proxy's clock (created_at) may be
# behind the sync's.
KEY_CLOCK_SKEW = timedelta(minutes=10)


@dataclass(frozen=True)
class RunRequest:
    dry_run: bool = True
    force: bool = False  # let the removals through although the circuit breaker tripped
    group_ids: frozenset[str] | None = None  # provision on demand: just these assigned groups
    trigger: str = "cli"


class DirectoryReader(Protocol):
    requests: int
    throttled: int  # 429s Graph answered
    # "full" or "incremental": how the last read went. ``incremental`` says whether one can be.
    mode: str
    incremental: bool

    async def read(self, only_group_ids: frozenset[str] | None = None) -> Directory: ...

    async def with_owners(self, directory: Directory, wanted: Callable[[str, str], bool]) -> Directory:
        """``directory`` with the owners of the groups ``wanted`` (id, display name) picks."""
        ...

    async def users_by_id(self, user_ids: Collection[str]) -> Mapping[str, EntraUser | None]:
        """Each of ``user_ids`` as Graph has it now, or None where Graph says it does not exist
        (deleted). Raises a SourceError when Graph could not answer for all of them."""
        ...


async def run_sync(
    settings: Settings,
    request: RunRequest,
    *,
    reader: DirectoryReader | None = None,
    state: StateBackend | None = None,
    litellm_transport: httpx.AsyncBaseTransport | None = None,
) -> Report:
    """Run once. With ``state``, an applying run holds its run lock for its whole duration, so
    two applying runs never overlap (a dry run takes no lock), and Graph is read incrementally
    between full reads (SYNC_FULL_RECONCILE_HOURS)."""
    started = datetime.now(UTC)
    graph = reader or build_reader(settings, state, save=not request.dry_run)
    guard: AbstractAsyncContextManager[Any] = (
        state.run_lock(request.trigger) if state is not None and not request.dry_run else nullcontext())
    async with guard as lease, _litellm_client(settings, litellm_transport) as client:

        def lock_lost() -> bool:  # another run may be writing now
            return bool(getattr(lease, "lost", False))

        world = await _read_world(graph, client, settings.policy(request.group_ids), request, state, started)
        with telemetry.span("plan"):
            plan = planner.plan(world.directory, world.litellm, world.policy)
        breaker = safety.check(plan, max_removals=settings.max_removals,
                               max_percent=settings.max_removal_percent)
        hold = breaker.tripped and not request.force
        # The scope is kept by applying runs over every group; see scope.py.
        store = state if not request.dry_run and request.group_ids is None else None
        ahead = scope.before_apply(world.saved, plan.actions)
        if request.dry_run:
            outcomes = [Outcome("held" if hold and a.removal else "planned") for a in plan.actions]
        else:
            if store is not None and ahead is not None:  # a run that dies half-way leaves them to recheck
                await scope.save(store, ahead)
            executor = Executor(client, _execution_options(settings, hold, should_stop=lock_lost))
            with progress.stage(progress.APPLYING, len(plan.actions), poll=executor.done):
                outcomes = await telemetry.phase("apply", executor.apply(plan))
        if store is not None and not lock_lost():
            applied = [o.status == "applied" for o in outcomes]
            await scope.save(store, scope.after_run(ahead or world.saved, world.directory, plan.people,
                                                    plan.actions, applied, started))
        report = Report(request.dry_run, request.trigger, plan, outcomes, breaker, request.force,
                        started_at=started, finished_at=datetime.now(UTC),
                        stats=_stats(settings, graph, client, world.litellm_read))
    _log_run(report)
    return report


@dataclass(frozen=True)
class _World:
    """What a run read, and the policy it plans with."""

    directory: Directory
    litellm: LiteLLMState
    litellm_read: str  # "full" or "targeted"
    policy: planner.Policy
    saved: scope.SavedScope  # the scope of the last complete run


async def _read_world(graph: DirectoryReader, client: LiteLLMClient, policy: planner.Policy,
                      request: RunRequest, state: StateBackend | None, started: datetime) -> _World:
    """Entra and LiteLLM, what the team policy needs of both, and what finding leavers needs."""
    directory, litellm, litellm_read = await telemetry.phase(
        "read", _read_both(graph, client, request.group_ids))
    _check_requested_groups(request, directory)
    litellm = await read_for_policy(client, directory, litellm, policy.team_policy)
    if litellm.team_admins:  # owners are read only where they can be made admins
        directory = await graph.with_owners(directory, policy.team_policy.owners_as_admins)
    saved = await scope.load(state, policy.app)
    policy = replace(policy, last_scope=saved.people, now=started)  # left_at names this run
    directory, litellm = await telemetry.phase("read leavers", _read_leavers(
        graph, client, directory, litellm, policy, saved, full=litellm_read == "full"))
    return _World(directory, litellm, litellm_read, policy, saved)


def _litellm_client(settings: Settings, transport: httpx.AsyncBaseTransport | None) -> LiteLLMClient:
    return LiteLLMClient(settings.litellm_base_url, settings.litellm_master_key.get_secret_value(),
                         timeout=settings.http_timeout, retry_budget=settings.retry_budget,
                         read_concurrency=settings.litellm_concurrency, transport=transport)


def _execution_options(settings: Settings, hold_removals: bool, *,
                       should_stop: Callable[[], bool]) -> ExecutionOptions:
    return ExecutionOptions(
        hold_removals=hold_removals,
        member_add_chunk=settings.member_add_chunk,
        concurrency=settings.litellm_concurrency,
        bulk=settings.litellm_bulk,
        user_create_chunk=settings.user_create_chunk,
        member_delete_chunk=settings.member_delete_chunk,
        user_update_chunk=settings.user_update_chunk,
        bulk_in_flight=settings.litellm_bulk_in_flight,
        bulk_timeout=settings.litellm_bulk_timeout,
        should_stop=should_stop,
    )


def _stats(settings: Settings, graph: DirectoryReader, client: LiteLLMClient,
           litellm_read: str) -> dict[str, Any]:
    return {"graph_requests": graph.requests, "graph_read": graph.mode, "graph_throttled": graph.throttled,
            "litellm_read": litellm_read,
            "litellm_calls": dict(client.calls),
            "litellm_lost": dict(client.lost),  # answers that never came
            # offered: None when the run had no write that needed to ask
            "litellm_bulk": {"setting": settings.litellm_bulk, "offered": client.offers_bulk},
            "litellm_write_calls": client.write_calls}


async def _read_both(graph: DirectoryReader, client: LiteLLMClient,
                     group_ids: frozenset[str] | None) -> tuple[Directory, LiteLLMState, str]:
    """What Entra says and what LiteLLM has, and how LiteLLM was read ("full" or "targeted").

    LiteLLM's users are listed in full alongside a full Graph read, which makes every full Graph
    read a full reconcile of LiteLLM too. After an incremental Graph read, or for a few groups on
    demand, only the users the plan depends on are looked up (litellm/targeted.py). Whether a read
    will be incremental is known only once it is done, so a reader that can read incrementally has
    LiteLLM's users read after it.
    """
    entra = progress.during(progress.ENTRA, graph.read(group_ids))
    if not graph.incremental and group_ids is None:
        directory, state = await asyncio.gather(entra, progress.during(progress.LITELLM, client.read_state()))
        return directory, state, "full"
    directory, teams = await asyncio.gather(entra, progress.during(progress.LITELLM, client.list_teams()))
    if graph.mode == "incremental" or group_ids is not None:
        state = await progress.during(progress.LITELLM, targeted_state(client, directory, teams))
        if state is not None:
            return directory, state, "targeted"
    users = await progress.during(progress.LITELLM, client.list_users())
    return directory, LiteLLMState.build(teams, users), "full"


async def _read_leavers(graph: DirectoryReader, client: LiteLLMClient, directory: Directory,
                        litellm: LiteLLMState, policy: planner.Policy, saved: scope.SavedScope, *,
                        full: bool) -> tuple[Directory, LiteLLMState]:
    """What the planner needs to find leavers: Graph's word on managed users the directory does not
    mention (deleted, or out of scope), then the keys of those who are out. After a full LiteLLM
    read every managed user is judged. After a targeted one, recorded leavers are judged again only
    when there is a reason (scope.py): they were in scope at the last complete run and are not now,
    the last run left them to recheck, or a key was made for them since the last run; their rows are
    read here, with those of people back in scope known from a roster only."""
    if policy.only_group_ids is not None or policy.leaver_action is LeaverAction.KEEP:
        return directory, litellm
    recheck: set[str] | None = None
    if not full:
        since = saved.keys_since
        owners = await client.key_owners_since(since - KEY_CLOCK_SKEW) if since is not None else set()
        recheck = scope.to_recheck(saved, directory) | owners
        rows = scope.rows_to_read(saved, directory, litellm) | owners
        rows -= {u for u in rows if u in litellm.users and litellm.users[u].row_read}
        if rows:
            found = await client.users_by_id(rows)
            litellm = LiteLLMState.build(list(litellm.teams.values()), [*litellm.users.values(), *found])
    absent = leavers.to_look_up(directory, litellm, app=policy.app, recheck=recheck)
    if absent:
        try:
            directory = replace(directory, lookups=await graph.users_by_id(absent))
        except SourceError as exc:
            return replace(directory, lookups_error=str(exc)), litellm
    out = leavers.needs_keys(directory, litellm, kept=(), app=policy.app, recheck=recheck)
    return directory, replace(litellm, keys=await client.keys_by_user(out))


async def run_recorded(settings: Settings, request: RunRequest, state: StateBackend, **kwargs: Any) -> Report:
    """Run with ``state``, add what it did to the provisioning log, keep the report as the last
    run's, whatever the trigger, and tell SYNC_NOTIFY_WEBHOOK when the sync's health changed."""
    with telemetry.run_span(request.trigger, request.dry_run):
        try:
            report = await run_sync(settings, request, state=state, **kwargs)
        except (LockBusy, RequestError):
            raise  # not a run: nothing happened
        except SyncError as exc:
            if not request.dry_run:
                await notify.run_failed(settings, state, request.trigger, exc)
            raise
        with telemetry.span("record"):
            report.problems += await provisioning_log.record(state, report, settings.log_retention_days)
            await state.save_report(report.to_dict(max_actions=STORED_ACTIONS))
            await notify.after_run(settings, state, report)
        telemetry.record_run(report)
    return report


def build_reader(settings: Settings, state: StateBackend | None = None, *,
                 save: bool = True) -> DirectoryReader:
    """The Graph reader: incremental when there is somewhere to keep its snapshot."""
    # Imported here: msgraph-sdk is the heaviest import, and a configuration error or a busy
    # lock should answer without paying for it.
    from sync_core.graph.client import build_graph_client
    from sync_core.graph.delta import DeltaReader
    from sync_core.graph.pacing import ResourceUnitPacer
    from sync_core.graph.reader import GraphReader, GraphSource

    source = GraphSource.from_settings(settings)
    pacer = ResourceUnitPacer(settings.graph_ru_per_10s)
    reader = GraphReader(build_graph_client(settings, pacer=pacer), source, pacer)
    if state is None or settings.full_reconcile_hours == 0:
        return reader
    return DeltaReader(reader, state, full_every=timedelta(hours=settings.full_reconcile_hours), save=save)


def _check_requested_groups(request: RunRequest, directory: Directory) -> None:
    if request.group_ids is None:
        return
    missing = sorted(request.group_ids - directory.groups.keys())
    if missing:
        raise RequestError(f"group_ids: not assigned to the app: {', '.join(missing)}")


def _log_run(report: Report) -> None:
    summary = report.summary()
    log.info(
        "sync run finished: trigger=%s dry_run=%s %s",
        report.trigger, report.dry_run, " ".join(f"{k}={v}" for k, v in summary.items()),
        extra={"summary": summary, "trigger": report.trigger, "dry_run": report.dry_run,
               "breaker": report.breaker.to_dict()},
    )
    if report.breaker.tripped:
        log.warning(report.breaker.explain())
    for note in (*report.plan.gaps, *report.plan.notes):
        log.warning(note)

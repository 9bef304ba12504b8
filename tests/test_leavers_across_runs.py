"""Leavers across runs (sync_core/scope.py), end to end with the emulators: each case the timer's
incremental runs used to miss until the next full read, and the run that now handles it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

from emulators.graph import GraphEmulator
from emulators.http_base import Fault, FaultInjector, NoFaults, Request, ScriptedFaults
from emulators.litellm import LiteLLMEmulator
from sync_core.runner import RunRequest, run_sync
from sync_core.settings import Settings
from sync_core.state import LocalStateBackend
from tests.conftest import run_cli
from tests.tenants import oid

ENG, OPS = oid("Engineering"), oid("Operations")


def apply(env: dict) -> dict:
    result = run_cli(env, "apply", "--json")
    assert result.code == 0, result.out[-3000:] + result.err
    return result.json()


def failing_reads(graph: GraphEmulator, group_id: str) -> ScriptedFaults:
    """The group's member reads and /groups/delta fail for the whole run."""
    return ScriptedFaults().add("GET", rf"/groups/(delta|{group_id}/)", Fault("status", 500), 10_000)


def incomplete(env: dict, graph: GraphEmulator) -> dict:
    graph.server.faults = failing_reads(graph, ENG)
    try:
        result = run_cli(env, "apply", "--json")
    finally:
        graph.server.faults = NoFaults()
    report = result.json()
    assert result.code == 1, report  # a run with gaps needs attention
    assert report["summary"]["users_blocked"] == 0 and not report["complete"], report["attention"]
    return report


def test_someone_who_leaves_while_a_run_is_incomplete_is_blocked_by_the_next_run(
        env, graph: GraphEmulator, lite: LiteLLMEmulator) -> None:
    apply(env)
    secret, _ = lite.state.generate_key(oid("ops0"), None)
    graph.tenant.remove_member(OPS, oid("ops0"))
    assert incomplete(env, graph)["summary"]["members_removed"] == 1  # the roster no longer shows them
    report = apply(env)
    assert report["stats"]["litellm_read"] == "targeted" and report["summary"]["users_blocked"] == 1
    assert lite.state.key_blocked(secret)


def test_a_group_unassigned_during_a_run_whose_other_reads_fail_loses_its_members_after_it(
        env, graph: GraphEmulator, lite: LiteLLMEmulator) -> None:
    apply(env)
    secrets = [lite.state.generate_key(oid(n), None)[0] for n in ("ops0", "ops1")]
    graph.tenant.unassign(OPS)
    assert incomplete(env, graph)["summary"]["teams_blocked"] == 1  # the assignment list was read: right
    assert not any(lite.state.key_blocked(s) for s in secrets)
    report = apply(env)
    # ops0, ops1 and nomail (provisioned by its user principal name)
    assert report["summary"]["users_blocked"] == 3 and all(lite.state.key_blocked(s) for s in secrets)
    assert {a["leaver"] for a in report["actions"] if a["type"] == "block_user"} == {"out of scope"}


def test_someone_assigned_directly_is_unassigned_and_comes_back_within_one_run_each(
        env, graph: GraphEmulator, lite: LiteLLMEmulator) -> None:
    apply(env)
    secret, _ = lite.state.generate_key(oid("direct"), None)
    graph.tenant.unassign(oid("direct"))
    report = apply(env)
    (block,) = [a for a in report["actions"] if a["type"] == "block_user"]
    assert (block["leaver"], block["left_at"]) == ("unassigned", report["started_at"])
    assert lite.state.key_blocked(secret)
    graph.tenant.assign(oid("direct"))
    assert apply(env)["summary"]["users_unblocked"] == 1 and not lite.state.key_blocked(secret)


def test_a_key_made_for_a_leaver_is_blocked_by_the_next_run(env, graph: GraphEmulator, lite: LiteLLMEmulator) -> None:
    apply(env)
    graph.tenant.disable_user(oid("eng1"))
    assert apply(env)["summary"]["users_blocked"] == 1
    later, _ = lite.state.generate_key(oid("eng1"), None)  # by an admin, or from an open UI session
    plan = run_cli(env, "plan").out
    assert "block 1 key(s) of eng1" in plan and "(disabled, seen out by the run of" in plan, plan
    report = apply(env)
    assert report["stats"]["litellm_read"] == "targeted" and lite.state.key_blocked(later)
    assert apply(env)["actions"] == []


class KillAtTheBlock(FaultInjector):
    """Holds the first /key/block (the leaver's record is written by then) and flags the kill."""

    def __init__(self) -> None:
        self.fired = threading.Event()

    def decide(self, request: Request) -> Fault | None:
        if request.path == "/key/block":
            self.fired.set()
            return Fault("hang", seconds=1.0)
        return None


async def killed(settings: Settings, state: LocalStateBackend, kill: KillAtTheBlock) -> None:
    task = asyncio.create_task(run_sync(settings, RunRequest(dry_run=False), state=state))
    while not kill.fired.is_set():
        await asyncio.sleep(0.002)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_a_run_killed_between_the_record_and_the_block_leaves_it_to_the_next(
        env, graph: GraphEmulator, lite: LiteLLMEmulator) -> None:
    apply(env)
    secret, _ = lite.state.generate_key(oid("ops1"), None)
    graph.tenant.disable_user(oid("ops1"))
    lite.server.faults = kill = KillAtTheBlock()
    asyncio.run(killed(Settings.from_env(env), LocalStateBackend(Path(".sync-state")), kill))
    lite.server.faults = NoFaults()
    assert "left_at" in lite.state.users[oid("ops1")]["metadata"]["entra_sync"]
    assert not lite.state.key_blocked(secret)
    assert apply(env)["summary"]["users_blocked"] == 1 and lite.state.key_blocked(secret)

    # the same, and the person is back before the next run: their record is cleared, the key works
    secret, _ = lite.state.generate_key(oid("ops0"), None)
    graph.tenant.disable_user(oid("ops0"))
    lite.server.faults = kill = KillAtTheBlock()
    asyncio.run(killed(Settings.from_env(env), LocalStateBackend(Path(".sync-state")), kill))
    lite.server.faults = NoFaults()
    graph.tenant.enable_user(oid("ops0"))
    report = apply(env)
    assert "left_at" not in lite.state.users[oid("ops0")]["metadata"]["entra_sync"], report["actions"]
    assert not lite.state.key_blocked(secret)

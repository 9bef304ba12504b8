"""The Functions entry points: bindings as the host sees them, and real HttpRequest/TimerRequest calls."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

import function_app
from emulators.http_base import Fault, ScriptedFaults
from sync_core.errors import NeedsAttention, RequestError
from sync_core.run_queue import RUN_QUEUE, STALE_AFTER, decode_job, describe, encode_job, new_job
from sync_core.runner import RunRequest
from sync_core.state import open_state
from tests.functions import FUNCTIONS, Gate, deliver, receive, receive_waiting, run_queue_client, run_queued
from tests.parallel import run_lock
from tests.tenants import oid


def bindings(name: str) -> list[dict]:
    return json.loads(FUNCTIONS[name].get_function_json())["bindings"]


def test_registered_functions_and_bindings() -> None:
    assert set(FUNCTIONS) == {"sync_timer", "sync_http", "sync_queued", "sync_status", "sync_log"}
    (timer,) = bindings("sync_timer")
    assert timer["type"] == "timerTrigger" and timer["schedule"] == "%SYNC_SCHEDULE%"
    assert timer["runOnStartup"] is False and timer["useMonitor"] is True
    http = next(b for b in bindings("sync_http") if b["type"] == "httpTrigger")
    assert (http["route"], http["methods"], http["authLevel"]) == ("sync", ["POST"], "FUNCTION")
    (queued,) = bindings("sync_queued")
    assert (queued["type"], queued["queueName"], queued["connection"]) == (
        "queueTrigger", RUN_QUEUE, "AzureWebJobsStorage")
    status = next(b for b in bindings("sync_status") if b["type"] == "httpTrigger")
    assert (status["route"], status["methods"], status["authLevel"]) == ("sync/status", ["GET"], "FUNCTION")
    history = next(b for b in bindings("sync_log") if b["type"] == "httpTrigger")
    assert (history["route"], history["methods"], history["authLevel"]) == ("sync/log", ["GET"], "FUNCTION")


@pytest.fixture
def app_env(env, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)  # local lock and report in the temp cwd
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def post(body: bytes) -> func.HttpResponse:
    request = func.HttpRequest(method="POST", url="/api/sync", body=body)
    return asyncio.run(FUNCTIONS["sync_http"].get_user_function()(request))


def status() -> dict:
    request = func.HttpRequest(method="GET", url="/api/sync/status", body=b"")
    response = asyncio.run(FUNCTIONS["sync_status"].get_user_function()(request))
    assert response.status_code == 200
    return json.loads(response.get_body())


BAD_BODIES = [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"dry_run": true, "verbose": 1}', "verbose: is not a known field"),
    (b'{"dry_run": "yes"}', "dry_run: Input should be a valid boolean"),
    (b'{"group_ids": "abc"}', "group_ids: Input should be a valid list"),
    (b'{"group_ids": ["not-a-guid"]}', "is not a group object id"),
    (b'{"group_ids": []}', "must name at least one group"),
    (b'{"force": 1}', "force: Input should be a valid boolean"),
]


@pytest.mark.parametrize(("body", "message"), BAD_BODIES, ids=[m for _, m in BAD_BODIES])
def test_bad_bodies_are_refused_with_400_and_nothing_applied(app_env, lite, body: bytes, message: str) -> None:
    response = post(body)
    assert response.status_code == 400
    assert message in json.loads(response.get_body())["error"]
    assert lite.server.requests() == []


def test_a_group_that_is_not_assigned_is_refused(app_env, lite) -> None:
    response = post(json.dumps({"group_ids": [oid("Unassigned")]}).encode())
    assert response.status_code == 400
    assert oid("Unassigned") in json.loads(response.get_body())["error"]
    assert lite.server.requests(["POST"]) == []


def test_dry_run_then_apply_then_status(app_env, lite) -> None:
    dry = post(b'{"dry_run": true}')
    assert dry.status_code == 200 and json.loads(dry.get_body())["dry_run"] is True
    assert lite.server.requests(["POST"]) == []
    applied = post(b"")
    report = json.loads(applied.get_body())
    assert applied.status_code == 200 and report["summary"]["teams_created"] == 3
    current = status()
    assert current["last_run"]["trigger"] == "http" and current["last_run"]["dry_run"] is False
    assert current["running"] is None


def test_provision_on_demand_touches_only_the_named_group(app_env, lite) -> None:
    response = post(json.dumps({"group_ids": [oid("Operations")]}).encode())
    report = json.loads(response.get_body())
    assert response.status_code == 200
    assert {a["team_id"] for a in report["actions"] if "team_id" in a} == {oid("Operations")}
    assert report["stats"]["litellm_read"] == "targeted"  # the named group's people, not every user


def test_a_run_in_progress_gives_409_with_its_start(app_env, lite) -> None:
    async def overlapping() -> func.HttpResponse:
        async with open_state(app_env).run_lock("timer"):
            request = func.HttpRequest(method="POST", url="/api/sync", body=b"")
            return await FUNCTIONS["sync_http"].get_user_function()(request)

    response = asyncio.run(overlapping())
    body = json.loads(response.get_body())
    assert response.status_code == 409 and body["running_trigger"] == "timer" and body["running_since"]
    assert lite.server.requests(["POST"]) == []


def test_unresolved_key_vault_reference_is_a_safe_500(app_env, lite, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = "@Microsoft.KeyVault(SecretUri=https://vault.vault.azure.net/secrets/litellm-key)"
    monkeypatch.setenv("LITELLM_MASTER_KEY", reference)
    monkeypatch.setenv("WEBSITE_SITE_NAME", "entra-litellm-sync")  # in Azure
    response = post(b"")
    text = response.get_body().decode()
    assert response.status_code == 500 and "LITELLM_MASTER_KEY" in text and "Key Vault Secrets User" in text
    assert "vault.vault.azure.net" not in text
    assert lite.server.requests() == []


def test_timer_applies_and_skips_when_a_run_holds_the_lock(app_env, lite, caplog) -> None:
    timer = FUNCTIONS["sync_timer"].get_user_function()
    with caplog.at_level(logging.INFO):
        asyncio.run(timer(TimerRequest(past_due=True)))
    assert "past due" in caplog.text
    assert status()["last_run"]["trigger"] == "timer"
    calls = len(lite.server.requests())

    async def while_locked() -> None:
        async with open_state(app_env).run_lock("http"):
            await timer(TimerRequest(past_due=False))

    with caplog.at_level(logging.INFO):
        asyncio.run(while_locked())
    assert "timer run skipped" in caplog.text
    assert len(lite.server.requests()) == calls, "a skipped run must not even read LiteLLM"


def test_a_long_local_run_answers_202_and_finishes_in_the_background(app_env, lite, monkeypatch) -> None:
    """Without storage (a local host) the HTTP function runs the sync itself and answers 202 when it
    outlasts SYNC_HTTP_WAIT_SECONDS. The emulator holds the run until the test has seen it running."""
    monkeypatch.setenv("SYNC_HTTP_WAIT_SECONDS", "0.2")
    gate = lite.server.faults = Gate()
    http = FUNCTIONS["sync_http"].get_user_function()

    async def scenario() -> tuple:
        response = await http(func.HttpRequest(method="POST", url="/api/sync", body=b""))
        await gate.wait_reached()  # the run holds the lock and waits on LiteLLM
        running = await read_status()
        gate.open()
        await asyncio.gather(*list(function_app._background))
        return response, running

    response, running = asyncio.run(scenario())
    assert response.status_code == 202 and json.loads(response.get_body())["status_url"] == "/api/sync/status"
    assert running["running"]["trigger"] == "http"
    assert status()["last_run"]["summary"]["teams_created"] == 3


@pytest.fixture
def azure_env(app_env, azurite_connection_string: str, monkeypatch: pytest.MonkeyPatch,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The app with its lock, reports and run queue in Azurite, as in Azure. Those are the app's
    fixed container and queue, so these tests take turns across xdist workers."""
    monkeypatch.setenv("AzureWebJobsStorage", azurite_connection_string)
    with run_lock(tmp_path_factory, "azure-state-container"):
        yield {**app_env, "AzureWebJobsStorage": azurite_connection_string}


async def read_status() -> dict:
    request = func.HttpRequest(method="GET", url="/api/sync/status", body=b"")
    response = await FUNCTIONS["sync_status"].get_user_function()(request)
    assert response.status_code == 200
    return json.loads(response.get_body())


def test_a_post_is_run_by_the_queue_function_and_answered_with_its_report(azure_env, lite) -> None:
    queue = run_queue_client(azure_env)
    http = FUNCTIONS["sync_http"].get_user_function()

    async def scenario() -> tuple:
        request = func.HttpRequest(method="POST", url="/api/sync", body=b'{"force": false}')
        return await asyncio.gather(http(request), deliver(queue))

    response, message = asyncio.run(scenario())
    report = json.loads(response.get_body())
    assert response.status_code == 200 and report["summary"]["teams_created"] == 3
    current = status()
    assert current["last_run"]["trigger"] == "http"
    assert current["queued_run"]["state"] == "finished" and current["queued_run"]["attempt"] == 1
    # Delivered twice (at-least-once): the finished job is not run again.
    calls = len(lite.server.requests())
    asyncio.run(FUNCTIONS["sync_queued"].get_user_function()(message))
    assert len(lite.server.requests()) == calls


def test_a_long_queued_run_is_visible_while_it_runs_and_a_second_post_gets_409(azure_env, lite, monkeypatch) -> None:
    monkeypatch.setenv("SYNC_HTTP_WAIT_SECONDS", "0.2")
    queue = run_queue_client(azure_env)
    gate = lite.server.faults = Gate()
    http = FUNCTIONS["sync_http"].get_user_function()

    async def scenario() -> tuple:
        first = await http(func.HttpRequest(method="POST", url="/api/sync", body=b""))  # nothing runs it yet
        worker = asyncio.create_task(deliver(queue))
        await gate.wait_reached()  # the queue function holds the lock and waits on LiteLLM
        during = await read_status()
        second = await http(func.HttpRequest(method="POST", url="/api/sync", body=b""))
        gate.open()
        await worker
        return first, during, second

    first, during, second = asyncio.run(scenario())
    accepted = json.loads(first.get_body())
    assert first.status_code == 202 and accepted["status"] == "queued" and accepted["status_url"] == "/api/sync/status"
    assert during["running"]["trigger"] == "http"
    assert during["queued_run"]["request_id"] == accepted["request_id"]
    assert (during["queued_run"]["state"], during["queued_run"]["died"]) == ("running", False)
    assert second.status_code == 409 and json.loads(second.get_body())["running_trigger"] == "http"
    after = status()
    assert after["queued_run"]["state"] == "finished" and after["running"] is None
    assert after["last_run"]["summary"]["teams_created"] == 3
    assert len([r for r in lite.server.requests(["POST"]) if r.path == "/team/new"]) == 3


def test_a_queued_run_that_dies_is_reported_and_run_again(azure_env, lite, monkeypatch, caplog) -> None:
    monkeypatch.setenv("SYNC_HTTP_WAIT_SECONDS", "0.2")
    queue = run_queue_client(azure_env)
    gate = lite.server.faults = Gate()
    queued = FUNCTIONS["sync_queued"].get_user_function()

    async def first_attempt_dies() -> dict:
        await FUNCTIONS["sync_http"].get_user_function()(func.HttpRequest(method="POST", url="/api/sync", body=b""))
        attempt = asyncio.create_task(queued(await receive(queue, invisible_for=1)))
        await gate.wait_reached()
        attempt.cancel()  # the instance goes away mid-run: no outcome is recorded, the message stays
        with contextlib.suppress(asyncio.CancelledError):
            await attempt
        return await read_status()

    after_death = asyncio.run(first_attempt_dies())
    gate.open()
    record = after_death["queued_run"]
    assert record["state"] == "running" and record["attempt"] == 1
    # Once its beat is older than the limit, the status calls it dead.
    later = datetime.fromisoformat(record["beat"]) + STALE_AFTER + timedelta(seconds=1)
    assert describe(record, now=later)["died"] is True

    with caplog.at_level(logging.ERROR):
        message = asyncio.run(deliver(queue))  # the host delivers it again
    assert message.dequeue_count == 2
    assert "attempt 1 ended without an outcome" in caplog.text
    final = status()["queued_run"]
    assert (final["state"], final["attempt"]) == ("finished", 2)


def test_overlapping_runs_on_azurite_exactly_one_applies(azure_env, lite, caplog) -> None:
    """Two operators' requests and the timer at once; the queue runs both requests at once too (two
    instances), so the run lock alone keeps them apart."""
    lite.server.latency = 0.01  # long enough for the runs to overlap
    queue = run_queue_client(azure_env)
    http = FUNCTIONS["sync_http"].get_user_function()
    timer = FUNCTIONS["sync_timer"].get_user_function()

    async def three_at_once() -> list:
        request = func.HttpRequest(method="POST", url="/api/sync", body=b"")
        posts = [asyncio.create_task(http(request)) for _ in range(2)]
        scheduled = asyncio.create_task(timer(TimerRequest(past_due=False)))
        workers = []
        while not all(post.done() for post in posts):  # every message at once, as on two instances
            workers += [asyncio.create_task(run_queued(queue, m)) for m in await receive_waiting(queue, 32)]
            await asyncio.sleep(0.05)
        await asyncio.gather(scheduled, *workers)
        return [post.result() for post in posts]

    with caplog.at_level(logging.INFO):
        first, second = asyncio.run(three_at_once())
    assert {first.status_code, second.status_code} <= {200, 409}
    created = [r for r in lite.server.requests(["POST"]) if r.path == "/team/new"]
    assert len(created) == 3, "the three teams were created exactly once"
    assert status()["running"] is None and status()["last_run"]["dry_run"] is False


def provisioning_log(**params: str) -> tuple[int, object]:
    request = func.HttpRequest(method="GET", url="/api/sync/log", body=b"", params=params)
    response = asyncio.run(FUNCTIONS["sync_log"].get_user_function()(request))
    return response.status_code, json.loads(response.get_body())


def test_two_timer_runs_on_azurite_then_the_log_shows_what_they_did_to_a_user(azure_env, graph) -> None:
    timer = FUNCTIONS["sync_timer"].get_user_function()
    asyncio.run(timer(TimerRequest(past_due=False)))
    first = status()["last_run"]["run_id"]
    graph.tenant.remove_member(oid("Engineering"), oid("eng0"))
    asyncio.run(timer(TimerRequest(past_due=False)))
    second = status()["last_run"]["run_id"]

    code, entries = provisioning_log(user="eng0@contoso.com", since="1h")
    assert code == 200
    # the container is the app's one: earlier tests' runs are in it too
    ours = [(e["run_id"], e["type"], e["outcome"], e["trigger"]) for e in entries if e["run_id"] in (first, second)
            and e.get("team_alias") == "Engineering"]
    assert ours == [(first, "add_member", "applied", "timer"), (second, "remove_member", "applied", "timer")]
    assert all(e["reason"] for e in entries)


@pytest.mark.parametrize(("params", "message"), [({"since": "week"}, "such as 7d"),
                                                 ({"who": "x"}, "who: not a known parameter")])
def test_a_bad_log_query_is_refused_with_400(app_env, params: dict, message: str) -> None:
    code, body = provisioning_log(**params)
    assert code == 400 and message in body["error"]


def test_a_run_that_needs_attention_fails_the_timer_after_saving_its_report(app_env, graph, lite) -> None:
    graph.server.faults = ScriptedFaults().add("GET", f"/groups/{oid('Operations')}/", Fault("status", 500), 20)
    response = post(b"")
    report = json.loads(response.get_body())
    assert response.status_code == 200 and report["complete"] is False
    assert any(f"({oid('Operations')}) could not be read" in reason for reason in report["attention"])

    timer = FUNCTIONS["sync_timer"].get_user_function()
    with pytest.raises(NeedsAttention, match="could not be read"):
        asyncio.run(timer(TimerRequest(past_due=False)))
    saved = status()["last_run"]
    assert saved["trigger"] == "timer" and saved["complete"] is False
    assert any(oid("Operations") in reason for reason in saved["attention"])

    graph.server.faults = ScriptedFaults()
    asyncio.run(timer(TimerRequest(past_due=False)))  # a clean run: the invocation succeeds
    assert status()["last_run"]["complete"] is True


def test_a_queue_message_round_trips_the_request_and_a_foreign_one_is_refused() -> None:
    request = RunRequest(dry_run=True, force=True, group_ids=frozenset({oid("Operations")}), trigger="http")
    job = new_job(request)
    assert decode_job(encode_job(job)) == job
    for foreign in ("not json", "[]", '{"request_id": "x"}', '{"request_id": "../a", "body": {}}',
                    '{"request_id": "abc", "body": {"verbose": true}}'):
        with pytest.raises(RequestError):
            decode_job(foreign)

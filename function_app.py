"""Azure Functions entry points: a timer, an operator's HTTP trigger and the queue trigger that runs
what the HTTP trigger hands over, around one sync_core run.

Thin on purpose: settings are read per invocation (a bad setting fails that run, loudly, not the
indexing of every function), and everything else lives in sync_core. With the app's storage the HTTP
trigger puts a run on a queue (sync_core/run_queue.py): Flex Consumption may scale in an instance
whose HTTP function has answered, but not one a queue invocation runs on. Without storage (a local
host) it runs the sync itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

import azure.functions as func

from sync_core import provisioning_log, run_queue, telemetry
from sync_core.errors import ConfigError, LockBusy, NeedsAttention, RequestError, StateStoreError, SyncError
from sync_core.http_api import parse_log_query, parse_sync_body
from sync_core.redact import error_line, install_log_redaction, redact
from sync_core.runner import STORED_ACTIONS, RunRequest, run_recorded
from sync_core.settings import Settings, check_schedule
from sync_core.state import StateBackend, open_state

install_log_redaction()  # every record of the process: ours, the SDKs', the host's
log = logging.getLogger("entra_litellm_sync")
app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

_background: set[asyncio.Task[Any]] = set()  # keeps runs that outlive their HTTP request alive
telemetry.start(os.environ)  # to Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set

# A missing or bad SYNC_SCHEDULE makes the host skip the timer silently; say it at start-up.
_schedule_problem = check_schedule(os.environ)
if _schedule_problem:
    log.error("the timer will not run: %s", _schedule_problem)


def _load() -> tuple[Settings, StateBackend]:
    return Settings.from_env(os.environ), open_state(os.environ)


@app.timer_trigger(schedule="%SYNC_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
async def sync_timer(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.warning("timer run is past due (the host was down or busy at the scheduled time)")
    # Any failure fails this invocation, visibly, as one redacted line: the host logs the exception.
    try:
        settings, state = _load()
        report = await run_recorded(settings, RunRequest(dry_run=False, trigger="timer"), state)
    except LockBusy as exc:
        log.info("timer run skipped: %s", exc)
        return
    except Exception as exc:
        raise NeedsAttention([error_line(exc)]) from None
    if report.exit_code != 0:
        # The report is saved (GET /api/sync/status shows it); failing the invocation is what makes
        # Azure Monitor count a run that needs someone.
        raise NeedsAttention([redact(reason) for reason in report.attention()])


@app.route(route="sync", methods=[func.HttpMethod.POST], auth_level=func.AuthLevel.FUNCTION)
async def sync_http(req: func.HttpRequest) -> func.HttpResponse:
    try:
        request = parse_sync_body(req.get_body())
        settings, state = _load()
        queue = run_queue.open_run_queue(os.environ)
    except RequestError as exc:
        return _json({"error": str(exc)}, 400)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return _json({"error": f"configuration error: {exc}"}, 500)
    if queue is not None:
        try:
            return await _hand_over(settings, request, state, queue)
        except StateStoreError as exc:  # the lock, a record or the queue could not be reached
            log.error("POST /api/sync: %s", exc)
            return _json({"error": str(exc)}, 502)
        finally:
            await queue.aclose()
    task = asyncio.create_task(run_recorded(settings, request, state))
    _background.add(task)
    task.add_done_callback(_finished)
    # The platform cuts HTTP responses at 230 s: answer 202 well before and let the run go on.
    done, _ = await asyncio.wait({task}, timeout=settings.http_wait)
    if not done:
        return _json({"status": "running", "status_url": "/api/sync/status"}, 202)
    try:
        report = task.result()
    except LockBusy as exc:
        return _busy(exc)
    except RequestError as exc:
        return _json({"error": str(exc)}, 400)
    except Exception as exc:  # a SyncError, or one nobody expected: one line either way, no traceback
        return _json({"error": error_line(exc)}, 502)
    return _json(report.to_dict(), 200)


async def _hand_over(settings: Settings, request: RunRequest, state: StateBackend,
                     queue: run_queue.RunQueue) -> func.HttpResponse:
    """Queue the run, then answer with its outcome if it comes within SYNC_HTTP_WAIT_SECONDS, else 202."""
    if not request.dry_run and (holder := await state.lock_info()) is not None:
        return _busy(LockBusy(holder.started_at, holder.trigger))  # one applying run at a time
    job = run_queue.new_job(request)
    await run_queue.record(state, job.request_id, "queued")  # before sending: the queue function may be quick
    try:
        await queue.send(job)
    except StateStoreError as exc:
        await run_queue.record(state, job.request_id, "failed", error=str(exc), kind="sync")
        raise
    outcome = await run_queue.wait_for_outcome(state, job.request_id, settings.http_wait) or {}
    status = {"finished": 200, "refused": 409}.get(outcome.get("state", ""))
    if status == 200:
        return _json(outcome["report"], 200)
    if status == 409 or outcome.get("state") == "failed":
        body = {k: outcome.get(k) for k in ("error", "running_since", "running_trigger") if k in outcome}
        return _json(body, status or _FAILURE_STATUS.get(outcome.get("kind", ""), 502))
    return _json({"status": outcome.get("state", "queued"), "request_id": job.request_id,
                  "status_url": "/api/sync/status"}, 202)


# What a queued run failed with, as recorded, and the status POST /api/sync answers with for it.
_FAILURES: dict[str, type[SyncError]] = {"request": RequestError, "config": ConfigError}
_FAILURE_STATUS = {"request": 400, "config": 500}


@app.queue_trigger(arg_name="message", queue_name=run_queue.RUN_QUEUE, connection="AzureWebJobsStorage")
async def sync_queued(message: func.QueueMessage) -> None:
    """Run what POST /api/sync queued, recording its outcome. A run that fails on purpose is recorded
    and not retried; one that crashed is retried by the host (host.json maxDequeueCount), and a
    redelivery of a job whose last attempt never recorded an outcome says so."""
    job = run_queue.decode_job(message.get_body().decode("utf-8"))
    state = open_state(os.environ)
    previous = await run_queue.read_record(state, job.request_id)
    if previous is not None and previous.get("state") in run_queue.TERMINAL:
        log.info("queued run %s was already %s", job.request_id, previous["state"])
        return
    attempt = message.dequeue_count or 1
    if previous is not None and previous.get("state") == "running":
        log.error("queued run %s: attempt %d ended without an outcome (stopped or crashed); running it again",
                  job.request_id, attempt - 1)
    async with run_queue.running(state, job, attempt) as conclude:
        try:
            report = await run_recorded(Settings.from_env(os.environ), job.request, state)
        except LockBusy as exc:
            log.info("queued run %s refused: %s", job.request_id, exc)
            await conclude("refused", **_busy_fields(exc))
            return
        except SyncError as exc:
            log.error("queued run %s failed: %s", job.request_id, exc)
            kind = next((k for k, cls in _FAILURES.items() if isinstance(exc, cls)), "sync")
            await conclude("failed", error=str(exc), kind=kind)
            return
        except Exception as exc:  # retried by the host, which logs it: one redacted line, no traceback
            raise RuntimeError(error_line(exc)) from None
        stored = report.to_dict(max_actions=STORED_ACTIONS)
        await conclude("finished", report=stored, exit_code=report.exit_code)


@app.route(route="sync/status", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.FUNCTION)
async def sync_status(req: func.HttpRequest) -> func.HttpResponse:
    try:
        state = open_state(os.environ)
    except ConfigError as exc:
        return _json({"error": f"configuration error: {exc}"}, 500)
    report, holder, queued = await asyncio.gather(
        state.last_report(), state.lock_info(), run_queue.latest(state))
    running = None if holder is None else {
        "started_at": holder.started_at.isoformat() if holder.started_at else None, "trigger": holder.trigger}
    return _json({"last_run": report, "running": running, "queued_run": queued,
                  "schedule_problem": _schedule_problem}, 200)


@app.route(route="sync/log", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.FUNCTION)
async def sync_log(req: func.HttpRequest) -> func.HttpResponse:
    """The provisioning log: ?user=EMAIL|ID&team=ALIAS|ID&since=7d, a JSON list of entries."""
    try:
        query = parse_log_query(req.params)
        state = open_state(os.environ)
    except RequestError as exc:
        return _json({"error": str(exc)}, 400)
    except ConfigError as exc:
        return _json({"error": f"configuration error: {exc}"}, 500)
    try:
        return _json(await provisioning_log.read(state, query), 200)
    except SyncError as exc:
        return _json({"error": str(exc)}, 502)


def _finished(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    error = None if task.cancelled() else task.exception()
    if error is not None and not isinstance(error, LockBusy | RequestError):
        log.error("sync run failed: %s", error)


def _busy_fields(exc: LockBusy) -> dict[str, Any]:
    started = exc.started_at.isoformat() if exc.started_at else None
    return {"error": str(exc), "running_since": started, "running_trigger": exc.trigger}


def _busy(exc: LockBusy) -> func.HttpResponse:
    return _json(_busy_fields(exc), 409)


def _json(body: Any, status: int) -> func.HttpResponse:
    text = redact(json.dumps(body, default=str))
    return func.HttpResponse(text, status_code=status, mimetype="application/json")

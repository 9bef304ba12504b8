"""Azure Functions entry points: a timer and an operator's HTTP trigger around one sync_core run.

Thin on purpose: settings are read per invocation (a bad setting fails that run, loudly, not the
indexing of every function), and everything else lives in sync_core.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

import azure.functions as func

from sync_core.errors import ConfigError, LockBusy, NeedsAttention, RequestError
from sync_core.http_api import parse_sync_body
from sync_core.redact import error_line, install_log_redaction, redact
from sync_core.runner import RunRequest, run_recorded
from sync_core.settings import Settings, check_schedule
from sync_core.state import StateBackend, open_state

install_log_redaction()  # every record of the process: ours, the SDKs', the host's
log = logging.getLogger("entra_litellm_sync")
app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

_background: set[asyncio.Task[Any]] = set()  # keeps runs that outlive their HTTP request alive

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
    except RequestError as exc:
        return _json({"error": str(exc)}, 400)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return _json({"error": f"configuration error: {exc}"}, 500)
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
        started = exc.started_at.isoformat() if exc.started_at else None
        return _json({"error": str(exc), "running_since": started, "running_trigger": exc.trigger}, 409)
    except RequestError as exc:
        return _json({"error": str(exc)}, 400)
    except Exception as exc:  # a SyncError, or one nobody expected: one line either way, no traceback
        return _json({"error": error_line(exc)}, 502)
    return _json(report.to_dict(), 200)


@app.route(route="sync/status", methods=[func.HttpMethod.GET], auth_level=func.AuthLevel.FUNCTION)
async def sync_status(req: func.HttpRequest) -> func.HttpResponse:
    try:
        state = open_state(os.environ)
    except ConfigError as exc:
        return _json({"error": f"configuration error: {exc}"}, 500)
    report, holder = await asyncio.gather(state.last_report(), state.lock_info())
    running = None if holder is None else {
        "started_at": holder.started_at.isoformat() if holder.started_at else None, "trigger": holder.trigger}
    return _json({"last_run": report, "running": running, "schedule_problem": _schedule_problem}, 200)


def _finished(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    error = None if task.cancelled() else task.exception()
    if error is not None and not isinstance(error, LockBusy | RequestError):
        log.error("sync run failed: %s", error)


def _json(body: Any, status: int) -> func.HttpResponse:
    text = redact(json.dumps(body, default=str))
    return func.HttpResponse(text, status_code=status, mimetype="application/json")

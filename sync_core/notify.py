"""Notifications: one JSON POST to SYNC_NOTIFY_WEBHOOK (a Teams or Slack incoming webhook) when an
applying run needs attention, none while later runs need the same attention, one when a run is
healthy again.

"The same attention" is the same set of reasons, their details and counts aside: "3 action(s)
failed" and "5 action(s) failed" are the same, a second group that cannot be read is new. What was
last posted is kept in the state document "notify"; a POST that fails is retried by the next run.

The body carries reasons, counts and what to do, nothing else: secrets the settings hold are
blanked out of it should a reason ever quote one. A webhook that fails or hangs is logged and never
fails or stalls the run (TIMEOUT_SECONDS).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import httpx

from sync_core.errors import StateStoreError
from sync_core.report import EXIT_HELD, Report
from sync_core.settings import Settings
from sync_core.state.base import StateBackend
from sync_core.tls import shared_tls_context

log = logging.getLogger("sync_core.notify")
TIMEOUT_SECONDS = 5.0
STATE = "notify"
PRODUCT = "entra-litellm-sync"
FORCE = ("let the held removals through once, if they are intended: `python -m sync_core apply --force` "
         "or POST /api/sync {\"force\": true}")
LOOK = ("look at the last run: GET /api/sync/status (or .sync-state/last-report.json), and "
        "`python -m sync_core doctor` for the setup; failed actions are retried by the next run")


async def after_run(settings: Settings, state: StateBackend, report: Report) -> None:
    """Post what changed about the sync's health since the last post, if anything did."""
    if settings.notify_webhook is None or report.dry_run:
        return
    reasons = report.attention()
    counts = {key: value for key, value in report.summary().items() if value}
    await _transition(settings, state, {
        "run_id": report.run_id, "trigger": report.trigger, "exit_code": report.exit_code,
        "reasons": reasons, "counts": counts,
        "what_to_do": ([FORCE] if report.exit_code == EXIT_HELD else [LOOK]) if reasons else [],
    })


async def run_failed(settings: Settings, state: StateBackend, trigger: str, error: Exception) -> None:
    """A run that stopped before it could apply anything (e.g. the master key was refused)."""
    if settings.notify_webhook is None:
        return
    await _transition(settings, state, {"run_id": None, "trigger": trigger, "exit_code": 1,
                                        "reasons": [f"the run failed: {error}"], "counts": {},
                                        "what_to_do": [LOOK]})


async def _transition(settings: Settings, state: StateBackend, run: dict[str, Any]) -> None:
    needs = bool(run["reasons"])
    # A reason's gist: what comes before its details, numbers aside.
    signature = sorted({re.sub(r"\d+", "#", reason.split(": ", 1)[0]) for reason in run["reasons"]})
    try:
        last = await state.load_state(STATE) or {}
    except StateStoreError as exc:
        log.warning("notification state unreadable, treated as healthy: %s", exc)
        last = {}
    if needs == bool(last.get("needs_attention")) and (not needs or signature == last.get("signature")):
        return  # nothing new: still healthy, or the same attention already posted
    if not needs and not last:
        return  # healthy, and never posted: nothing to say
    status = "needs_attention" if needs else "healthy_again"
    if await _post(settings, {"status": status, **run, "text": _text(status, run)}):
        try:
            await state.save_state(STATE, {"needs_attention": needs, "signature": signature})
        except StateStoreError as exc:
            log.warning("notification state not saved; the next run may post again: %s", exc)


async def _post(settings: Settings, body: dict[str, Any]) -> bool:
    assert settings.notify_webhook is not None
    url = settings.notify_webhook.get_secret_value()
    data = _redact(json.dumps(body, ensure_ascii=False), settings)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, verify=shared_tls_context()) as client:
            # A total bound as well: httpx's timeout is per read, and a receiver can trickle.
            response = await asyncio.wait_for(
                client.post(url, content=data, headers={"Content-Type": "application/json"}),
                TIMEOUT_SECONDS * 2)
    except (httpx.HTTPError, TimeoutError) as exc:
        log.error("notification not sent (SYNC_NOTIFY_WEBHOOK): %s", type(exc).__name__)
        return False
    if response.is_error:
        log.error("notification refused (SYNC_NOTIFY_WEBHOOK): HTTP %d", response.status_code)
        return False
    return True


def _text(status: str, run: dict[str, Any]) -> str:
    """The message people read in the channel (Teams and Slack both show ``text``)."""
    trigger = f"{run['trigger']} run {run['run_id'] or ''}".rstrip()
    counts = ", ".join(f"{key}={value}" for key, value in run["counts"].items()) or "no changes"
    if status == "healthy_again":
        return f"{PRODUCT} is healthy again: the {trigger} did everything it set out to do ({counts})."
    lines = [f"{PRODUCT} needs attention (exit code {run['exit_code']}) after the {trigger}:",
             *(f"- {reason}" for reason in run["reasons"]), f"Counts: {counts}.",
             *(f"What to do: {step}" for step in run["what_to_do"])]
    return "\n".join(lines)


def _redact(text: str, settings: Settings) -> str:
    """Blank out every secret the settings hold (JSON-escaped as they would appear in ``text``)."""
    for secret in (settings.litellm_master_key, settings.entra_client_secret, settings.graph_access_token,
                   settings.notify_webhook):
        value = secret.get_secret_value() if secret is not None else ""
        if value:
            text = text.replace(json.dumps(value)[1:-1], "[redacted]")
    return text

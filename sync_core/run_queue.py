"""HTTP-started runs handed to a queue-triggered function, and the record each one leaves behind.

On Flex Consumption an instance with no invocation in flight may be scaled in: work an HTTP function
goes on with after it has answered is not protected. So POST /api/sync puts the run on a storage
queue (``RUN_QUEUE``) and the queue trigger runs it, an invocation the host tracks until it ends.

Each request has a record, the state document ``queued-run-<request id>``, and the state document
``queued-run`` names the latest request:

    queued    the HTTP function put it on the queue
    running   the queue function works on it (``beat`` is renewed while it does)
    finished  done; ``report`` is the run's report
    refused   another applying run held the run lock
    failed    ``error`` says why (``kind``: request, config or sync)

A record that says running but whose beat is older than ``STALE_AFTER`` belongs to a run that died
(its instance was stopped, or the process crashed): ``describe`` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sync_core.errors import RequestError, StateStoreError
from sync_core.http_api import parse_sync_body
from sync_core.runner import RunRequest
from sync_core.state.base import StateBackend
from sync_core.state.redact import describe as redact
from sync_core.state.settings import make_queue_client, read_storage_setting

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

RUN_QUEUE = "sync-runs"  # infra/app/storage.bicep creates it (and its -poison queue)
LATEST = "queued-run"
BEAT_SECONDS = 30.0
STALE_AFTER = timedelta(seconds=4 * BEAT_SECONDS)
TERMINAL = frozenset({"finished", "refused", "failed"})


@dataclass(frozen=True)
class Job:
    request_id: str
    request: RunRequest


def new_job(request: RunRequest) -> Job:
    return Job(uuid.uuid4().hex, request)


def _body(request: RunRequest) -> dict[str, Any]:
    """The request as POST /api/sync takes it (decode_job reads it back through the same parser)."""
    body: dict[str, Any] = {"dry_run": request.dry_run, "force": request.force}
    if request.group_ids is not None:
        body["group_ids"] = sorted(request.group_ids)
    return body


def encode_job(job: Job) -> str:
    return json.dumps({"request_id": job.request_id, "body": _body(job.request)})


def decode_job(text: str) -> Job:
    """The job in a queue message; RequestError for a message this module did not write."""
    try:
        message = json.loads(text)
        request_id, body = message["request_id"], message["body"]
    except (json.JSONDecodeError, TypeError, KeyError):
        raise RequestError("the queue message is not a sync run request") from None
    if not isinstance(request_id, str) or not request_id.isalnum() or len(request_id) > 64:
        raise RequestError("the queue message's request_id is not an id this app writes")
    return Job(request_id, parse_sync_body(json.dumps(body).encode(), trigger="http"))


class RunQueue:
    """The storage queue the HTTP function sends jobs to (the sync SDK client, in worker threads)."""

    def __init__(self, client: QueueClient) -> None:
        self._client = client

    async def send(self, job: Job) -> None:
        from azure.core.exceptions import AzureError

        try:
            await asyncio.to_thread(self._client.send_message, encode_job(job))
        except AzureError as exc:
            raise StateStoreError(f"could not put the run on queue {RUN_QUEUE}: {redact(exc)}") from None

    async def aclose(self) -> None:
        await asyncio.to_thread(self._client.close)


def open_run_queue(env: Mapping[str, str]) -> RunQueue | None:
    """The run queue of the app's storage settings; None without storage settings (a local run)."""
    target = read_storage_setting(env)
    return None if target is None else RunQueue(make_queue_client(target, RUN_QUEUE))


# ---- records ----

def _name(request_id: str) -> str:
    return f"{LATEST}-{request_id}"


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


async def record(state: StateBackend, request_id: str, status: str, **fields: Any) -> dict:
    doc = {"request_id": request_id, "state": status, "updated_at": _now(), **fields}
    await state.save_state(_name(request_id), doc)
    if status == "queued":
        await state.save_state(LATEST, {"request_id": request_id})
    return doc


async def read_record(state: StateBackend, request_id: str) -> dict | None:
    return await state.load_state(_name(request_id))


async def latest(state: StateBackend) -> dict | None:
    """The latest request's record as the status shows it (without its report), or None."""
    pointer = await state.load_state(LATEST)
    if pointer is None or not isinstance(pointer.get("request_id"), str):
        return None
    found = await read_record(state, pointer["request_id"])
    return None if found is None else describe(found)


def describe(doc: Mapping[str, Any], now: datetime | None = None) -> dict:
    """The record for people: ``died`` when a running record has not been renewed in time."""
    shown = {k: v for k, v in doc.items() if k != "report"}
    if doc.get("state") == "running":
        beat = _parse(doc.get("beat") or doc.get("updated_at"))
        shown["died"] = beat is None or (now or datetime.now(UTC)) - beat > STALE_AFTER
    return shown


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(value)
    return None


Conclude = Callable[..., Awaitable[dict]]


@contextlib.asynccontextmanager
async def running(state: StateBackend, job: Job, attempt: int) -> AsyncIterator[Conclude]:
    """Record the job as running for the ``async with`` body, renewing its beat every BEAT_SECONDS.
    The body ends it with ``await conclude(outcome, **fields)``; a body that raises leaves it running
    (to be found dead, or run again)."""
    doc = await record(state, job.request_id, "running", attempt=attempt, beat=_now(),
                       request=_body(job.request))

    async def beat() -> None:
        while True:
            await asyncio.sleep(BEAT_SECONDS)
            with contextlib.suppress(StateStoreError):  # a missed beat is not worth failing the run for
                await state.save_state(_name(job.request_id), {**doc, "beat": _now()})

    async def conclude(outcome: str, **fields: Any) -> dict:
        task.cancel()
        kept = {k: doc[k] for k in ("attempt", "request")}
        return await record(state, job.request_id, outcome, **kept, **fields)

    task = asyncio.create_task(beat(), name=f"queued-run-beat:{job.request_id}")
    try:
        yield conclude
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for_outcome(state: StateBackend, request_id: str, seconds: float,
                           poll: float = 0.5) -> dict | None:
    """The request's record once it is final, or its latest record after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    doc = await read_record(state, request_id)
    while (doc is None or doc.get("state") not in TERMINAL) and loop.time() < deadline:
        await asyncio.sleep(min(poll, max(0.0, deadline - loop.time())))
        doc = await read_record(state, request_id)
    return doc


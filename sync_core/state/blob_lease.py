"""The run lock on a blob: a fixed-duration lease kept alive by an asyncio task while the run works.

Why a fixed duration and not an infinite lease: a holder that dies (worker recycled, process killed)
cannot release, and an infinite lease would then block every later run until someone breaks it by
hand. A 15..60 s lease expires by itself; the holder renews it every third of its duration.

The holder records who it is (trigger, start time, host) as the lock blob's metadata, written with
the lease so only the holder can write it. Lease operations leave metadata alone, so a crashed
holder's metadata stays behind; readers therefore trust it only while the blob is actually leased.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from urllib.parse import quote, unquote

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobLeaseClient

from sync_core.errors import LockBusy, StateStoreError
from sync_core.state.base import LockInfo, RunLease, parse_started_at, utc_now
from sync_core.state.redact import describe

log = logging.getLogger(__name__)

MIN_LEASE_SECONDS = 15  # the service's limits for a fixed-duration lease
MAX_LEASE_SECONDS = 60
# Stop vouching for the lease this long before it would expire unrenewed: the executor checks
# ``lost`` only between actions, so it needs a little warning.
_SAFETY_MARGIN_SECONDS = 3.0
_RETRY_AFTER_FAILURE_SECONDS = 1.0
_HOLDER_RECORD_PAUSES = (0.0, 0.1, 0.2, 0.4, 0.8)  # seconds before each read of a busy lock's holder


@contextlib.asynccontextmanager
async def hold_lease(blob: BlobClient, trigger: str, lease_seconds: int) -> AsyncIterator[RunLease]:
    """Acquire the lease on ``blob`` (which must exist), keep it renewed, release it on the way out."""
    leaser = BlobLeaseClient(blob)
    # Taken before the request: the lease may start any time until the answer arrives, and the
    # renewal deadline must not be later than the service's.
    acquired_at = time.monotonic()
    try:
        await asyncio.to_thread(leaser.acquire, lease_duration=lease_seconds)
    except HttpResponseError as exc:
        if exc.status_code == 409 and exc.error_code == "LeaseAlreadyPresent":
            raise await _busy(blob) from None
        raise StateStoreError(f"could not acquire the run lock: {describe(exc)}") from None
    except AzureError as exc:
        raise StateStoreError(f"could not acquire the run lock: {describe(exc)}") from None

    lease = RunLease(trigger=trigger, started_at=utc_now(), host=socket.gethostname())
    stop = asyncio.Event()
    renewer: asyncio.Task[None] | None = None
    try:
        try:
            await asyncio.to_thread(blob.set_blob_metadata, _metadata(lease), lease=leaser)
        except AzureError as exc:
            raise StateStoreError(f"could not record the run lock holder: {describe(exc)}") from None
        renewer = asyncio.create_task(
            _keep_renewed(leaser, lease, lease_seconds, acquired_at, stop), name=f"run-lock-renewal:{trigger}"
        )
        yield lease
    finally:
        stop.set()
        if renewer is not None:
            # Let an in-flight renewal finish instead of cancelling it: its thread would run on and
            # could race the release below.
            await renewer
        await _release(blob, leaser)


async def _busy(blob: BlobClient) -> LockBusy:
    """LockBusy naming the holder; without names if its record cannot be read (the lock is held anyway).

    The holder writes its record just after it acquires the lease, so a run turned away in between
    finds the lease without a record: it looks again a few times before answering without names.
    """
    info = None
    for pause in _HOLDER_RECORD_PAUSES:
        await asyncio.sleep(pause)
        try:
            info = await read_holder(blob)
        except StateStoreError as exc:
            log.warning("the run lock is held, but its holder could not be read: %s", exc)
            break
        if info is None or info.started_at is not None:  # released meanwhile, or a complete record
            break
    return LockBusy(info.started_at if info else None, info.trigger if info else None)


async def read_holder(blob: BlobClient) -> LockInfo | None:
    """The current holder from the lock blob, or None if it is not leased (or does not exist)."""
    try:
        props = await asyncio.to_thread(blob.get_blob_properties)
    except ResourceNotFoundError:
        return None
    except AzureError as exc:
        raise StateStoreError(f"could not read the run lock: {describe(exc)}") from None
    # "breaking": a break was requested but the holder keeps the lease until the break period ends.
    if props.lease.state not in ("leased", "breaking"):
        return None
    meta = props.metadata or {}
    host = meta.get("host")
    trigger = meta.get("trigger")
    return LockInfo(
        started_at=parse_started_at(meta.get("started_at")),
        trigger=unquote(trigger) if trigger else None,
        host=unquote(host) if host else None,
    )


def _metadata(lease: RunLease) -> dict[str, str]:
    # Metadata travels in HTTP headers: ASCII only, hence the percent-encoding of free text.
    return {
        "started_at": lease.started_at.isoformat(),
        "trigger": quote(lease.trigger, safe=" :/@+"),
        "host": quote(lease.host, safe=" :/@+"),
    }


async def _keep_renewed(
    leaser: BlobLeaseClient, lease: RunLease, lease_seconds: int, last_renewed: float, stop: asyncio.Event
) -> None:
    """Renew every third of the lease; on trouble keep trying until the lease may have expired."""
    interval = lease_seconds / 3
    delay = interval
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return
        try:
            await asyncio.to_thread(leaser.renew)
        except HttpResponseError as exc:
            if exc.status_code is not None and 400 <= exc.status_code < 500:
                # 409 LeaseIdMismatch / LeaseIsBroken...: someone broke or took over the lease.
                _lose(lease, f"the lease was taken away: {describe(exc)}")
                return
            failure = describe(exc)
        except Exception as exc:  # network trouble, or the client lost its lease id: retry until expiry
            failure = describe(exc)
        else:
            last_renewed = time.monotonic()
            delay = interval
            continue
        remaining = last_renewed + lease_seconds - _SAFETY_MARGIN_SECONDS - time.monotonic()
        if remaining <= 0:
            _lose(lease, f"could not renew the lease before it expired: {failure}")
            return
        log.warning("run lock renewal failed, retrying (%.0f s left): %s", remaining, failure)
        delay = min(_RETRY_AFTER_FAILURE_SECONDS, remaining)


def _lose(lease: RunLease, reason: str) -> None:
    log.error("run lock lost (trigger %s): %s", lease.trigger, reason)
    lease.mark_lost(reason)


async def _release(blob: BlobClient, leaser: BlobLeaseClient) -> None:
    """Clear the holder record and release; failures only log, the lease then expires by itself.

    Tried even after the lease was marked lost: if it was lost only for want of a renewal answer it
    may still be ours, and if someone else holds it now both calls fail harmlessly (wrong lease id).
    """
    try:
        # Cleared so a reader never sees this run's record on a blob the next holder just leased.
        await asyncio.to_thread(blob.set_blob_metadata, {}, lease=leaser)
        await asyncio.to_thread(leaser.release)
    except Exception as exc:
        log.warning("could not release the run lock; it expires within its lease duration: %s", describe(exc))

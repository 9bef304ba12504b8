"""The blob run lock against a real Azurite: exclusion, holder info, renewal, expiry and loss."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from azure.storage.blob import BlobLeaseClient, BlobServiceClient

from sync_core.errors import LockBusy
from sync_core.state.base import RunLease, utc_now
from sync_core.state.blob import LOCK_BLOB, BlobStateBackend

pytestmark = pytest.mark.azurite

MakeBackend = Callable[..., BlobStateBackend]


async def _hold_until(backend: BlobStateBackend, trigger: str, held: list[RunLease], release: asyncio.Event):
    """Try to take the lock; if it is ours, keep it until ``release``. Returns the LockBusy, if any."""
    try:
        async with backend.run_lock(trigger) as lease:
            held.append(lease)
            await release.wait()
    except LockBusy as exc:
        return exc
    return None


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_two_overlapping_holders_exactly_one_gets_in(make_blob_backend: MakeBackend):
    # Two backends with their own clients, like the timer and the HTTP trigger on two instances.
    first, second = make_blob_backend(), make_blob_backend()

    async def scenario() -> None:
        held: list[RunLease] = []
        release = asyncio.Event()
        tasks = [
            asyncio.create_task(_hold_until(first, "timer", held, release)),
            asyncio.create_task(_hold_until(second, "http", held, release)),
        ]
        done, _ = await asyncio.wait(tasks, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        assert len(done) == 1, "the loser should have been turned away while the winner still holds"
        busy = done.pop().result()
        assert isinstance(busy, LockBusy)
        # The loser can be answered before the winner's task resumes from writing its record.
        await asyncio.wait_for(_until(lambda: bool(held)), timeout=10)
        assert len(held) == 1
        winner = held[0]
        assert busy.trigger == winner.trigger
        assert busy.started_at == winner.started_at
        assert winner.trigger in str(busy) and winner.started_at.isoformat() in str(busy)
        release.set()
        results = await asyncio.gather(*tasks)
        assert results.count(None) == 1  # the winner finished normally after release

    asyncio.run(scenario())


def test_lock_info_while_held_and_after_release(make_blob_backend: MakeBackend):
    holder, observer = make_blob_backend(), make_blob_backend()

    async def scenario() -> None:
        assert await observer.lock_info() is None  # not even the container exists yet
        async with holder.run_lock("http") as lease:
            info = await observer.lock_info()
            assert info is not None
            assert (info.trigger, info.started_at, info.host) == ("http", lease.started_at, lease.host)
        assert await observer.lock_info() is None
        async with observer.run_lock("timer"):  # and the lock is free again
            pass

    asyncio.run(scenario())


def test_non_ascii_trigger_round_trips_through_metadata(make_blob_backend: MakeBackend):
    backend = make_blob_backend()

    async def scenario() -> None:
        async with backend.run_lock("http: Jürgen's request"):
            info = await backend.lock_info()
            assert info is not None and info.trigger == "http: Jürgen's request"

    asyncio.run(scenario())


def test_lock_is_released_when_the_body_fails(make_blob_backend: MakeBackend):
    backend = make_blob_backend()

    async def scenario() -> None:
        with pytest.raises(RuntimeError, match="boom"):
            async with backend.run_lock("timer"):
                raise RuntimeError("boom")
        assert await backend.lock_info() is None
        async with backend.run_lock("timer"):
            pass

    asyncio.run(scenario())


@pytest.mark.slow
def test_renewal_keeps_the_lease_past_its_duration(make_blob_backend: MakeBackend):
    holder, contender = make_blob_backend(lease_seconds=15), make_blob_backend(lease_seconds=15)

    async def scenario() -> None:
        async with holder.run_lock("timer") as lease:
            acquired = time.monotonic()
            await asyncio.sleep(17)  # past the 15 s lease: only renewal keeps it ours
            with pytest.raises(LockBusy) as busy:
                async with contender.run_lock("http"):
                    pytest.fail("the contender got in while the holder was renewing")
            assert busy.value.trigger == "timer"
            await asyncio.sleep(20 - (time.monotonic() - acquired))
            assert not lease.lost
        async with contender.run_lock("http"):
            pass

    asyncio.run(scenario())


@pytest.mark.slow
def test_crashed_holder_blocks_until_its_lease_expires(
    make_blob_backend: MakeBackend, blob_service: BlobServiceClient, container_name: str
):
    # A run killed mid-way: it took the lease and wrote its record, but never releases or renews.
    container = blob_service.create_container(container_name)
    lock_blob = container.upload_blob(LOCK_BLOB, b"")
    crashed_at = time.monotonic()
    crashed = BlobLeaseClient(lock_blob)
    crashed.acquire(lease_duration=15)
    started = utc_now()
    lock_blob.set_blob_metadata(
        {"started_at": started.isoformat(), "trigger": "timer", "host": "dead-worker"}, lease=crashed
    )
    backend = make_blob_backend()

    async def scenario() -> float:
        with pytest.raises(LockBusy) as busy:
            async with backend.run_lock("http"):
                pytest.fail("got in while the crashed holder's lease was still valid")
        assert (busy.value.trigger, busy.value.started_at) == ("timer", started)
        info = await backend.lock_info()
        assert info is not None and info.host == "dead-worker"
        while time.monotonic() - crashed_at < 25:
            try:
                async with backend.run_lock("http"):
                    info = await backend.lock_info()
                    assert info is not None and info.trigger == "http"  # the new holder's record
                    return time.monotonic() - crashed_at
            except LockBusy:
                await asyncio.sleep(0.5)
        pytest.fail("the crashed holder's lease never expired")

    waited = asyncio.run(scenario())
    assert waited >= 14, f"next run got in after {waited:.1f} s, before the 15 s lease ran out"


def test_run_turned_away_before_the_holder_wrote_its_record_still_names_it(
    make_blob_backend: MakeBackend, blob_service: BlobServiceClient, container_name: str
):
    # The holder has the lease but is still writing its record when the other run asks.
    container = blob_service.create_container(container_name)
    lock_blob = container.upload_blob(LOCK_BLOB, b"")
    holder = BlobLeaseClient(lock_blob)
    holder.acquire(lease_duration=15)
    started = utc_now()
    record = {"started_at": started.isoformat(), "trigger": "timer", "host": "slow-writer"}
    backend = make_blob_backend()

    async def scenario() -> LockBusy:
        async def write_record_late() -> None:
            await asyncio.sleep(0.3)
            await asyncio.to_thread(lock_blob.set_blob_metadata, record, lease=holder)

        writer = asyncio.create_task(write_record_late())
        with pytest.raises(LockBusy) as busy:
            async with backend.run_lock("http"):
                pytest.fail("got in while the lease was held")
        await writer
        return busy.value

    busy = asyncio.run(scenario())
    holder.release()
    assert (busy.trigger, busy.started_at) == ("timer", started)


@pytest.mark.slow
def test_lease_taken_over_marks_the_holder_lost(
    make_blob_backend: MakeBackend, blob_service: BlobServiceClient, container_name: str
):
    backend = make_blob_backend(lease_seconds=15)
    lock_blob = blob_service.get_blob_client(container_name, LOCK_BLOB)

    async def scenario() -> None:
        async with backend.run_lock("timer") as lease:
            # An operator breaks the lease and another run takes it: the holder must notice.
            BlobLeaseClient(lock_blob).break_lease(lease_break_period=0)
            intruder = BlobLeaseClient(lock_blob)
            intruder.acquire(lease_duration=15)
            for _ in range(80):  # renewal runs every 5 s
                if lease.lost:
                    break
                await asyncio.sleep(0.1)
            assert lease.lost
            assert lease.lost_reason and "taken away" in lease.lost_reason
        # Leaving the body must not release (or clear the record of) the intruder's lease.
        assert lock_blob.get_blob_properties().lease.state == "leased"
        intruder.release()

    asyncio.run(scenario())


def test_lock_blob_deleted_between_runs_is_recreated(
    make_blob_backend: MakeBackend, blob_service: BlobServiceClient, container_name: str
):
    backend = make_blob_backend()

    async def run_once() -> None:
        async with backend.run_lock("timer"):
            pass

    asyncio.run(run_once())
    blob_service.get_blob_client(container_name, LOCK_BLOB).delete_blob()
    asyncio.run(run_once())
    assert blob_service.get_blob_client(container_name, LOCK_BLOB).exists()

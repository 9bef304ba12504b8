"""The local backend: flock run lock across real processes, atomic JSON documents."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from sync_core.errors import LockBusy, StateStoreError
from sync_core.state.local import LOCK_FILE, LocalStateBackend

REPO = Path(__file__).resolve().parents[2]


class Holder:
    """A lock_holder process; ``first_line`` is what it printed once it held the lock (or gave up)."""

    def __init__(self, directory: Path, trigger: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.state.lock_holder", str(directory), trigger],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        assert ready, "lock holder process did not report within 30 s"
        self.first_line = self.proc.stdout.readline().strip()

    def release(self) -> int:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return self.proc.wait(timeout=10)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        holder.close()


def test_overlapping_holders_in_two_processes(tmp_path: Path, holders: list[Holder]):
    other = Holder(tmp_path, "timer")
    holders.append(other)
    assert other.first_line.startswith("locked ")
    other_started = datetime.fromisoformat(other.first_line.split(" ", 1)[1])
    backend = LocalStateBackend(tmp_path)

    async def while_held() -> None:
        with pytest.raises(LockBusy) as busy:
            async with backend.run_lock("cli"):
                pytest.fail("got the lock another process holds")
        assert (busy.value.trigger, busy.value.started_at) == ("timer", other_started)
        info = await backend.lock_info()
        assert info is not None and (info.trigger, info.pid) == ("timer", other.proc.pid)

    asyncio.run(while_held())
    assert other.release() == 0

    async def after_release() -> None:
        assert await backend.lock_info() is None
        async with backend.run_lock("cli") as lease:
            # ...and now the roles are reversed: a third process is turned away with our details.
            third = Holder(tmp_path, "http")
            holders.append(third)
            assert third.first_line == f"busy cli {lease.started_at.isoformat()}"
            assert third.proc.wait(timeout=10) == 3

    asyncio.run(after_release())


def test_killed_holder_does_not_leave_a_stale_lock(tmp_path: Path, holders: list[Holder]):
    victim = Holder(tmp_path, "timer")
    holders.append(victim)
    assert victim.first_line.startswith("locked ")
    victim.kill()
    # The killed run's record is still in the file; only the (kernel-dropped) flock counts.
    assert '"trigger": "timer"' in (tmp_path / LOCK_FILE).read_text()
    backend = LocalStateBackend(tmp_path)

    async def scenario() -> None:
        assert await backend.lock_info() is None
        async with backend.run_lock("cli"):
            info = await backend.lock_info()
            assert info is not None and (info.trigger, info.pid) == ("cli", os.getpid())

    asyncio.run(scenario())


def test_lock_info_while_held_and_after_release(tmp_path: Path):
    backend = LocalStateBackend(tmp_path / "fresh")  # the directory is created on first use

    async def scenario() -> None:
        assert await backend.lock_info() is None
        async with backend.run_lock("cli") as lease:
            info = await backend.lock_info()
            assert info is not None
            assert (info.trigger, info.started_at, info.pid) == ("cli", lease.started_at, os.getpid())
            assert not lease.lost
        assert await backend.lock_info() is None
        assert (tmp_path / "fresh" / LOCK_FILE).read_text() == ""  # record cleared, file kept

    asyncio.run(scenario())


def test_lock_is_released_when_the_body_fails(tmp_path: Path):
    backend = LocalStateBackend(tmp_path)

    async def scenario() -> None:
        with pytest.raises(RuntimeError, match="boom"):
            async with backend.run_lock("cli"):
                raise RuntimeError("boom")
        async with backend.run_lock("cli"):
            pass

    asyncio.run(scenario())


def test_report_and_state_round_trip(tmp_path: Path):
    backend = LocalStateBackend(tmp_path)
    report = {"trigger": "cli", "notes": ["Grüße"], "summary": {"failed": 0}}

    async def scenario() -> None:
        assert await backend.last_report() is None
        assert await backend.load_state("delta") is None
        await backend.save_report(report)
        await backend.save_state("delta", {"link": "https://graph/delta?$deltatoken=1"})
        assert await backend.last_report() == report
        assert await backend.load_state("delta") == {"link": "https://graph/delta?$deltatoken=1"}
        await backend.save_state("delta", {"link": None})
        assert await backend.load_state("delta") == {"link": None}

    asyncio.run(scenario())
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["last-report.json", "state/delta.json"]  # no temp files left behind


def test_failed_write_keeps_the_previous_document(tmp_path: Path):
    backend = LocalStateBackend(tmp_path)
    asyncio.run(backend.save_state("delta", {"v": 1}))
    with pytest.raises(TypeError):
        asyncio.run(backend.save_state("delta", {"v": object()}))
    assert asyncio.run(backend.load_state("delta")) == {"v": 1}


def test_corrupt_document_raises_state_store_error(tmp_path: Path):
    (tmp_path / "last-report.json").write_text("[1, 2]")
    with pytest.raises(StateStoreError, match="expected an object"):
        asyncio.run(LocalStateBackend(tmp_path).last_report())


def test_unwritable_directory_raises_state_store_error(tmp_path: Path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    backend = LocalStateBackend(blocker / "state")

    async def scenario() -> None:
        with pytest.raises(StateStoreError, match="could not open the run lock"):
            async with backend.run_lock("cli"):
                pass
        with pytest.raises(StateStoreError, match="could not write"):
            await backend.save_report({})

    asyncio.run(scenario())

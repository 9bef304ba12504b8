"""State in a local directory, for the CLI on a laptop: no storage account needed.

    {dir}/run.lock            flock()ed by the running sync; holds {"started_at","trigger","pid"}
    {dir}/last-report.json
    {dir}/state/{name}.json
    {dir}/log/{YYYY-MM-DD}.jsonl  the provisioning log of one day, appended under an flock

flock() rather than "create the file if absent": the kernel drops the lock when its process dies,
so a killed run never leaves a stale lock behind. The lock file itself is never deleted: a process
that opened it just before the deletion would lock an orphaned inode while a third process locks a
fresh file, and both would think they hold the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import date
from pathlib import Path
from typing import IO

from sync_core.errors import LockBusy, StateStoreError
from sync_core.state.base import LockInfo, RunLease, parse_started_at, utc_now
from sync_core.state.documents import (
    LOG_PREFIX,
    REPORT_NAME,
    decode_object,
    encode_report,
    encode_state,
    log_chunks,
    log_day,
    log_path,
    state_path,
)

LOCK_FILE = "run.lock"
# lock_info() probes the lock with a shared flock for a moment; an exclusive attempt that lands in that
# moment fails although nobody runs. A few quick retries absorb that; a real holder keeps the lock
# far longer than this.
_ACQUIRE_ATTEMPTS = 4
_ACQUIRE_RETRY_SECONDS = 0.05


class LocalStateBackend:
    """StateBackend in a directory (created on first use)."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory

    @property
    def location(self) -> str:
        return str(self._dir)

    def run_lock(self, trigger: str) -> AbstractAsyncContextManager[RunLease]:
        return self._run_lock(trigger)

    @asynccontextmanager
    async def _run_lock(self, trigger: str) -> AsyncIterator[RunLease]:
        lock_file = await self._acquire()
        try:
            lease = RunLease(trigger=trigger, started_at=utc_now(), host=socket.gethostname())
            holder = {"started_at": lease.started_at.isoformat(), "trigger": trigger, "pid": os.getpid()}
            try:
                _write_holder(lock_file, holder)
            except OSError as exc:
                raise StateStoreError(
                    f"could not write the run lock {self._dir / LOCK_FILE}: {exc}"
                ) from None
            yield lease  # ``lost`` stays False: nothing can take a flock away from a live process
        finally:
            with contextlib.suppress(OSError):
                _write_holder(lock_file, None)
            lock_file.close()  # closing the descriptor releases the flock

    async def lock_info(self) -> LockInfo | None:
        try:
            with _open_lock_file(self._dir / LOCK_FILE, create=False) as lock_file:
                try:
                    fcntl.flock(lock_file, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return _holder_info(lock_file)
                return None  # we could lock it, so nobody holds it (closing drops our shared lock)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateStoreError(f"could not read the run lock {self._dir / LOCK_FILE}: {exc}") from None

    async def save_report(self, report: dict) -> None:
        await asyncio.to_thread(self._write, REPORT_NAME, encode_report(report))

    async def last_report(self) -> dict | None:
        return await asyncio.to_thread(self._read, REPORT_NAME)

    async def load_state(self, name: str) -> dict | None:
        return await asyncio.to_thread(self._read, state_path(name))

    async def save_state(self, name: str, doc: dict) -> None:
        await asyncio.to_thread(self._write, state_path(name), encode_state(doc))

    async def append_log(self, day: date, lines: list[bytes]) -> None:
        await asyncio.to_thread(self._append, log_path(day), log_chunks(lines))

    async def read_log(self, since: date) -> list[bytes]:
        def read() -> list[bytes]:
            return [(self._dir / LOG_PREFIX / name).read_bytes()
                    for name, day in self._log_files() if day >= since]
        try:
            return await asyncio.to_thread(read)
        except OSError as exc:
            raise StateStoreError(f"could not read the provisioning log in {self._dir}: {exc}") from None

    async def prune_log(self, before: date) -> int:
        old = [name for name, day in self._log_files() if day < before]
        for name in old:
            with contextlib.suppress(FileNotFoundError):  # a concurrent run pruned it first
                (self._dir / LOG_PREFIX / name).unlink()
        return len(old)

    async def aclose(self) -> None:
        return None

    def _log_files(self) -> list[tuple[str, date]]:
        try:
            names = os.listdir(self._dir / LOG_PREFIX)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StateStoreError(f"could not list the provisioning logs in {self._dir}: {exc}") from None
        found = [(name, day) for name in names if (day := log_day(LOG_PREFIX + name)) is not None]
        return sorted(found, key=lambda pair: pair[1])

    def _append(self, relative: str, chunks: list[bytes]) -> None:
        """Append under an exclusive flock, each chunk written whole: O_APPEND alone lets a short
        write leave half a line for another writer to continue."""
        target = self._dir / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                for chunk in chunks:
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)  # releases the flock
        except OSError as exc:
            raise StateStoreError(f"could not append to {target}: {exc}") from None

    async def _acquire(self) -> IO[str]:
        path = self._dir / LOCK_FILE
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            lock_file = _open_lock_file(path, create=True)
        except OSError as exc:
            raise StateStoreError(f"could not open the run lock {path}: {exc}") from None
        for attempt in range(_ACQUIRE_ATTEMPTS):
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return lock_file
            except BlockingIOError:
                if attempt + 1 < _ACQUIRE_ATTEMPTS:
                    await asyncio.sleep(_ACQUIRE_RETRY_SECONDS)
            except OSError as exc:
                lock_file.close()
                raise StateStoreError(f"could not lock {path}: {exc}") from None
        info = _holder_info(lock_file)
        lock_file.close()
        raise LockBusy(info.started_at, info.trigger)

    def _write(self, relative: str, data: bytes) -> None:
        """Write via a temp file and os.replace, so a reader sees the old or the new file, never half."""
        target = self._dir / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise StateStoreError(f"could not write {target}: {exc}") from None

    def _read(self, relative: str) -> dict | None:
        path = self._dir / relative
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateStoreError(f"could not read {path}: {exc}") from None
        return decode_object(data, str(path))


def _open_lock_file(path: Path, *, create: bool) -> IO[str]:
    # Never truncate on open: another process may hold the lock and its record is in this file.
    flags = os.O_RDWR | os.O_CREAT if create else os.O_RDONLY
    return os.fdopen(os.open(path, flags, 0o644), "r+" if create else "r", encoding="utf-8")


def _write_holder(lock_file: IO[str], holder: dict | None) -> None:
    # Only the lock holder writes, so truncate-and-write cannot interleave with another writer.
    lock_file.seek(0)
    lock_file.truncate()
    if holder is not None:
        lock_file.write(json.dumps(holder))
    lock_file.flush()


def _holder_info(lock_file: IO[str]) -> LockInfo:
    """Whatever the holder wrote; empty fields if it has not written yet (or wrote garbage)."""
    lock_file.seek(0)
    try:
        holder = json.loads(lock_file.read() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not isinstance(holder, dict):
        holder = {}
    pid = holder.get("pid")
    trigger = holder.get("trigger")
    return LockInfo(
        started_at=parse_started_at(holder.get("started_at")),
        trigger=trigger if isinstance(trigger, str) else None,
        pid=pid if isinstance(pid, int) else None,
    )

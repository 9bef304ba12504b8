"""What every state backend offers: the run lock, the last report and small state documents."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol


@dataclass(frozen=True)
class LockInfo:
    """Who holds the run lock, as far as the holder wrote it down.

    Fields are None when the holder did not (yet) record them, e.g. a run that crashed right after
    taking the lock, or a lease taken by something other than this package.
    """

    started_at: datetime | None
    trigger: str | None
    host: str | None = None  # blob backend: the holder's host name
    pid: int | None = None  # local backend: the holder's process id


@dataclass
class RunLease:
    """The run lock, held for the duration of an ``async with backend.run_lock(...)`` body.

    ``lost`` turns True when the lock can no longer be vouched for (the blob lease could not be renewed
    in time or was taken over). The executor checks it between actions and stops: another run may
    already be applying changes.
    """

    trigger: str
    started_at: datetime
    host: str
    lost: bool = False
    lost_reason: str | None = None

    def mark_lost(self, reason: str) -> None:
        self.lost = True
        self.lost_reason = reason


class StateBackend(Protocol):
    """Storage for one-run-at-a-time locking, the last run's report and small JSON state documents."""

    @property
    def location(self) -> str:
        """Where the state lives, for logs (a URL or a directory; never contains a secret)."""
        ...

    def run_lock(self, trigger: str) -> AbstractAsyncContextManager[RunLease]:
        """Hold the run lock for the ``async with`` body; raises LockBusy if another run holds it."""
        ...

    async def lock_info(self) -> LockInfo | None:
        """Who holds the run lock right now, or None; does not take the lock."""
        ...

    async def save_report(self, report: dict) -> None:
        """Store the last run's JSON report (also for a failed run), replacing the previous one."""
        ...

    async def last_report(self) -> dict | None:
        """The report saved last, or None if there is none."""
        ...

    async def load_state(self, name: str) -> dict | None:
        """The small JSON document ``name`` (e.g. "delta"), or None if it was never saved."""
        ...

    async def save_state(self, name: str, doc: dict) -> None:
        """Store the small JSON document ``name``, replacing the previous version."""
        ...

    async def append_log(self, day: date, lines: list[bytes]) -> None:
        """Append whole lines (each ending in a newline) to the log of ``day``. Each append of at most
        4 MiB of them is atomic: lines of concurrent writers never interleave."""
        ...

    async def read_log(self, since: date) -> list[bytes]:
        """The logs of ``since`` and the days after, oldest first, one bytes object a day."""
        ...

    async def prune_log(self, before: date) -> int:
        """Delete the logs of the days before ``before``; how many days were deleted."""
        ...

    async def aclose(self) -> None:
        """Release network clients and credentials; the backend is unusable afterwards."""
        ...


def utc_now() -> datetime:
    # Whole seconds: the start time round-trips through blob metadata / the lock file unchanged.
    return datetime.now(UTC).replace(microsecond=0)


def parse_started_at(value: object) -> datetime | None:
    """A holder's recorded start time, or None if it is missing or not an ISO timestamp."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

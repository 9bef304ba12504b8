"""Run state: one sync run at a time, the last run's report, and small state documents.

    backend = open_state(os.environ)
    async with backend.run_lock("timer") as lease:     # LockBusy if another run holds it
        ...                                            # stop between actions once lease.lost
    await backend.save_report(report)

Blob storage when the app's storage setting is present (the same account and setting the Functions
host uses), otherwise a local directory for the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sync_core.state.base import LockInfo, RunLease, StateBackend
from sync_core.state.blob import DEFAULT_CONTAINER, BlobStateBackend
from sync_core.state.local import LocalStateBackend
from sync_core.state.settings import make_service_client, read_storage_setting

DEFAULT_LOCAL_DIR = Path(".sync-state")

__all__ = [
    "DEFAULT_CONTAINER",
    "BlobStateBackend",
    "LocalStateBackend",
    "LockInfo",
    "RunLease",
    "StateBackend",
    "open_state",
]


def open_state(env: Mapping[str, str], *, local_dir: Path | None = None, retries: int = 3) -> StateBackend:
    """The backend the settings in ``env`` point at; ConfigError if a storage setting is malformed.

    ``local_dir`` is used only without a storage setting (default ``.sync-state`` in the current
    directory). No storage is contacted here: the first lock or document operation does that.
    ``retries``: how often a failed blob request is retried (a check wants an answer at once).
    """
    target = read_storage_setting(env)
    if target is None:
        return LocalStateBackend(local_dir if local_dir is not None else Path.cwd() / DEFAULT_LOCAL_DIR)
    return BlobStateBackend(make_service_client(target, retries=retries))

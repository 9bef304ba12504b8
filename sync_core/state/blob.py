"""State in Azure Blob Storage: the run lock, the last report and state documents in one container.

    {container}/run.lock             empty blob; its lease is the run lock, its metadata the holder
    {container}/last-report.json
    {container}/state/{name}.json
    {container}/log/{YYYY-MM-DD}.jsonl  append blob: the provisioning log of one day

The sync client runs in worker threads (asyncio.to_thread): the async client would pull in aiohttp.
Azure SDK clients are safe to share between threads, so the renewal task and document writes may
overlap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from datetime import date
from urllib.parse import urlsplit, urlunsplit

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobClient, BlobServiceClient, ContentSettings

from sync_core.errors import StateStoreError
from sync_core.state.base import LockInfo, RunLease
from sync_core.state.blob_lease import MAX_LEASE_SECONDS, MIN_LEASE_SECONDS, hold_lease, read_holder
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
from sync_core.state.redact import describe

DEFAULT_CONTAINER = "entra-litellm-sync"
LOCK_BLOB = "run.lock"
_JSON = ContentSettings(content_type="application/json; charset=utf-8")
_JSONL = ContentSettings(content_type="application/x-ndjson; charset=utf-8")


class BlobStateBackend:
    """StateBackend on a blob container (created on first use, as is the lock blob)."""

    def __init__(
        self, service: BlobServiceClient, *, container: str = DEFAULT_CONTAINER, lease_seconds: int = 60
    ) -> None:
        if not MIN_LEASE_SECONDS <= lease_seconds <= MAX_LEASE_SECONDS:
            raise ValueError(
                f"lease_seconds must be {MIN_LEASE_SECONDS}..{MAX_LEASE_SECONDS}, got {lease_seconds}"
            )
        self._service = service
        self._container = service.get_container_client(container)
        self._lease_seconds = lease_seconds

    @property
    def location(self) -> str:
        # With a SAS credential the client's URL carries the token as its query string: drop it.
        return urlunsplit(urlsplit(self._container.url)._replace(query="", fragment=""))

    def run_lock(self, trigger: str) -> AbstractAsyncContextManager[RunLease]:
        return self._run_lock(trigger)

    @asynccontextmanager
    async def _run_lock(self, trigger: str) -> AsyncIterator[RunLease]:
        await self._prepare()
        async with hold_lease(
            self._container.get_blob_client(LOCK_BLOB), trigger, self._lease_seconds
        ) as lease:
            yield lease

    async def lock_info(self) -> LockInfo | None:
        return await read_holder(self._container.get_blob_client(LOCK_BLOB))

    async def save_report(self, report: dict) -> None:
        await self._write(REPORT_NAME, encode_report(report))

    async def last_report(self) -> dict | None:
        return await self._read(REPORT_NAME)

    async def load_state(self, name: str) -> dict | None:
        return await self._read(state_path(name))

    async def save_state(self, name: str, doc: dict) -> None:
        await self._write(state_path(name), encode_state(doc))

    async def append_log(self, day: date, lines: list[bytes]) -> None:
        blob = self._container.get_blob_client(log_path(day))
        try:
            for chunk in log_chunks(lines):
                try:
                    await asyncio.to_thread(blob.append_block, chunk)
                except ResourceNotFoundError:  # the day's first entry (or the account's)
                    await self._ensure_container()
                    await self._create_append_blob(blob)
                    await asyncio.to_thread(blob.append_block, chunk)
        except AzureError as exc:
            raise StateStoreError(f"could not append to {blob.blob_name}: {describe(exc)}") from None

    async def read_log(self, since: date) -> list[bytes]:
        days = [name for name, day in await self._log_blobs() if day >= since]
        try:
            return [await asyncio.to_thread(lambda n=name: self._container.download_blob(n).readall())
                    for name in days]
        except AzureError as exc:
            raise StateStoreError(f"could not read the provisioning log: {describe(exc)}") from None

    async def prune_log(self, before: date) -> int:
        old = [name for name, day in await self._log_blobs() if day < before]
        try:
            for name in old:
                with suppress(ResourceNotFoundError):  # a concurrent run pruned it first
                    await asyncio.to_thread(self._container.delete_blob, name)
        except AzureError as exc:
            raise StateStoreError(f"could not delete old provisioning logs: {describe(exc)}") from None
        return len(old)

    async def _log_blobs(self) -> list[tuple[str, date]]:
        """The log blobs and their days, oldest first."""
        try:
            names = await asyncio.to_thread(
                lambda: list(self._container.list_blob_names(name_starts_with=LOG_PREFIX)))
        except ResourceNotFoundError:
            return []
        except AzureError as exc:
            raise StateStoreError(f"could not list the provisioning logs: {describe(exc)}") from None
        found = [(name, day) for name in names if (day := log_day(name)) is not None]
        return sorted(found, key=lambda pair: pair[1])

    async def _create_append_blob(self, blob: BlobClient) -> None:
        # Create-only: creating an append blob that exists would empty it, losing a concurrent
        # run's entries.
        with suppress(ResourceExistsError, ResourceModifiedError):
            await asyncio.to_thread(blob.create_append_blob, match_condition=MatchConditions.IfMissing,
                                    content_settings=_JSONL)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._service.close)
        close = getattr(self._service.credential, "close", None)
        if callable(close):  # token credentials hold an HTTP session of their own
            await asyncio.to_thread(close)

    async def _prepare(self) -> None:
        """Create the container and the lock blob if missing.

        Done before every run rather than once per backend: two cheap idempotent calls, and a lock
        blob someone deleted between runs is simply recreated.
        """
        await self._ensure_container()
        try:
            # Create-only: never touch a lock blob that exists (and may be leased by a running sync).
            await asyncio.to_thread(
                self._container.get_blob_client(LOCK_BLOB).upload_blob, b"", overwrite=False
            )
        except ResourceExistsError:
            pass  # 409 BlobAlreadyExists
        except HttpResponseError as exc:
            # A leased blob may answer a write without the lease id with 412 before the create-only
            # condition is checked: it exists either way.
            if exc.status_code != 412:
                raise StateStoreError(f"could not create the run lock blob: {describe(exc)}") from None
        except AzureError as exc:
            raise StateStoreError(f"could not create the run lock blob: {describe(exc)}") from None

    async def _ensure_container(self) -> None:
        try:
            await asyncio.to_thread(self._container.create_container)
        except ResourceExistsError:
            pass
        except AzureError as exc:
            raise StateStoreError(
                f"could not create container {self._container.container_name}: {describe(exc)}"
            ) from None

    async def _write(self, blob_name: str, data: bytes) -> None:
        blob = self._container.get_blob_client(blob_name)
        try:
            try:
                await asyncio.to_thread(blob.upload_blob, data, overwrite=True, content_settings=_JSON)
            except ResourceNotFoundError:
                # Only the first write into a fresh account pays for the container check.
                await self._ensure_container()
                await asyncio.to_thread(blob.upload_blob, data, overwrite=True, content_settings=_JSON)
        except AzureError as exc:
            raise StateStoreError(f"could not write {blob_name}: {describe(exc)}") from None

    async def _read(self, blob_name: str) -> dict | None:
        blob = self._container.get_blob_client(blob_name)
        try:
            data = await asyncio.to_thread(lambda: blob.download_blob().readall())
        except ResourceNotFoundError:  # no such blob, or not even the container yet
            return None
        except AzureError as exc:
            raise StateStoreError(f"could not read {blob_name}: {describe(exc)}") from None
        return decode_object(data, f"blob {blob_name}")

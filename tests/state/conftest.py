"""Blob-backend fixtures on the session's Azurite (tests/azurite.py, via tests/conftest.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator

import pytest
from azure.storage.blob import BlobServiceClient

from sync_core.state.blob import BlobStateBackend


@pytest.fixture
def container_name() -> str:
    """A fresh container per test, so tests never see each other's locks or documents."""
    return f"test-{uuid.uuid4().hex[:20]}"


@pytest.fixture
def blob_service(azurite_connection_string: str) -> Iterator[BlobServiceClient]:
    """A client for arranging and inspecting blobs directly, around the backend under test."""
    with BlobServiceClient.from_connection_string(azurite_connection_string) as service:
        yield service


@pytest.fixture
def make_blob_backend(
    azurite_connection_string: str, container_name: str
) -> Iterator[Callable[..., BlobStateBackend]]:
    """Backends on this test's container; each has its own client, like separate function instances."""
    made: list[BlobStateBackend] = []

    def make(*, lease_seconds: int = 15, container: str | None = None) -> BlobStateBackend:
        service = BlobServiceClient.from_connection_string(azurite_connection_string)
        backend = BlobStateBackend(
            service, container=container or container_name, lease_seconds=lease_seconds
        )
        made.append(backend)
        return backend

    yield make

    async def close_all() -> None:
        for backend in made:
            await backend.aclose()

    asyncio.run(close_all())

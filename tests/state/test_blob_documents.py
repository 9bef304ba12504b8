"""Reports and state documents in blobs, against a real Azurite."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from azure.storage.blob import BlobServiceClient

from sync_core.errors import StateStoreError
from sync_core.state.blob import BlobStateBackend

pytestmark = pytest.mark.azurite

MakeBackend = Callable[..., BlobStateBackend]


def test_report_round_trip(
    make_blob_backend: MakeBackend, blob_service: BlobServiceClient, container_name: str
):
    writer, reader = make_blob_backend(), make_blob_backend()
    report = {"dry_run": False, "trigger": "timer", "summary": {"failed": 1}, "notes": ["Grüße", "团队"]}

    async def scenario() -> None:
        assert await reader.last_report() is None  # nothing saved, not even a container
        await writer.save_report(report)
        assert await reader.last_report() == report
        await writer.save_report({"trigger": "http", "finished_at": datetime(2026, 1, 2, tzinfo=UTC)})
        # The latest replaces the previous; a stray datetime is kept as text rather than losing the report.
        assert await reader.last_report() == {"trigger": "http", "finished_at": "2026-01-02 00:00:00+00:00"}

    asyncio.run(scenario())
    props = blob_service.get_blob_client(container_name, "last-report.json").get_blob_properties()
    assert props.content_settings.content_type.startswith("application/json")


def test_state_documents_round_trip(make_blob_backend: MakeBackend):
    backend = make_blob_backend()

    async def scenario() -> None:
        assert await backend.load_state("delta") is None
        delta = {"groups": "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=abc", "n": 3}
        await backend.save_state("delta", delta)
        await backend.save_state("other", {"x": None})
        assert await backend.load_state("delta") == delta
        assert await backend.load_state("other") == {"x": None}
        await backend.save_state("delta", {"groups": None})
        assert await backend.load_state("delta") == {"groups": None}

    asyncio.run(scenario())


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "x" * 101])
def test_state_names_must_be_one_plain_segment(make_blob_backend: MakeBackend, name: str):
    backend = make_blob_backend()
    with pytest.raises(ValueError, match="state document name"):
        asyncio.run(backend.save_state(name, {}))


def test_state_must_be_json_serialisable(make_blob_backend: MakeBackend):
    with pytest.raises(TypeError):
        asyncio.run(make_blob_backend().save_state("delta", {"when": datetime.now(UTC)}))


def test_corrupt_document_raises_state_store_error(
    make_blob_backend: MakeBackend, blob_service: BlobServiceClient, container_name: str
):
    blob_service.create_container(container_name).upload_blob("state/delta.json", b"{not json")
    with pytest.raises(StateStoreError, match=r"state/delta\.json is not valid JSON"):
        asyncio.run(make_blob_backend().load_state("delta"))

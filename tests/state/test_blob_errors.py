"""Storage failures surface as StateStoreError, and their messages never carry a SAS signature."""

from __future__ import annotations

import asyncio

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.storage.blob import BlobServiceClient

from sync_core.errors import StateStoreError
from sync_core.state.blob import BlobStateBackend
from sync_core.state.redact import describe

SAS = "sv=2024-01-01&ss=b&sig=FAKESIGNATURE0123%2F"


def test_unreachable_storage_raises_state_store_error_without_the_sas():
    # No Azurite needed: a port nothing listens on, and no retries, so the failure is immediate.
    dead = BlobServiceClient.from_connection_string(
        f"BlobEndpoint=http://127.0.0.1:9/acct;SharedAccessSignature={SAS}", retry_total=0
    )
    backend = BlobStateBackend(dead, container="unreachable")
    assert "sig=" not in backend.location

    async def scenario() -> list[StateStoreError]:
        errors = []
        with pytest.raises(StateStoreError, match="could not create container") as caught:
            async with backend.run_lock("timer"):
                pass
        errors.append(caught.value)
        for call in (backend.save_report({}), backend.last_report(), backend.lock_info()):
            with pytest.raises(StateStoreError) as caught:
                await call
            errors.append(caught.value)
        await backend.aclose()
        return errors

    for error in asyncio.run(scenario()):
        assert "FAKESIGNATURE" not in str(error)
        assert error.__cause__ is None and error.__suppress_context__


def test_describe_masks_signatures_and_keeps_the_first_line():
    request_error = ServiceRequestError(f"Max retries exceeded with url: /acct/c/b?{SAS} (Caused by refused)")
    assert describe(request_error) == (
        "ServiceRequestError: Max retries exceeded with url: /acct/c/b?sv=2024-01-01&ss=b&sig=*** (Caused by refused)"
    )
    response_error = HttpResponseError("There is already a lease present.\nRequestId:1\nTime:2026")
    response_error.status_code = 409
    response_error.error_code = "LeaseAlreadyPresent"
    assert describe(response_error) == (
        "HttpResponseError [409 LeaseAlreadyPresent]: There is already a lease present."
    )

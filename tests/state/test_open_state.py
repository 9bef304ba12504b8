"""open_state: which backend the storage settings select, and ConfigErrors that never leak the key."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

from sync_core.errors import ConfigError
from sync_core.state import BlobStateBackend, LocalStateBackend, open_state
from sync_core.state.settings import (
    ConnectionStringTarget,
    IdentityTarget,
    make_queue_client,
    make_service_client,
    read_storage_setting,
)

# Made up for these tests; long and distinctive so a leak into a message cannot go unnoticed.
FAKE_KEY = base64.b64encode(b"not-a-real-account-key-" * 3).decode()
CLIENT_ID = "0b6c7b4e-6a5e-4d43-9f3a-2f1b8a9c0d11"
ACCT1 = "https://acct1.blob.core.windows.net"


def test_no_storage_setting_selects_the_local_directory(tmp_path: Path):
    backend = open_state({"UNRELATED": "x"}, local_dir=tmp_path / "st")
    assert isinstance(backend, LocalStateBackend)
    assert backend.location == str(tmp_path / "st")


def test_local_directory_defaults_to_dot_sync_state_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    backend = open_state({})
    assert isinstance(backend, LocalStateBackend)
    assert backend.location == str(tmp_path / ".sync-state")


@pytest.mark.parametrize(
    ("connection_string", "location"),
    [
        ("UseDevelopmentStorage=true", "http://127.0.0.1:10000/devstoreaccount1/entra-litellm-sync"),
        ("usedevelopmentstorage=True;", "http://127.0.0.1:10000/devstoreaccount1/entra-litellm-sync"),
        (
            f"DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={FAKE_KEY};EndpointSuffix=core.windows.net",
            "https://acct1.blob.core.windows.net/entra-litellm-sync",
        ),
        (
            f"AccountName=acct1;AccountKey={FAKE_KEY};BlobEndpoint=http://127.0.0.1:10555/acct1",
            "http://127.0.0.1:10555/acct1/entra-litellm-sync",
        ),
        (
            "BlobEndpoint=https://acct2.blob.core.windows.net/;SharedAccessSignature=sv=2024-01-01&sig=SECRETSIG",
            "https://acct2.blob.core.windows.net/entra-litellm-sync",
        ),
    ],
)
def test_connection_string_selects_the_blob_backend(connection_string: str, location: str, tmp_path: Path):
    backend = open_state({"AzureWebJobsStorage": connection_string}, local_dir=tmp_path)
    assert isinstance(backend, BlobStateBackend)
    assert backend.location == location
    asyncio.run(backend.aclose())


def test_connection_string_wins_over_identity_settings():
    target = read_storage_setting(
        {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AzureWebJobsStorage__accountName": "acct1"}
    )
    assert target == ConnectionStringTarget("UseDevelopmentStorage=true", development_storage=True)
    assert FAKE_KEY not in repr(ConnectionStringTarget(f"AccountName=a;AccountKey={FAKE_KEY}"))


def test_a_service_uri_without_credential_selects_default_azure_credential():
    env = {"AzureWebJobsStorage__blobServiceUri": "https://acct1.blob.core.usgovcloudapi.net/"}
    assert read_storage_setting(env) == IdentityTarget(
        "https://acct1.blob.core.usgovcloudapi.net", managed_identity=False
    )
    backend = open_state(env)
    assert isinstance(backend, BlobStateBackend)
    # The endpoint is the setting's, whatever the cloud: no public-cloud suffix is put in its place.
    assert backend.location == "https://acct1.blob.core.usgovcloudapi.net/entra-litellm-sync"
    asyncio.run(backend.aclose())
    client = make_service_client(read_storage_setting(env))
    assert isinstance(client.credential, DefaultAzureCredential)
    client.credential.close()


def test_account_name_alone_is_refused_because_it_means_the_public_cloud():
    """The Functions docs: __accountName is for the public cloud; other clouds need __blobServiceUri
    (learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity)."""
    with pytest.raises(ConfigError) as caught:
        open_state({"AzureWebJobsStorage__accountName": "acct1"})
    assert caught.value.setting == "AzureWebJobsStorage__accountName"
    assert "AzureWebJobsStorage__blobServiceUri" in caught.value.problem


def test_the_run_queue_comes_from_the_same_settings():
    env = {"AzureWebJobsStorage__blobServiceUri": "https://acct1.blob.core.chinacloudapi.cn/",
           "AzureWebJobsStorage__queueServiceUri": "https://acct1.queue.core.chinacloudapi.cn/",
           "AzureWebJobsStorage__credential": "managedidentity", "AzureWebJobsStorage__clientId": CLIENT_ID}
    queue = make_queue_client(read_storage_setting(env), "sync-runs")
    assert queue.url == "https://acct1.queue.core.chinacloudapi.cn/sync-runs"
    assert isinstance(queue.credential, ManagedIdentityCredential)
    queue.credential.close()
    without = {k: v for k, v in env.items() if k != "AzureWebJobsStorage__queueServiceUri"}
    with pytest.raises(ConfigError) as caught:
        make_queue_client(read_storage_setting(without), "sync-runs")
    assert caught.value.setting == "AzureWebJobsStorage__queueServiceUri"
    development = make_queue_client(read_storage_setting({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}),
                                    "sync-runs")
    assert development.url == "http://127.0.0.1:10001/devstoreaccount1/sync-runs"


def test_managed_identity_with_client_id_and_service_uri():
    env = {
        "AzureWebJobsStorage__accountName": "ignored",
        "AzureWebJobsStorage__blobServiceUri": "https://acct3.blob.core.windows.net/",
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": CLIENT_ID,
    }
    target = read_storage_setting(env)
    assert target == IdentityTarget(
        "https://acct3.blob.core.windows.net", managed_identity=True, client_id=CLIENT_ID
    )
    client = make_service_client(target)
    assert isinstance(client.credential, ManagedIdentityCredential)
    assert client.url.startswith("https://acct3.blob.core.windows.net")
    client.credential.close()


@pytest.mark.parametrize(
    ("env", "setting", "problem"),
    [
        ({"AzureWebJobsStorage": ""}, "AzureWebJobsStorage", "set but empty"),
        ({"AzureWebJobsStorage": "   "}, "AzureWebJobsStorage", "set but empty"),
        ({"AzureWebJobsStorage": f"just-a-key-{FAKE_KEY}"}, "AzureWebJobsStorage", "Key=Value"),
        ({"AzureWebJobsStorage": f"AccountName=a1;{FAKE_KEY}"}, "AzureWebJobsStorage", "Key=Value"),
        (
            {"AzureWebJobsStorage": f"AccountName=acct1 AccountKey={FAKE_KEY}"},
            "AzureWebJobsStorage",
            "neither",
        ),
        ({"AzureWebJobsStorage": f"AccountKey={FAKE_KEY}"}, "AzureWebJobsStorage", "neither AccountName"),
        (
            {"AzureWebJobsStorage": f"BlobEndpoint=http://h/a;AccountKey={FAKE_KEY}"},
            "AzureWebJobsStorage",
            "no AccountName",
        ),
        (
            {"AzureWebJobsStorage": f"AccountName=acct1;AccountKey={FAKE_KEY}!!"},
            "AzureWebJobsStorage",
            "not valid base64",
        ),
        (
            {"AzureWebJobsStorage": f"AccountName=acct1;AccountKey={FAKE_KEY};BlobEndpoint=ftp://x"},
            "AzureWebJobsStorage",
            "BlobEndpoint must be an absolute http",
        ),
        (
            {
                "AzureWebJobsStorage": f"AccountName=acct1;AccountKey={FAKE_KEY};DefaultEndpointsProtocol=gopher"
            },
            "AzureWebJobsStorage",
            "DefaultEndpointsProtocol",
        ),
        (
            {"AzureWebJobsStorage": f"UseDevelopmentStorage=yes;AccountKey={FAKE_KEY}"},
            "AzureWebJobsStorage",
            "UseDevelopmentStorage",
        ),
        (
            {"AzureWebJobsStorage__blobServiceUri": "https://a.blob.core.windows.net",
             "AzureWebJobsStorage__queueServiceUri": "http://a.queue.core.windows.net"},
            "AzureWebJobsStorage__queueServiceUri",
            "https",
        ),
        (
            {"AzureWebJobsStorage__blobServiceUri": "acct.blob.core.windows.net"},
            "AzureWebJobsStorage__blobServiceUri",
            "absolute",
        ),
        (
            {"AzureWebJobsStorage__blobServiceUri": "http://acct.blob.core.windows.net"},
            "AzureWebJobsStorage__blobServiceUri",
            "https",
        ),
        (
            {"AzureWebJobsStorage__blobServiceUri": ACCT1, "AzureWebJobsStorage__credential": "clientsecret"},
            "AzureWebJobsStorage__credential",
            "managedidentity",
        ),
        (
            {"AzureWebJobsStorage__blobServiceUri": ACCT1, "AzureWebJobsStorage__clientId": "me"},
            "AzureWebJobsStorage__clientId",
            "GUID",
        ),
        (
            {"AzureWebJobsStorage__blobServiceUri": ACCT1, "AzureWebJobsStorage__clientSecret": FAKE_KEY},
            "AzureWebJobsStorage__clientSecret",
            "not supported",
        ),
    ],
)
def test_malformed_settings_raise_config_error_without_the_key(env: dict, setting: str, problem: str):
    with pytest.raises(ConfigError) as caught:
        open_state(env)
    error = caught.value
    assert error.setting == setting
    assert problem in error.problem
    # Neither the message, nor the repr, nor any chained exception may carry the key.
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    for exc in seen:
        assert FAKE_KEY not in str(exc) and FAKE_KEY not in repr(exc)
        assert FAKE_KEY[:12] not in str(exc)


def test_http_service_uri_is_allowed_for_a_loopback_emulator():
    target = read_storage_setting(
        {"AzureWebJobsStorage__blobServiceUri": "http://127.0.0.1:10000/devstoreaccount1"}
    )
    assert (
        isinstance(target, IdentityTarget) and target.account_url == "http://127.0.0.1:10000/devstoreaccount1"
    )

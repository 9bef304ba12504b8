"""Read the storage setting the way the Functions host does, and build blob and queue clients from it.

    AzureWebJobsStorage=<connection string>           account key / SAS / UseDevelopmentStorage=true
    AzureWebJobsStorage__blobServiceUri=https://...   identity-based: the account's own blob endpoint
      AzureWebJobsStorage__queueServiceUri=https://... its queue endpoint (HTTP-started runs)
      AzureWebJobsStorage__credential=managedidentity  -> ManagedIdentityCredential
                                                          (unset: DefaultAzureCredential)
      AzureWebJobsStorage__clientId=<client id>        a user-assigned identity
    none of these                                     -> no blob storage (the caller uses a local directory)

The endpoints come from the settings, never from a suffix written here: the same code serves every
cloud. ``AzureWebJobsStorage__accountName`` alone is refused for that reason: the host turns it into a
public-cloud endpoint (its docs say so), and the state would follow it there whatever the cloud.

Error messages name the setting and what is wrong with it, never a value: a connection string carries
the account key, and a malformed one may carry it anywhere.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.storage.blob import BlobServiceClient, ExponentialRetry

from sync_core.errors import ConfigError

if TYPE_CHECKING:  # imported where used: only the HTTP trigger sends to the queue
    from azure.storage.queue import QueueClient

SETTING = "AzureWebJobsStorage"
ACCOUNT_NAME = f"{SETTING}__accountName"
BLOB_SERVICE_URI = f"{SETTING}__blobServiceUri"
QUEUE_SERVICE_URI = f"{SETTING}__queueServiceUri"
CREDENTIAL = f"{SETTING}__credential"
CLIENT_ID = f"{SETTING}__clientId"
# The host also accepts a service principal via these; we support managed identity only, and saying
# so beats silently falling back to DefaultAzureCredential.
_UNSUPPORTED = (f"{SETTING}__clientSecret", f"{SETTING}__certificate", f"{SETTING}__tenantId")

_GUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class ConnectionStringTarget:
    """``AzureWebJobsStorage`` holds a connection string (validated; repr hides it)."""

    connection_string: str = field(repr=False)
    development_storage: bool = False


@dataclass(frozen=True)
class IdentityTarget:
    """Identity-based connection: the service URLs plus a token credential."""

    account_url: str  # the blob service
    managed_identity: bool  # True: ManagedIdentityCredential; False: DefaultAzureCredential
    client_id: str | None = None
    queue_url: str | None = None  # None: no queue configured


StorageTarget = ConnectionStringTarget | IdentityTarget


def read_storage_setting(env: Mapping[str, str]) -> StorageTarget | None:
    """The blob storage the settings point at, or None when no storage setting is present."""
    if SETTING in env:
        # A connection string wins over the identity settings, as in the host. A blank one is an
        # error there too (an empty setting left by IaC broke Flex apps), so it is one here.
        return _read_connection_string(env[SETTING])
    url = env.get(BLOB_SERVICE_URI, "").strip()
    if not url:
        if env.get(ACCOUNT_NAME, "").strip():
            raise ConfigError(ACCOUNT_NAME, f"names an account in Azure's public cloud only; set "
                              f"{BLOB_SERVICE_URI} (and {QUEUE_SERVICE_URI}) to the account's own endpoints "
                              "instead, as infra/ does")
        return None
    for name in _UNSUPPORTED:
        if env.get(name, "").strip():
            raise ConfigError(name, "service-principal credentials are not supported; use a managed identity")
    account_url = _check_service_uri(url, BLOB_SERVICE_URI)
    queue = env.get(QUEUE_SERVICE_URI, "").strip()
    queue_url = _check_service_uri(queue, QUEUE_SERVICE_URI) if queue else None
    credential = env.get(CREDENTIAL, "").strip()
    if credential and credential.lower() != "managedidentity":
        raise ConfigError(CREDENTIAL, "must be 'managedidentity' or unset")
    client_id = env.get(CLIENT_ID, "").strip() or None
    if client_id is not None and not _GUID_RE.fullmatch(client_id):
        raise ConfigError(CLIENT_ID, "must be the managed identity's client id (a GUID)")
    return IdentityTarget(account_url=account_url, managed_identity=bool(credential), client_id=client_id,
                          queue_url=queue_url)


def make_service_client(target: StorageTarget, *, retries: int = 3) -> BlobServiceClient:
    """A sync BlobServiceClient for ``target``, with timeouts and retries short enough for lease renewal."""
    options: dict = {
        # The SDK default (15 s first backoff, growing) can outlast a 60 s lease; renewal needs
        # failures reported while there is still time to retry.
        "retry_policy": ExponentialRetry(
            initial_backoff=1, increment_base=2, retry_total=retries, random_jitter_range=1
        ),
        "connection_timeout": 10,
        "read_timeout": 30,
    }
    if isinstance(target, ConnectionStringTarget):
        try:
            return BlobServiceClient.from_connection_string(target.connection_string, **options)
        except ValueError:
            # The SDK's messages do not quote values, but drop them anyway: this path must not leak.
            raise ConfigError(SETTING, "the connection string was rejected by the storage SDK") from None
    return BlobServiceClient(target.account_url, credential=_token_credential(target), **options)


def make_queue_client(target: StorageTarget, queue: str) -> QueueClient:
    """A sync QueueClient for ``queue``, writing messages as the Functions queue trigger reads them
    (base64, the host's default messageEncoding). ConfigError when the settings name no queue service."""
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

    encode = {"message_encode_policy": TextBase64EncodePolicy(),
              "message_decode_policy": TextBase64DecodePolicy()}
    if isinstance(target, ConnectionStringTarget):
        try:
            return QueueClient.from_connection_string(target.connection_string, queue, **encode)
        except ValueError:
            raise ConfigError(SETTING, "the connection string names no queue endpoint") from None
    if target.queue_url is None:
        raise ConfigError(QUEUE_SERVICE_URI, f"is not set; with {BLOB_SERVICE_URI} it must name the "
                          "account's queue endpoint, where HTTP-started runs are handed to the queue trigger")
    return QueueClient(target.queue_url, queue, credential=_token_credential(target), **encode)


def _token_credential(target: IdentityTarget) -> TokenCredential:
    # Imported here: azure.identity is only needed for identity-based connections.
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if target.managed_identity:
        return ManagedIdentityCredential(client_id=target.client_id)
    return DefaultAzureCredential(managed_identity_client_id=target.client_id)


def _read_connection_string(value: str) -> ConnectionStringTarget:
    text = value.strip()
    if not text:
        raise ConfigError(SETTING, "is set but empty; set a connection string or remove the setting")
    parts: dict[str, str] = {}
    for segment in text.rstrip(";").split(";"):
        key, sep, val = segment.partition("=")
        if not sep or not key.strip():
            raise ConfigError(SETTING, "is not a connection string of the form 'Key=Value;Key=Value'")
        parts[key.strip().lower()] = val.strip()

    if "usedevelopmentstorage" in parts:
        if parts["usedevelopmentstorage"].lower() != "true":
            raise ConfigError(SETTING, "UseDevelopmentStorage must be 'true' if present")
        if len(parts) > 1:
            raise ConfigError(SETTING, "UseDevelopmentStorage=true cannot be combined with other keys here")
        # The SDK matches the value case-sensitively; hand it the canonical spelling.
        return ConnectionStringTarget("UseDevelopmentStorage=true", development_storage=True)

    if "accountname" not in parts and "blobendpoint" not in parts:
        raise ConfigError(SETTING, "the connection string has neither AccountName nor BlobEndpoint")
    if "accountkey" in parts:
        if "accountname" not in parts:
            raise ConfigError(SETTING, "the connection string has an AccountKey but no AccountName")
        try:
            base64.b64decode(parts["accountkey"], validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(SETTING, "the connection string's AccountKey is not valid base64") from None
    elif not parts.get("sharedaccesssignature"):
        raise ConfigError(SETTING, "the connection string has neither AccountKey nor SharedAccessSignature")
    if "blobendpoint" in parts:
        _check_url(parts["blobendpoint"], SETTING, "BlobEndpoint")
    protocol = parts.get("defaultendpointsprotocol", "https").lower()
    if protocol not in ("http", "https"):
        raise ConfigError(SETTING, "DefaultEndpointsProtocol must be http or https")
    return ConnectionStringTarget(text)


def _check_service_uri(url: str, setting: str) -> str:
    _check_url(url, setting, "the value")
    parts = urlsplit(url)
    # A bearer token must not travel over plain http, except to an emulator on this machine.
    if parts.scheme != "https" and not _is_loopback(parts.hostname or ""):
        raise ConfigError(setting, "must use https (plain http only for a loopback emulator)")
    return url.rstrip("/")


def _check_url(url: str, setting: str, what: str) -> None:
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(setting, f"{what} must be an absolute http(s) URL")
    if parts.query:
        # A SAS belongs in SharedAccessSignature; a query here would be appended to every blob URL.
        raise ConfigError(setting, f"{what} must not contain a query string")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

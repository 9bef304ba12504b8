"""Builds the msgraph-sdk client for the configured cloud, credential and retry policy."""

from __future__ import annotations

from typing import Any

import httpx
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphServiceClient
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_options
from msgraph_core import GraphClientFactory
from msgraph_core.middleware import GraphTelemetryHandler
from msgraph_core.middleware.options import GraphTelemetryHandlerOption

from sync_core.graph.auth import StaticTokenCredential
from sync_core.graph.pacing import ResourceUnitPacer
from sync_core.settings import GraphSettings, Settings
from sync_core.tls import shared_tls_context


def build_credential(settings: Settings) -> Any:
    """The credential for Graph. Sync azure-identity credentials on purpose: kiota awaits either
    kind, and the async ones would pull in aiohttp just to fetch a token once an hour."""
    if settings.graph_access_token is not None:
        return StaticTokenCredential(settings.graph_access_token.get_secret_value())
    from azure.identity import ClientSecretCredential, DefaultAzureCredential  # heavy: only when used

    if settings.entra_client_secret is not None:
        return ClientSecretCredential(
            tenant_id=settings.entra_tenant_id,
            client_id=settings.entra_client_id,
            client_secret=settings.entra_client_secret.get_secret_value(),
        )
    # Managed identity in Azure (ENTRA_CLIENT_ID selects a user-assigned one), developer login locally.
    return DefaultAzureCredential(managed_identity_client_id=settings.entra_client_id)


def build_graph_client(settings: GraphSettings, *, pacer: ResourceUnitPacer | None = None,
                       credential: Any = None,
                       transport: httpx.AsyncBaseTransport | None = None) -> GraphServiceClient:
    """The SDK client with its default middleware, and ``pacer`` last so it sees every attempt.
    Without ``credential``, the sync's own (``settings`` must then be the full Settings)."""
    if credential is None:
        assert isinstance(settings, Settings), "the sync's credential needs the full settings"
        credential = build_credential(settings)
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[settings.graph_scope])
    # Graph answers 429 with Retry-After; the SDK's RetryHandler honours it. Five tries, a small
    # base delay: the RU budget refills within seconds.
    options = {**graph_options, RetryHandlerOption.get_key(): RetryHandlerOption(delay=0.5, max_retries=5)}
    middleware = [
        *KiotaClientFactory.get_default_middleware(options),
        GraphTelemetryHandler(options[GraphTelemetryHandlerOption().get_key()]),
        *([pacer] if pacer is not None else []),
    ]
    inner = httpx.AsyncClient(
        transport=transport,
        verify=shared_tls_context(),
        timeout=httpx.Timeout(settings.http_timeout, connect=min(settings.http_timeout, 10.0)),
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    )
    http = GraphClientFactory.create_with_custom_middleware(middleware, client=inner)
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = settings.graph_base_url
    return GraphServiceClient(request_adapter=adapter)

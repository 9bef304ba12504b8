"""`grant-permissions`: give the sync's identity the Microsoft Graph application permissions it needs,
with the operator's own sign-in. Idempotent: what is already granted is left alone and said so.

    GET  /servicePrincipals(appId='00000003-0000-0000-c000-000000000000')   Microsoft Graph's app roles
    GET  /servicePrincipals/{principal}/appRoleAssignments                  what the identity has
    POST /servicePrincipals/{principal}/appRoleAssignments                  each permission it lacks

Granting an application permission this way is its admin consent: the operator needs a role that
may consent to Graph application permissions (Privileged Role Administrator, or Global Administrator).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from azure.core.exceptions import ClientAuthenticationError
from msgraph import GraphServiceClient
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from sync_core.errors import SourceError
from sync_core.graph.auth import StaticTokenCredential
from sync_core.graph.reader import describe
from sync_core.settings import GraphSettings

# What a Graph call can fail with: Graph's answer, no answer at all, or no sign-in to be had.
_FAILURES = (ODataError, httpx.TransportError, ClientAuthenticationError)

MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# What the sync reads (README "Entra setup"), least privilege.
REQUIRED_PERMISSIONS = ("Application.Read.All", "GroupMember.Read.All", "User.Read.All")
_FIRST_PAUSE_SECONDS = 2.0
_MAX_PAUSE_SECONDS = 15.0
# Sign-in hosts of the national clouds, by Graph host (graph.md §1.10); anything else is the public cloud.
_LOGIN_HOSTS = {
    "graph.microsoft.us": "login.microsoftonline.us",
    "dod-graph.microsoft.us": "login.microsoftonline.us",
    "microsoftgraph.chinacloudapi.cn": "login.chinacloudapi.cn",
}


@dataclass(frozen=True)
class GrantResult:
    granted: tuple[str, ...]  # permissions this run granted
    present: tuple[str, ...]  # permissions the identity already had


def operator_credential(settings: GraphSettings) -> Any:
    """The operator's sign-in: the Azure CLI's (`az login`), the Azure Developer CLI's (`azd auth
    login`, as the post-provision hook runs), else a device code prompt. The emulators' static token
    when GRAPH_ACCESS_TOKEN is set (loopback only)."""
    if settings.graph_access_token is not None:
        return StaticTokenCredential(settings.graph_access_token.get_secret_value())
    from azure.identity import (
        AzureCliCredential,
        AzureDeveloperCliCredential,
        ChainedTokenCredential,
        DeviceCodeCredential,
    )

    login = _LOGIN_HOSTS.get(urlsplit(settings.graph_base_url).hostname or "")
    tenant = settings.entra_tenant_id
    device = DeviceCodeCredential(tenant_id=tenant, **({"authority": login} if login else {}))
    return ChainedTokenCredential(AzureCliCredential(tenant_id=tenant),
                                  AzureDeveloperCliCredential(tenant_id=tenant or ""), device)


async def grant_permissions(client: GraphServiceClient, principal_id: str,
                            progress: Callable[[str], None] = print, *,
                            wait_seconds: float = 0) -> GrantResult:
    """Grant each of REQUIRED_PERMISSIONS that ``principal_id`` (a service principal's object id,
    e.g. a managed identity's) lacks; ``progress`` is told each step. A principal Graph does not know
    (404) is looked for again for up to ``wait_seconds``: a new identity takes a few minutes to appear."""
    try:
        graph = await client.service_principals_with_app_id(MICROSOFT_GRAPH_APP_ID).get()
        if graph is None or graph.id is None:
            raise SourceError("Microsoft Graph's service principal was not found in the tenant")
        roles = {role.value: role.id for role in graph.app_roles or [] if role.value and role.id}
        if unknown := [name for name in REQUIRED_PERMISSIONS if name not in roles]:
            raise SourceError(f"Microsoft Graph's service principal does not offer {', '.join(unknown)}")
        present_ids = await _wait_for_principal(client, principal_id, graph.id, wait_seconds, progress)
    except _FAILURES as exc:
        problem = f"{describe(exc)}{_hint(exc)}"
        raise SourceError(f"cannot read the permissions of {principal_id}: {problem}") from None
    granted: list[str] = []
    present: list[str] = []
    for name in REQUIRED_PERMISSIONS:
        if roles[name] in present_ids:
            present.append(name)
            progress(f"already granted: {name}")
            continue
        assignment = AppRoleAssignment(principal_id=uuid.UUID(principal_id), resource_id=uuid.UUID(graph.id),
                                       app_role_id=roles[name])
        try:
            await client.service_principals.by_service_principal_id(principal_id).app_role_assignments.post(
                assignment)
        except _FAILURES as exc:
            raise SourceError(f"cannot grant {name} to {principal_id}: {describe(exc)}{_hint(exc)}") from None
        granted.append(name)
        progress(f"granted: {name}")
    return GrantResult(tuple(granted), tuple(present))


async def _wait_for_principal(client: GraphServiceClient, principal_id: str, resource_id: str,
                              wait_seconds: float, progress: Callable[[str], None]) -> set[uuid.UUID]:
    """_granted_role_ids, looking again after a 404 while ``wait_seconds`` last (pauses 2, 4, 8, 15 s...)."""
    deadline = time.monotonic() + wait_seconds
    pause = _FIRST_PAUSE_SECONDS
    while True:
        try:
            return await _granted_role_ids(client, principal_id, resource_id)
        except ODataError as exc:
            if exc.response_status_code != 404 or time.monotonic() + pause > deadline:
                raise
        progress(f"{principal_id} is not in Microsoft Graph yet (a new identity takes a few minutes to "
                 f"appear); looking again in {pause:.0f} s")
        await asyncio.sleep(pause)
        pause = min(pause * 2, _MAX_PAUSE_SECONDS)


async def _granted_role_ids(client: GraphServiceClient, principal_id: str,
                            resource_id: str) -> set[uuid.UUID]:
    """The Microsoft Graph app role ids already granted to the principal (every page)."""
    builder = client.service_principals.by_service_principal_id(principal_id).app_role_assignments
    page = await builder.get()
    ids: set[uuid.UUID] = set()
    while page is not None:
        ids.update(a.app_role_id for a in page.value or []
                   if a.app_role_id and str(a.resource_id).lower() == resource_id.lower())
        page = await builder.with_url(page.odata_next_link).get() if page.odata_next_link else None
    return ids


def _hint(exc: Exception) -> str:
    if isinstance(exc, ClientAuthenticationError):
        return "; sign in first: az login (or azd auth login), or answer the device-code prompt"
    status = getattr(exc, "response_status_code", None)
    if status == 404:
        return ("; Microsoft Graph does not know this principal (yet): a managed identity created minutes "
                "ago may not have replicated, so run the command again in a few minutes (--wait-for-identity "
                "SECONDS keeps looking); if it persists, --principal-id must be the object id of the "
                "identity's service principal (a managed identity's principalId), not its client id")
    if status in (401, 403):
        return ("; sign in (az login) as someone who may grant application permissions "
                "(Privileged Role Administrator or Global Administrator)")
    return ""

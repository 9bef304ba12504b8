"""Application permissions in the emulated tenant: Microsoft Graph's own service principal with its
app roles, and the app role assignments granted *to* a service principal
(``/servicePrincipals/{id}/appRoleAssignments``, GET and POST), which is how an administrator
grants an identity application permissions such as User.Read.All.

Kept apart from the enterprise app's ``appRoleAssignedTo`` (who is assigned *to* the app): the two
directions share the appRoleAssignment shape and nothing else.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emulators.graph.odata import GraphError, bad_request
from emulators.graph.tenant import DirectoryObject, Tenant

MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# The application permissions the emulated Microsoft Graph offers, with their real ids
# (learn.microsoft.com/graph/permissions-reference).
GRAPH_APP_ROLES = {
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "GroupMember.Read.All": "98830695-27a2-44f7-8c18-0c3ebc9698f6",
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "Group.Read.All": "5b567255-7703-4780-807c-7be8301ae99b",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
}
_GRAPH_SP_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "emulator:microsoft-graph-service-principal"))
_ROW_ID_NAMESPACE = uuid.UUID("2b7c4d1e-8f3a-4c6b-9e2d-1a5f7c3e9b40")


@dataclass(frozen=True)
class Grant:
    """One application permission granted to a service principal."""

    id: str
    principal_id: str
    resource_id: str
    app_role_id: str
    created: str


@dataclass
class AppRoleGrants:
    """The grants in ``tenant``; adds Microsoft Graph's service principal if the tenant has none."""

    tenant: Tenant
    rows: list[Grant] = field(default_factory=list)

    def __post_init__(self) -> None:
        with self.tenant.lock:
            if _microsoft_graph(self.tenant) is None:
                self.tenant.objects[_GRAPH_SP_ID] = DirectoryObject(_GRAPH_SP_ID, "servicePrincipal", {
                    "appId": MICROSOFT_GRAPH_APP_ID,
                    "displayName": "Microsoft Graph",
                    "servicePrincipalType": "Application",
                    "accountEnabled": True,
                    "appRoles": [_app_role(value, role_id) for value, role_id in GRAPH_APP_ROLES.items()],
                })

    @property
    def microsoft_graph(self) -> DirectoryObject:
        sp = _microsoft_graph(self.tenant)
        assert sp is not None, "added in __post_init__"
        return sp

    def granted_to(self, principal_id: str) -> list[Grant]:
        return [g for g in self.rows if g.principal_id == principal_id.lower()]

    def grant(self, principal: DirectoryObject, body: Any) -> Grant:
        """Validate a POST body {principalId, resourceId, appRoleId} the way Graph does, and add it."""
        if not isinstance(body, dict):
            raise bad_request("The request body must be an appRoleAssignment object.", "BadRequest")
        principal_id, resource_id, role_id = (str(body.get(k) or "").lower()
                                              for k in ("principalId", "resourceId", "appRoleId"))
        if principal_id != principal.id:
            raise bad_request("principalId must be the service principal the request is addressed to.")
        resource = self.tenant.get(resource_id, "servicePrincipal")
        if resource is None:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{resource_id}' does not exist or "
                             "one of its queried reference-property objects are not present.")
        if role_id not in {str(r["id"]) for r in resource.get("appRoles")}:
            app_id = resource.get("appId")
            raise bad_request(f"Permission being assigned was not found on application '{app_id}'.")
        granted = {(g.resource_id, g.app_role_id) for g in self.granted_to(principal.id)}
        if (resource.id, role_id) in granted:
            raise bad_request("Permission being assigned already exists on the object.")
        row = Grant(_row_id(principal.id, resource.id, role_id), principal.id, resource.id, role_id,
                    datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        self.rows.append(row)
        return row

    def to_json(self, row: Grant) -> dict[str, Any]:
        principal = self.tenant.get(row.principal_id)
        resource = self.tenant.get(row.resource_id)
        return {
            "id": row.id,
            "deletedDateTime": None,
            "appRoleId": row.app_role_id,
            "createdDateTime": row.created,
            "principalDisplayName": principal.display_name if principal else None,
            "principalId": row.principal_id,
            "principalType": "ServicePrincipal",
            "resourceDisplayName": resource.display_name if resource else None,
            "resourceId": row.resource_id,
        }


def _microsoft_graph(tenant: Tenant) -> DirectoryObject | None:
    found = (sp for sp in tenant.of_kind("servicePrincipal") if sp.get("appId") == MICROSOFT_GRAPH_APP_ID)
    return next(found, None)


def _app_role(value: str, role_id: str) -> dict[str, Any]:
    return {"id": role_id, "value": value, "displayName": value, "allowedMemberTypes": ["Application"],
            "isEnabled": True, "origin": "Application", "description": f"{value} (application permission)"}


def _row_id(principal_id: str, resource_id: str, role_id: str) -> str:
    # Graph's assignment ids are base64-like strings, not GUIDs (graph.md §1.3).
    raw = uuid.uuid5(_ROW_ID_NAMESPACE, f"{principal_id}:{resource_id}:{role_id}").bytes * 2
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unsigned_token(*, roles: tuple[str, ...] = (), scopes: tuple[str, ...] = (), tenant_id: str = "",
                   app_name: str = "entra-litellm-sync (emulator)",
                   audience: str = "https://graph.microsoft.com") -> str:
    """A JWT-shaped bearer token whose claims a test chooses: ``roles`` as in an app-only token,
    ``scopes`` (the ``scp`` claim) as in a signed-in user's token. Unsigned (alg none): the emulator
    compares the token as a string, and the sync only reads the claims to report them."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {"aud": audience, "tid": tenant_id, "app_displayname": app_name,
                               "iat": now, "exp": now + 3600}
    if roles:
        claims["roles"] = list(roles)
    if scopes:
        claims["scp"] = " ".join(scopes)
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."

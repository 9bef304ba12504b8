"""A small, explicit tenant for end-to-end tests, and the expectations derived from it."""

from __future__ import annotations

import uuid
from typing import Any

APP_ID = "11112222-bbbb-3333-cccc-4444dddd5555"


def oid(name: str, salt: str = "") -> str:
    """A stable GUID per name (and salt), so tests can refer to objects by name."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.{salt}.e2e.test"))


def small_tenant(*, big_group_size: int = 150, salt: str = "") -> dict[str, Any]:
    """Three assigned groups (one with a nested group, a disabled account, a guest, a device, a
    contact and a service principal as members), one big group, one unassigned group, one user
    assigned directly. ``salt`` gives every id a fresh value, for a proxy whose database persists."""

    def oid(name: str) -> str:
        return _oid(name, salt)

    def _user(name: str, *, enabled: bool = True, mail: str | None = "") -> dict[str, Any]:
        return {"id": oid(name), "displayName": name.title(), "userPrincipalName": f"{name.title()}{salt}@Contoso.com",
                "mail": f"{name}{salt}@contoso.com" if mail == "" else mail, "accountEnabled": enabled,
                "userType": "Member"}

    users = [_user(f"eng{i}") for i in range(6)]
    users += [_user("ops0"), _user("ops1"), _user("nested0"), _user("nested1")]
    users += [_user("disabled", enabled=False), _user("nomail", mail=None), _user("direct")]
    users.append({"id": oid("guest"), "displayName": "Alice (Fabrikam)", "mail": "alice@fabrikam.com",
                  "userPrincipalName": f"alice{salt}_fabrikam.com#EXT#@contoso.onmicrosoft.com",
                  "accountEnabled": True, "userType": "Guest"})
    users += [_user(f"big{i}") for i in range(big_group_size)]
    groups = [
        {"id": oid("Engineering"), "displayName": "Engineering",
         "members": [oid(f"eng{i}") for i in range(6)] + [oid("disabled"), oid("guest"), oid("Platform"),
                                                          oid("laptop"), oid("vendor"), oid("robot")]},
        {"id": oid("Platform"), "displayName": "Platform", "members": [oid("nested0"), oid("nested1")]},
        {"id": oid("Operations"), "displayName": "Operations", "members": [oid("ops0"), oid("ops1"), oid("nomail")]},
        {"id": oid("Everyone"), "displayName": "Everyone", "members": [oid(f"big{i}") for i in range(big_group_size)]},
        {"id": oid("Unassigned"), "displayName": "Unassigned", "members": [oid("ops0")]},
    ]
    assigned = ["Engineering", "Operations", "Everyone"]
    return {
        "tenant_id": oid("tenant"),
        "service_principal": {"id": oid("sp"), "appId": APP_ID, "displayName": "LiteLLM"},
        "users": users,
        "groups": groups,
        "devices": [{"id": oid("laptop"), "displayName": "LAPTOP-01"}],
        "contacts": [{"id": oid("vendor"), "displayName": "Vendor", "mail": "vendor@example.com"}],
        "service_principals": [{"id": oid("robot"), "displayName": "robot"}],
        "assignments": [{"principalId": oid(g), "principalType": "Group"} for g in assigned]
        + [{"principalId": oid("direct"), "principalType": "User"}],
    }


_oid = oid

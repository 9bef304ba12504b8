"""Generate emulators/tenants/demo.json, the "Contoso" demo tenant (fixed seed: stable GUIDs).

Run: ``python -m emulators.tenants.make_demo [OUT]``. What the tenant contains, on purpose:
- 250 users; 14 groups assigned to the LiteLLM app, plus "Facilities" which is NOT assigned;
- "Platform Engineering" with 130 members (default 100-item pages need a second page);
- "All Engineering" nests "Platform Engineering" and "Product Engineering";
- a disabled account (in Sales), a guest (alice@fabrikam.com, in Research), a user without mail (in Finance);
- a device, an org contact and a service principal as members of "Customer Support";
- two users assigned to the app directly;
- app roles on the app, as LiteLLM's SSO reads them: one direct user is assigned "proxy_admin",
  "Security" "proxy_admin_viewer", "All Engineering" "internal_user" (its three leads are direct
  members and get it; the members of the two nested groups do not), and "Finance" "Reports.Read",
  which is not a LiteLLM role. The other assignments have the default access role.
"""

from __future__ import annotations

import random
import sys
import uuid
from pathlib import Path
from typing import Any

from emulators.graph.tenant import Tenant

SEED = 20240115
_FIRST_NAMES = (
    "Aiden Amara Ben Chloe Diego Elena Farah Gabriel Hana Ivan Jonas Keiko Liam Maya Nikhil Olivia Pedro "
    "Quentin Rosa Samir Tara Umar Vera Wei Xavier Yara Zoe Arjun Bianca Carlos Dmitri Emma Fatima Grace "
    "Hugo Ines Jamal Kira Lucas Mei"
)
_LAST_NAMES = (
    "Adams Brown Chen Dubois Evans Fischer Garcia Hughes Ito Jensen Kowalski Lopez Moreau Nakamura Okafor "
    "Patel Quinn Rossi Schmidt Tanaka Ueda Varga Weber Xu Yilmaz Zhang Novak Silva Murphy Ali"
)
# (name, members taken from the shuffled user pool); sizes keep the file readable
GROUP_SIZES = (
    ("Platform Engineering", 130), ("Product Engineering", 40), ("Research", 20), ("Data Science", 15),
    ("Sales", 25), ("Customer Support", 15), ("Finance", 10), ("Marketing", 12), ("Legal", 5),
    ("People & HR", 6), ("Security", 8), ("Design", 8), ("Executives", 6), ("Facilities", 8),
)  # fmt: skip


# app role value -> display name; the ids derive from the app id and the value (stable)
APP_ROLES = {"proxy_admin": "LiteLLM admin", "proxy_admin_viewer": "LiteLLM admin (read only)",
             "internal_user": "LiteLLM user", "Reports.Read": "Cost reports"}
GROUP_ROLES = {"Security": "proxy_admin_viewer", "All Engineering": "internal_user",
               "Finance": "Reports.Read"}
_OVERLAPPING = {"Data Science", "Security", "Design", "Executives", "Marketing", "Legal", "People & HR",
               "Facilities"}  # fmt: skip


def build(seed: int = SEED) -> dict[str, Any]:
    rng = random.Random(seed)

    def guid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    users = _users(rng, guid)
    special = {u["displayName"]: u["id"] for u in users[-3:]}
    pool = [u["id"] for u in users[:-3]]
    rng.shuffle(pool)
    groups = _groups(rng, guid, pool)
    by_name = {g["displayName"]: g for g in groups}
    by_name["Sales"]["members"].append(special["Dana Whitfield"])
    by_name["Research"]["members"].append(special["Alice (Fabrikam)"])
    by_name["Finance"]["members"].append(special["Sam Rivera"])
    device = {"id": guid(), "displayName": "KIOSK-LOBBY-01", "operatingSystem": "Windows"}
    contact = {"id": guid(), "displayName": "Fabrikam Helpdesk", "mail": "helpdesk@fabrikam.com"}
    bot = {"id": guid(), "displayName": "Support Triage Bot", "appId": guid()}
    by_name["Customer Support"]["members"] += [device["id"], contact["id"], bot["id"]]
    assigned = [g for g in groups if g["displayName"] != "Facilities"]
    direct_users = [pool[-1], pool[-2]]  # in no group: only the direct assignment gives them access
    tenant_id, sp_id, app_id = guid(), guid(), guid()
    roles = [{"id": str(uuid.uuid5(uuid.UUID(app_id), value)), "value": value, "displayName": name,
              "description": name, "allowedMemberTypes": ["User"], "isEnabled": True, "origin": "Application"}
             for value, name in APP_ROLES.items()]
    role_id = {r["value"]: r["id"] for r in roles}

    def role(value: str | None) -> dict[str, str]:
        return {"appRoleId": role_id[value]} if value else {}

    return {
        "tenant_id": tenant_id,
        "service_principal": {"id": sp_id, "appId": app_id, "displayName": "LiteLLM", "appRoles": roles},
        "users": users,
        "groups": groups,
        "devices": [device],
        "contacts": [contact],
        "service_principals": [bot],
        "assignments": [
            {"principalId": g["id"], "principalType": "Group", **role(GROUP_ROLES.get(g["displayName"]))}
            for g in assigned]
        + [{"principalId": direct_users[0], "principalType": "User", **role("proxy_admin")},
           {"principalId": direct_users[1], "principalType": "User"}],
    }


def _users(rng: random.Random, guid: Any) -> list[dict[str, Any]]:
    pairs = [(first, last) for first in _FIRST_NAMES.split() for last in _LAST_NAMES.split()]
    names = rng.sample(pairs, 247)
    users = []
    for first, last in names:
        upn = f"{first}.{last}@contoso.com".lower()
        users.append(_user(guid(), f"{first} {last}", upn, upn))
    users.append(_user(guid(), "Dana Whitfield", "dana.whitfield@contoso.com", "dana.whitfield@contoso.com"))
    users[-1]["accountEnabled"] = False
    users.append(_user(guid(), "Alice (Fabrikam)", "alice_fabrikam.com#EXT#@contoso.onmicrosoft.com",
                       "alice@fabrikam.com", "Guest"))  # fmt: skip
    users.append(_user(guid(), "Sam Rivera", "sam.rivera@contoso.com", None))
    return users


def _user(uid: str, name: str, upn: str, mail: str | None, user_type: str = "Member") -> dict[str, Any]:
    return {"id": uid, "displayName": name, "userPrincipalName": upn, "mail": mail, "accountEnabled": True,
            "userType": user_type}  # fmt: skip


def _groups(rng: random.Random, guid: Any, pool: list[str]) -> list[dict[str, Any]]:
    groups, start = [], 0
    for name, size in GROUP_SIZES:
        if name in _OVERLAPPING:
            members = rng.sample(pool[:200], size)  # overlap with other groups on purpose
        else:
            members, start = pool[start : start + size], start + size
        groups.append({"id": guid(), "displayName": name, "members": list(members)})
    platform, product = groups[0]["id"], groups[1]["id"]
    leads = rng.sample(pool[:170], 3)
    groups.insert(0, {"id": guid(), "displayName": "All Engineering", "members": [platform, product, *leads]})
    return groups


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).with_name("demo.json")
    Tenant.from_dict(build()).save(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

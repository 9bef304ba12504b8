"""Synthetic tenants for the benchmark, in the emulator's tenant format (``Tenant.from_dict``).

Everything comes from one seeded ``random.Random``, so a size and a seed always give the same
tenant (same GUIDs, same memberships). Generation is in memory and takes well under a few seconds
even for the large size.

Shape (see ``SIZES``):
- users with unique UPN = mail; about 1.5 % of them disabled;
- three very large groups (10-20 % of all users each: 5,000-10,000 members in the large size);
- every other group drawn from a log-normal size distribution (median a few tens of members),
  scaled so the direct user memberships add up to about ``memberships``;
- a few "umbrella" groups that contain other groups (nesting), one of them two levels deep and
  one of them containing a very large group;
- every group assigned to the app; no users assigned directly.

``Model`` is the benchmark's own copy of the directory (group -> direct members, user -> enabled),
used to apply churn and to compute the expected state and the lower bounds independently of the
sync under test.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

_FIRST = (
    "Aiden", "Amara", "Ben", "Chloe", "Diego", "Elena", "Farah", "Gabriel", "Hana", "Ivan",
    "Jonas", "Keiko", "Liam", "Maya", "Nikhil", "Olivia", "Pedro", "Quentin", "Rosa", "Samir",
    "Tara", "Umar", "Vera", "Wei", "Xavier", "Yara", "Zoe", "Arjun", "Bianca", "Carlos",
)
_LAST = (
    "Adams", "Brown", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen",
    "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Patel", "Quinn", "Rossi", "Schmidt",
    "Tanaka",
)
_DEPARTMENTS = (
    "Engineering", "Sales", "Finance", "Research", "Support", "Legal", "Marketing", "Design",
    "Operations", "Security", "Data", "Platform", "Product", "People", "Facilities",
)


@dataclass(frozen=True)
class Size:
    name: str
    users: int
    groups: int
    memberships: int  # target number of direct user memberships
    huge_groups: int = 3
    umbrellas: int = 2
    disabled_fraction: float = 0.015
    all_staff: int | None = None  # members of the first very large group (an all-staff group), if set


SIZES = {
    "small": Size("small", users=1_000, groups=50, memberships=3_000, umbrellas=2),
    # an operator's first try into a real proxy (python -m bench --litellm-url URL)
    "medium": Size("medium", users=2_000, groups=100, memberships=6_000, umbrellas=2),
    "large": Size("large", users=50_000, groups=2_000, memberships=150_000, umbrellas=6),
    "xlarge": Size("xlarge", users=250_000, groups=10_000, memberships=750_000, umbrellas=10),
    # the real proxy at scale (python -m bench --litellm-url URL --size 20k): an all-staff group of
    # 12,000, about 3 groups per person
    "20k": Size("20k", users=20_000, groups=1_000, memberships=60_000, all_staff=12_000),
}


@dataclass
class Model:
    """The benchmark's own view of the tenant: enough to apply churn and compute expectations."""

    names: dict[str, str]  # group id -> display name
    members: dict[str, list[str]]  # group id -> direct member ids (users and groups)
    enabled: dict[str, bool]  # user id -> accountEnabled
    assigned: list[str]  # group ids assigned to the app, in assignment order
    direct_users: list[str] = field(default_factory=list)  # users assigned to the app directly

    def is_group(self, object_id: str) -> bool:
        return object_id in self.members

    def transitive(self, group_id: str) -> tuple[set[str], set[str]]:
        """(user ids, nested group ids) reachable below ``group_id``; cycles are safe."""
        users: set[str] = set()
        groups: set[str] = set()
        stack = list(self.members[group_id])
        while stack:
            member = stack.pop()
            if member in self.members:
                if member in groups or member == group_id:
                    continue
                groups.add(member)
                stack.extend(self.members[member])
            else:
                users.add(member)
        return users, groups

    def desired(self) -> dict[str, frozenset[str]]:
        """Group id -> the enabled users the team should hold (what a correct sync converges to)."""
        out = {}
        for gid in self.assigned:
            users, _ = self.transitive(gid)
            out[gid] = frozenset(u for u in users if self.enabled[u])
        return out

    def page_objects(self, group_id: str) -> int:
        """Objects transitiveMembers returns for the group: users (disabled too) and nested groups."""
        users, groups = self.transitive(group_id)
        return len(users) + len(groups)

    def direct_user_memberships(self) -> list[tuple[str, str]]:
        return [(g, m) for g, ms in self.members.items() for m in ms if m not in self.members]


def generate(size: Size, seed: int = 20240501, tag: str = "") -> tuple[dict[str, Any], Model]:
    """The tenant document for ``Tenant.from_dict`` and the benchmark's model of it. ``tag`` goes
    into every e-mail: a real proxy keeps the users of earlier runs, and e-mails must not clash."""
    rng = random.Random(f"{seed}:{size.name}")

    def guid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    users = []
    enabled: dict[str, bool] = {}
    for i in range(size.users):
        first, last = _FIRST[i % len(_FIRST)], _LAST[(i // len(_FIRST)) % len(_LAST)]
        upn = f"{first}.{last}.{i}{tag}@contoso-bench.com".lower()
        uid = guid()
        on = rng.random() >= size.disabled_fraction
        users.append({"id": uid, "displayName": f"{first} {last} {i}", "userPrincipalName": upn,
                      "mail": upn, "accountEnabled": on, "userType": "Member"})
        enabled[uid] = on
    user_ids = [u["id"] for u in users]

    sizes = _group_sizes(rng, size)
    group_ids = [guid() for _ in range(size.groups)]
    names: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for i, (gid, n) in enumerate(zip(group_ids, sizes, strict=True)):
        dept = _DEPARTMENTS[i % len(_DEPARTMENTS)]
        names[gid] = f"All {dept} (huge {i})" if i < size.huge_groups else f"{dept} team {i:04d}"
        members[gid] = rng.sample(user_ids, n)

    # Umbrellas: ordinary groups that also contain other groups. Only an umbrella with a lower
    # index may contain one with a higher index, so there is no cycle.
    first_umbrella = size.huge_groups
    umbrellas = group_ids[first_umbrella:first_umbrella + size.umbrellas]
    leaves = group_ids[first_umbrella + size.umbrellas:]
    for k, gid in enumerate(umbrellas):
        names[gid] = f"Division {k} (umbrella)"
        members[gid].extend(rng.sample(leaves, rng.randint(2, 5)))
    if len(umbrellas) >= 2:
        members[umbrellas[0]].append(umbrellas[1])  # two levels deep
        members[umbrellas[0]].append(group_ids[0])  # an umbrella over a very large group

    model = Model(names=names, members=members, enabled=enabled, assigned=list(group_ids))
    document = {
        "tenant_id": guid(),
        "service_principal": {"id": guid(), "appId": guid(), "displayName": "LiteLLM"},
        "users": users,
        "groups": [{"id": gid, "displayName": names[gid], "members": list(members[gid])}
                   for gid in group_ids],
        "assignments": [{"principalId": gid, "principalType": "Group"} for gid in group_ids],
    }
    return document, model


def _group_sizes(rng: random.Random, size: Size) -> list[int]:
    huge = [rng.randint(size.users // 10, size.users // 5) for _ in range(size.huge_groups)]
    if size.all_staff is not None:
        huge[0] = size.all_staff
    rest = size.groups - size.huge_groups
    raw = [rng.lognormvariate(0.0, 1.1) for _ in range(rest)]
    target = max(0, size.memberships - sum(huge))
    cap = max(200, size.users // 20)
    scale = target / sum(raw)
    for _ in range(5):  # clipping at the cap loses members: scale up until the total fits
        sizes = [max(2, min(cap, round(r * scale))) for r in raw]
        scale *= target / max(1, sum(sizes))
    return huge + sizes


# ------------------------------------------------------------------------------------------ churn

Op = tuple[str, str, str]  # ("join" | "leave", group id, user id) or ("rename", group id, new name)


def churn(model: Model, fraction: float = 0.01, seed: int = 7) -> list[Op]:
    """Changes touching ``fraction`` of the direct user memberships (half leaves, half joins) and
    renaming ``fraction`` of the groups (at least one). Applies them to ``model`` too."""
    rng = random.Random(seed)
    existing = model.direct_user_memberships()
    touched = max(2, round(fraction * len(existing)))
    leaves = rng.sample(existing, touched // 2)
    all_users = list(model.enabled)
    joins: list[tuple[str, str]] = []
    taken: set[tuple[str, str]] = set()
    while len(joins) < touched - len(leaves):
        gid = rng.choice(existing)[0]  # weighted by group size: big groups see more churn
        uid = rng.choice(all_users)
        if (gid, uid) in taken or uid in model.members[gid]:
            continue
        taken.add((gid, uid))
        joins.append((gid, uid))
    renamed = rng.sample(model.assigned, max(1, round(fraction * len(model.assigned))))
    ops: list[Op] = [("leave", g, u) for g, u in leaves] + [("join", g, u) for g, u in joins]
    ops += [("rename", g, f"{model.names[g]} (renamed)") for g in renamed]
    apply_ops(model, ops)
    return ops


def apply_ops(model: Model, ops: list[Op]) -> None:
    for kind, gid, arg in ops:
        if kind == "leave":
            model.members[gid].remove(arg)
        elif kind == "join":
            model.members[gid].append(arg)
        elif kind == "rename":
            model.names[gid] = arg
        else:
            raise ValueError(f"unknown churn op {kind!r}")


def describe(model: Model) -> dict[str, int]:
    desired = model.desired()
    nested = sum(1 for ms in model.members.values() for m in ms if m in model.members)
    in_some_group = set().union(*desired.values()) if desired else set()
    largest = max((len(v) for v in desired.values()), default=0)
    return {
        "users": len(model.enabled),
        "disabled": sum(1 for on in model.enabled.values() if not on),
        "groups": len(model.members),
        "direct_memberships": len(model.direct_user_memberships()),
        "nested_edges": nested,
        "team_memberships": sum(len(v) for v in desired.values()),
        "users_in_teams": len(in_some_group),
        "largest_team": largest,
        "median_group": sorted(len(v) for v in model.members.values())[len(model.members) // 2],
    }


def ceil_div(a: int, b: int) -> int:
    return math.ceil(a / b) if a > 0 else 0

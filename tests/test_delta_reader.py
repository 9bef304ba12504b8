"""Incremental (delta) reads give exactly what a full read gives, over random change sequences."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from emulators.graph import GraphEmulator, Tenant
from emulators.graph.tenant import DEFAULT_ROLE_ID
from sync_core.graph.client import build_graph_client
from sync_core.graph.delta import DeltaReader
from sync_core.graph.reader import GraphReader, GraphSource
from sync_core.model import Directory
from sync_core.settings import Settings
from sync_core.state import LocalStateBackend
from tests.conftest import sync_env
from tests.tenants import APP_ID

SEQUENCES, STEPS = 12, 6
APP_ROLES = [{"id": f"00000000-0000-4000-6000-{i:012d}", "value": value, "isEnabled": i != 4}
             for i, value in enumerate(["proxy_admin", "proxy_admin_viewer", "internal_user", "Reports.Read",
                                        "proxy_admin"])]  # a LiteLLM role, a value that is not, a disabled role


def random_tenant(rng: random.Random) -> dict:
    users = [{"id": f"00000000-0000-4000-9000-{i:012d}", "displayName": f"U{i}",
              "userPrincipalName": f"u{i}@contoso.com", "mail": f"u{i}@contoso.com",
              "accountEnabled": rng.random() > 0.1, "userType": "Member"} for i in range(30)]
    groups = [{"id": f"00000000-0000-4000-8000-{i:012d}", "displayName": f"G{i}",
               "members": rng.sample([u["id"] for u in users], rng.randint(0, 10))} for i in range(8)]
    groups[0]["members"].append(groups[5]["id"])  # nesting, two levels
    groups[5]["members"].append(groups[6]["id"])
    return {"tenant_id": "00000000-0000-4000-8000-999999999999",
            "service_principal": {"id": "00000000-0000-4000-8000-999999999998", "appId": APP_ID, "displayName": "LiteLLM",
                                  "appRoles": APP_ROLES},
            "users": users, "groups": groups, "devices": [{"id": "00000000-0000-4000-7000-000000000001", "displayName": "pc"}],
            "contacts": [], "service_principals": [],
            "assignments": [{"principalId": g["id"], "principalType": "Group"} for g in groups[:4]]
            + [{"principalId": users[0]["id"], "principalType": "User"}]
            # roles: group 0 nests 5 (which nests 6), whose members get nothing from group 0's role
            + [{"principalId": groups[0]["id"], "principalType": "Group", "appRoleId": APP_ROLES[2]["id"]},
               {"principalId": groups[5]["id"], "principalType": "Group", "appRoleId": APP_ROLES[1]["id"]},
               {"principalId": users[1]["id"], "principalType": "User", "appRoleId": APP_ROLES[0]["id"]}]}


def change(rng: random.Random, tenant: Tenant) -> str:
    groups = [g.id for g in tenant.of_kind("group")]
    users = [u.id for u in tenant.of_kind("user")]
    group = rng.choice(groups)
    members = [m.id for m in tenant.direct_members(group)]
    match rng.choice(["join", "leave", "nest", "unnest", "rename", "disable", "enable", "new user", "delete user",
                      "assign", "unassign", "email", "device", "role", "unrole"]):
        case "join":
            user = rng.choice(users)
            if user not in members:
                tenant.add_member(group, user)
        case "leave" if members:
            tenant.remove_member(group, rng.choice(members))
        case "nest":
            other = rng.choice(groups)
            if other != group and other not in members and group not in [m.id for m in tenant.transitive_members(other)]:
                tenant.add_member(group, other)
        case "unnest":
            nested = [m for m in members if m in groups]
            if nested:
                tenant.remove_member(group, rng.choice(nested))
        case "rename":
            tenant.rename_group(group, f"{tenant.get(group).display_name}*")
        case "disable":
            tenant.disable_user(rng.choice(users))
        case "enable":
            tenant.enable_user(rng.choice(users))
        case "new user":
            tenant.add_member(group, tenant.add_user(f"New {rng.random():.6f}", f"new{rng.randint(0, 10**9)}@contoso.com",
                                                      mail=None))
        case "delete user":
            tenant.delete_user(rng.choice(users), permanent=rng.random() < 0.5)
        case "assign" if not tenant.assignment_for(group):
            tenant.assign(group)
        case "unassign" if tenant.assignment_for(group):
            tenant.unassign(group)
        case "email":
            tenant.update_user(rng.choice(users), userPrincipalName=f"moved{rng.randint(0, 10**9)}@contoso.com")
        case "role":  # a user or a group gets an app role (assignments have no delta: re-read each run)
            tenant.assign(rng.choice([group, rng.choice(users)]), rng.choice(APP_ROLES)["id"])
        case "unrole":
            roles = [a for a in tenant.assignments if a.app_role_id != DEFAULT_ROLE_ID]
            if roles:
                row = rng.choice(roles)
                tenant.unassign(row.principal_id, row.app_role_id)
        case "device":
            device = "00000000-0000-4000-7000-000000000001"
            if device not in members:
                tenant.add_member(group, device)
    return group


def essence(directory: Directory) -> tuple:
    """What the planner uses: groups with names and members, the users they need, direct users,
    the app roles."""
    needed = {u for g in directory.groups.values() for u in g.member_ids or ()} | directory.direct_user_ids
    needed |= directory.app_roles.keys()
    return ({g.id: (g.display_name, g.member_ids) for g in directory.groups.values()},
            {u: directory.users[u] for u in needed}, directory.direct_user_ids, directory.assignments_complete,
            directory.app_roles, directory.app_roles_complete)


class World:
    """A random tenant on the Graph emulator, and fresh readers over one snapshot store."""

    def __init__(self, seed: int, graph: GraphEmulator, store: LocalStateBackend, *, nested: bool = True) -> None:
        self.graph, self.tenant, self.store = graph, graph.tenant, store
        self.settings = Settings.from_env(sync_env(graph.base_url, "http://127.0.0.1:9"))
        self.source = GraphSource(base_url=graph.base_url, app_id=APP_ID, nested_groups=nested)

    def full(self) -> Directory:
        return asyncio.run(GraphReader(build_graph_client(self.settings), self.source).read())

    def incremental(self) -> tuple[Directory, DeltaReader]:
        reader = DeltaReader(GraphReader(build_graph_client(self.settings), self.source), self.store,
                             full_every=timedelta(hours=24))
        return asyncio.run(reader.read()), reader


@contextmanager
def world(seed: int, tmp_path: Path, *, nested: bool = True) -> Iterator[World]:
    with GraphEmulator(Tenant.from_dict(random_tenant(random.Random(seed))), token="emulator-token") as graph:
        yield World(seed, graph, LocalStateBackend(tmp_path), nested=nested)


@pytest.mark.parametrize("seed", range(SEQUENCES))
def test_incremental_reads_equal_full_reads(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed + 1000)
    with world(seed, tmp_path, nested=seed % 3 != 0) as w:
        first, reader = w.incremental()
        assert reader.mode == "full" and essence(first) == essence(w.full())
        assert first.app_roles  # roles are in play from the start
        for step in range(STEPS):
            changed = [change(rng, w.tenant) for _ in range(rng.randint(1, 4))]
            got, reader = w.incremental()
            assert reader.mode == "incremental"
            assert essence(got) == essence(w.full()), f"seed {seed} step {step} after changes to {changed}"


def test_a_quiet_incremental_run_costs_a_handful_of_requests(tmp_path: Path) -> None:
    with world(99, tmp_path) as w:
        assert w.incremental()[1].mode == "full"
        _, quiet = w.incremental()
        assert quiet.mode == "incremental"
        assert quiet.requests == 4  # assignments, the app's appRoles, groups delta, users delta


def test_expired_or_reset_links_fall_back_to_a_full_read(tmp_path: Path) -> None:
    with world(7, tmp_path) as w:
        modes = []
        for breaker in (None, None, w.graph.expire_delta_tokens, w.graph.force_delta_reset):
            if breaker:
                breaker()
            w.tenant.rename_group(w.tenant.of_kind("group")[0].id, f"renamed {len(modes)}")
            directory, reader = w.incremental()
            modes.append(reader.mode)
            assert essence(directory) == essence(w.full())
        assert modes == ["full", "incremental", "full", "full"]

"""LiteLLM roles from the app's app roles, read with the real msgraph-sdk from the Graph emulator.

Entra's rule (as in a sign-in token): a user gets the roles of their own assignments and of the
assignments of groups they are a DIRECT member of; members of a nested group get nothing from
the outer group's assignment.
"""

from __future__ import annotations

import re

import pytest

from emulators.graph import GraphEmulator, Tenant
from emulators.http_base import Fault, FaultInjector, Request, ScriptedFaults
from tests.graph_reads import read
from tests.tenants import oid, small_tenant

APP_ROLES = [
    {"id": oid("role:admin"), "value": "proxy_admin"},
    {"id": oid("role:viewer"), "value": "proxy_admin_viewer"},
    {"id": oid("role:user"), "value": "internal_user"},
    {"id": oid("role:reports"), "value": "Reports.Read"},  # not a LiteLLM role
    {"id": oid("role:retired"), "value": "proxy_admin", "isEnabled": False},
]
ENGINEERING_DIRECT = {oid(f"eng{i}") for i in range(6)} | {oid("disabled"), oid("guest")}
EXPECTED = {
    **{user: frozenset({"internal_user"}) for user in ENGINEERING_DIRECT},  # not nested0/nested1 (in Platform)
    oid("eng1"): frozenset({"internal_user", "proxy_admin"}),  # group role and a direct one
    oid("direct"): frozenset({"proxy_admin"}),
    oid("ops0"): frozenset({"proxy_admin_viewer"}),  # Operations' role is no LiteLLM role
}


def role_tenant() -> dict:
    data = small_tenant(big_group_size=3)
    data["service_principal"]["appRoles"] = APP_ROLES
    roles = {oid("Engineering"): "user", oid("Operations"): "reports", oid("direct"): "admin"}
    for row in data["assignments"]:
        if row["principalId"] in roles:
            row["appRoleId"] = oid(f"role:{roles[row['principalId']]}")
    data["assignments"] += [
        {"principalId": oid("eng1"), "principalType": "User", "appRoleId": oid("role:admin")},
        {"principalId": oid("ops0"), "principalType": "User", "appRoleId": oid("role:viewer")},
        {"principalId": oid("eng2"), "principalType": "User", "appRoleId": oid("role:retired")},
        {"principalId": oid("Platform"), "principalType": "Group", "appRoleId": oid("role:reports")},
    ]
    return data


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.from_dict(role_tenant())


def reads_of(graph: GraphEmulator, pattern: str) -> int:
    return sum(bool(re.search(pattern, r.path)) for r in graph.server.requests())


APP_ROLES_READ = r"/servicePrincipals\(appId='[^']+'\)$"


@pytest.mark.parametrize("nested", [True, False])
def test_roles_come_from_direct_assignments_and_direct_group_membership(graph: GraphEmulator, nested: bool) -> None:
    directory, _ = read(graph, nested=nested)
    assert directory.app_roles == EXPECTED
    assert directory.app_roles_complete and directory.app_roles_error is None
    assert oid("nested0") in directory.groups[oid("Engineering")].member_ids or not nested  # in the team...
    assert oid("nested0") not in directory.app_roles  # ...but without a role, as in Entra's token
    assert reads_of(graph, APP_ROLES_READ) == 1
    # Transitive reads take one more read for the direct members of the one group whose
    # assignment gives a LiteLLM role (Engineering); a direct read has them already.
    assert reads_of(graph, f"/groups/{oid('Engineering')}/(transitiveMembers|members)$") == (2 if nested else 1)
    assert reads_of(graph, f"/groups/{oid('Operations')}/(transitiveMembers|members)$") == 1


def test_without_app_role_assignments_nothing_more_is_read(graph: GraphEmulator, tenant: Tenant) -> None:
    for row in tenant.assignments:
        row.app_role_id = "00000000-0000-0000-0000-000000000000"
    directory, reader = read(graph)
    assert directory.app_roles == {} and directory.app_roles_complete
    assert reads_of(graph, APP_ROLES_READ) == 0
    assert reader.requests == len(graph.server.requests())
    assert reads_of(graph, "/members$") == 0


def test_roles_follow_changes_of_assignments_and_app_roles(graph: GraphEmulator, tenant: Tenant) -> None:
    tenant.unassign(oid("direct"), oid("role:admin"))
    tenant.assign(oid("direct"), oid("role:viewer"))
    tenant.app.props["appRoles"][2]["value"] = "internal_user_viewer"  # the group's role changed value
    tenant.remove_member(oid("Engineering"), oid("eng3"))
    directory, _ = read(graph)
    assert directory.app_roles[oid("direct")] == {"proxy_admin_viewer"}
    assert directory.app_roles[oid("eng0")] == {"internal_user_viewer"}
    assert oid("eng3") not in directory.app_roles


def test_on_demand_reads_still_see_roles_from_groups_not_read(graph: GraphEmulator) -> None:
    directory, _ = read(graph, nested=False, only=frozenset({oid("Operations")}))
    assert set(directory.groups) == {oid("Operations")}
    assert directory.app_roles[oid("eng1")] == {"internal_user", "proxy_admin"}
    assert directory.app_roles[oid("ops0")] == {"proxy_admin_viewer"}
    assert directory.app_roles_complete


@pytest.mark.parametrize("path", [APP_ROLES_READ, f"/groups/{oid('Engineering')}/members$"])
def test_an_unreadable_role_source_leaves_roles_incomplete_not_smaller(graph: GraphEmulator, path: str) -> None:
    graph.server.faults = ScriptedFaults().add("GET", path, Fault("status", 403), 10)
    directory, _ = read(graph)
    assert not directory.app_roles_complete
    assert "403" in (directory.app_roles_error or "")
    assert all(group.known for group in directory.groups.values())  # teams are not held back


class FailLaterAssignmentPages(FaultInjector):
    def decide(self, request: Request) -> Fault | None:
        later = "appRoleAssignedTo" in request.path and "$skiptoken" in request.query
        return Fault("status", 403) if later else None


def test_a_broken_assignment_list_leaves_roles_incomplete(graph: GraphEmulator) -> None:
    graph.page_size_cap = 2
    graph.server.faults = FailLaterAssignmentPages()
    directory, _ = read(graph)
    assert not directory.assignments_complete
    assert not directory.app_roles_complete and "assignment list" in (directory.app_roles_error or "")

"""`python -m sync_core grant-permissions` end to end: the real msgraph-sdk against the Graph emulator,
which keeps Microsoft Graph's service principal and the app roles granted to each principal."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from emulators.graph import GraphEmulator, Tenant
from emulators.graph.grants import GRAPH_APP_ROLES, MICROSOFT_GRAPH_APP_ID, unsigned_token
from emulators.http_base import Fault, ScriptedFaults
from tests.conftest import CliRun, run_cli
from tests.tenants import oid, small_tenant

IDENTITY = oid("sync-identity")  # the Function app's managed identity, as its service principal
# What `az login` gives an administrator for Graph: delegated scopes, no application roles.
OPERATOR_TOKEN = unsigned_token(scopes=("AppRoleAssignment.ReadWrite.All", "Application.Read.All"))
NEEDED = {"Application.Read.All", "GroupMember.Read.All", "User.Read.All"}


def identity_tenant() -> Tenant:
    """A small tenant with the Function app's managed identity as a service principal."""
    document = small_tenant(big_group_size=1)
    document["service_principals"].append({"id": IDENTITY, "displayName": "func-entra-litellm-sync",
                                           "servicePrincipalType": "ManagedIdentity"})
    return Tenant.from_dict(document)


@pytest.fixture
def tenant() -> Tenant:
    return identity_tenant()


@pytest.fixture
def graph(tenant: Tenant) -> Iterator[GraphEmulator]:
    with GraphEmulator(tenant, token=OPERATOR_TOKEN) as emulator:
        yield emulator


def grant(graph: GraphEmulator, principal_id: str = IDENTITY) -> CliRun:
    # Only the Graph settings: the command needs neither LiteLLM nor the enterprise app.
    env = {"GRAPH_BASE_URL": graph.base_url, "GRAPH_ACCESS_TOKEN": OPERATOR_TOKEN}
    return run_cli(env, "grant-permissions", "--principal-id", principal_id)


def granted_names(graph: GraphEmulator, principal_id: str = IDENTITY) -> set[str]:
    by_id = {role_id: name for name, role_id in GRAPH_APP_ROLES.items()}
    return {by_id[row.app_role_id] for row in graph.grants.granted_to(principal_id)
            if row.resource_id == graph.grants.microsoft_graph.id}


def posts(graph: GraphEmulator) -> int:
    return len(graph.server.requests(["POST"]))


def test_grants_the_three_permissions_then_finds_them_there(graph: GraphEmulator) -> None:
    first = grant(graph)
    assert first.code == 0, first.err
    assert granted_names(graph) == NEEDED and posts(graph) == 3
    assert all(f"granted: {name}" in first.out for name in NEEDED)
    assert "granted 3, already there 0" in first.out

    again = grant(graph)
    assert again.code == 0 and posts(graph) == 3  # idempotent: nothing new is posted
    assert all(f"already granted: {name}" in again.out for name in NEEDED)
    assert "granted 0, already there 3" in again.out


def test_grants_only_what_is_missing(graph: GraphEmulator) -> None:
    graph.grants.grant(graph.tenant.get(IDENTITY), {
        "principalId": IDENTITY, "resourceId": graph.grants.microsoft_graph.id,
        "appRoleId": GRAPH_APP_ROLES["User.Read.All"]})
    result = grant(graph)
    assert result.code == 0
    assert "already granted: User.Read.All" in result.out and "granted 2, already there 1" in result.out
    assert granted_names(graph) == NEEDED and posts(graph) == 2


def test_an_unknown_principal_says_which_id_is_wanted(graph: GraphEmulator) -> None:
    result = grant(graph, oid("nobody"))
    assert result.code == 1 and posts(graph) == 0
    assert "404" in result.err and "object id of the identity's service principal" in result.err


def test_a_refused_grant_names_the_role_the_operator_needs(graph: GraphEmulator) -> None:
    graph.server.faults = ScriptedFaults().add("POST", "/appRoleAssignments$", Fault("status", 403))
    result = grant(graph)
    assert result.code == 1 and granted_names(graph) == set()
    assert "cannot grant Application.Read.All" in result.err and "Privileged Role Administrator" in result.err


def test_a_graph_that_does_not_answer_is_an_error_not_a_traceback(graph: GraphEmulator) -> None:
    graph.server.faults = ScriptedFaults().add("GET", "/servicePrincipals", Fault("drop"))
    result = grant(graph)
    assert result.code == 1 and posts(graph) == 0
    assert result.err.startswith("grant-permissions failed: cannot read the permissions of")
    assert "Traceback" not in result.err


def test_a_malformed_principal_id_is_refused_before_any_call(graph: GraphEmulator) -> None:
    with pytest.raises(SystemExit) as exit_:
        grant(graph, "not-a-guid")
    assert exit_.value.code == 2 and graph.server.requests() == []


def test_the_emulator_refuses_what_graph_refuses(graph: GraphEmulator) -> None:
    url = f"{graph.base_url}/servicePrincipals/{IDENTITY}/appRoleAssignments"
    headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    resource = httpx.get(f"{graph.base_url}/servicePrincipals(appId='{MICROSOFT_GRAPH_APP_ID}')",
                         headers=headers).json()
    body = {"principalId": IDENTITY, "resourceId": resource["id"], "appRoleId": GRAPH_APP_ROLES["User.Read.All"]}
    assert httpx.post(url, json=body, headers=headers).status_code == 201
    duplicate = httpx.post(url, json=body, headers=headers)
    assert duplicate.status_code == 400 and "already exists" in duplicate.json()["error"]["message"]
    unknown_role = httpx.post(url, json={**body, "appRoleId": oid("no-such-role")}, headers=headers)
    assert unknown_role.status_code == 400 and "not found on application" in unknown_role.json()["error"]["message"]
    listed = httpx.get(url, headers=headers).json()["value"]
    assert [(r["resourceId"], r["appRoleId"], r["principalType"]) for r in listed] == [
        (resource["id"], GRAPH_APP_ROLES["User.Read.All"], "ServicePrincipal")]


def test_a_new_identity_graph_does_not_know_yet_is_looked_for_again(graph: GraphEmulator) -> None:
    """Entra takes a while to replicate a new managed identity's service principal: 404 first."""
    graph.server.faults = ScriptedFaults().add(
        "GET", f"/servicePrincipals/{IDENTITY}/appRoleAssignments", Fault("status", 404), times=1)
    env = {"GRAPH_BASE_URL": graph.base_url, "GRAPH_ACCESS_TOKEN": OPERATOR_TOKEN}
    result = run_cli(env, "grant-permissions", "--principal-id", IDENTITY, "--wait-for-identity", "30")
    assert result.code == 0, result.err
    assert "is not in Microsoft Graph yet" in result.out and "granted 3, already there 0" in result.out
    assert granted_names(graph) == NEEDED


def test_without_waiting_a_404_says_to_try_again_in_a_few_minutes(graph: GraphEmulator) -> None:
    graph.server.faults = ScriptedFaults().add(
        "GET", f"/servicePrincipals/{IDENTITY}/appRoleAssignments", Fault("status", 404), times=1)
    result = grant(graph)
    assert result.code == 1 and posts(graph) == 0
    assert "run the command again in a few minutes" in result.err and "--wait-for-identity" in result.err

"""The Graph emulator, driven by the real msgraph-sdk GraphServiceClient over HTTP.

Expected values come from the tenant JSON (member lists, assignment rows), not from the
emulator's own traversal code, so a wrong answer from the emulator fails here.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphServiceClient
from msgraph.generated.groups.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.generated.groups.item.members.graph_user.graph_user_request_builder import (
    GraphUserRequestBuilder,
)
from msgraph.generated.groups.item.members.members_request_builder import MembersRequestBuilder
from msgraph.generated.groups.item.transitive_members.transitive_members_request_builder import (
    TransitiveMembersRequestBuilder,
)
from msgraph.generated.models.device import Device
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.org_contact import OrgContact
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.models.user import User
from msgraph.generated.service_principals.item.app_role_assigned_to.app_role_assigned_to_request_builder import (
    AppRoleAssignedToRequestBuilder,
)
from msgraph.generated.service_principals_with_app_id.service_principals_with_app_id_request_builder import (
    ServicePrincipalsWithAppIdRequestBuilder,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_options
from msgraph_core import GraphClientFactory

from emulators.graph import GraphEmulator, ResourceUnitBudget, Tenant, load_tenant
from emulators.http_base import Fault, ScriptedFaults
from sync_core.graph.auth import StaticTokenCredential
from sync_core.tls import shared_tls_context

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "emulators" / "tenants" / "demo.json"
TOKEN = "emulator-token"
T = TypeVar("T")


# ---- helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def tenant() -> Tenant:
    return load_tenant(DEMO)


@pytest.fixture
def graph(tenant: Tenant) -> Iterator[GraphEmulator]:
    with GraphEmulator(tenant, token=TOKEN) as emulator:
        yield emulator


def sdk(base_url: str, fn: Callable[[GraphServiceClient], Awaitable[T]], token: str = TOKEN) -> T:
    """Run ``fn`` with a real GraphServiceClient aimed at ``base_url`` (graph.md §3.1 custom base URL)."""

    async def main() -> T:
        auth = AzureIdentityAuthenticationProvider(
            StaticTokenCredential(token), scopes=["https://graph.microsoft.com/.default"]
        )
        # The SDK's default client and middleware, with the process's one TLS context: a context of
        # its own would load the CA bundle again for every call (about 30 ms of CPU each).
        client = httpx.AsyncClient(http2=True, timeout=30, verify=shared_tls_context())
        adapter = GraphRequestAdapter(auth, GraphClientFactory.create_with_default_middleware(client=client,
                                                                                          options=graph_options))
        adapter.base_url = base_url
        try:
            return await fn(GraphServiceClient(request_adapter=adapter))
        finally:
            await adapter._http_client.aclose()

    return asyncio.run(main())


def request(method: str, url: str, **kw: Any) -> httpx.Response:
    """A raw call; a client per call is cheap with the shared TLS context (no CA bundle to load)."""
    with httpx.Client(timeout=10, verify=shared_tls_context()) as http:
        return http.request(method, url, **kw)


def raw(graph: GraphEmulator, path: str, token: str = TOKEN, **kw: Any) -> httpx.Response:
    return request("GET", f"{graph.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, **kw)


def group_id(tenant: Tenant, name: str) -> str:
    return next(g.id for g in tenant.of_kind("group") if g.display_name == name)


def user_id(tenant: Tenant, name: str) -> str:
    return next(u.id for u in tenant.of_kind("user") if u.display_name == name)


def demo_file() -> dict[str, Any]:
    return json.loads(DEMO.read_text())


def members_in_file(name: str) -> list[str]:
    """Direct member ids exactly as written in demo.json (independent of the emulator's model)."""
    return next(g["members"] for g in demo_file()["groups"] if g["displayName"] == name)


async def follow(first: Any, builder: Any) -> list[Any]:
    """All pages of a collection, following nextLinks with ``with_url`` (graph.md §3.3)."""
    pages = [first]
    while pages[-1].odata_next_link:
        pages.append(await builder.with_url(pages[-1].odata_next_link).get())
    return pages


# ---- service principal and assignments -------------------------------------------------------------


def test_service_principal_resolves_by_app_id_and_unknown_app_is_404(
    graph: GraphEmulator, tenant: Tenant
) -> None:
    app_id = tenant.app.get("appId")
    sp = sdk(graph.base_url, lambda c: c.service_principals_with_app_id(app_id).get())
    assert (sp.id, sp.app_id, sp.display_name) == (tenant.app.id, app_id, "LiteLLM")

    with pytest.raises(ODataError) as err:
        sdk(graph.base_url, lambda c: c.service_principals_with_app_id(str(uuid.uuid4())).get())
    assert err.value.response_status_code == 404
    assert err.value.error.code == "Request_ResourceNotFound"


def test_app_role_assigned_to_pages_with_top_and_next_link(graph: GraphEmulator, tenant: Tenant) -> None:
    builder_of = lambda c: c.service_principals.by_service_principal_id(tenant.app.id).app_role_assigned_to  # noqa: E731
    qp = AppRoleAssignedToRequestBuilder.AppRoleAssignedToRequestBuilderGetQueryParameters(
        top=5, select=["principalId", "principalType", "principalDisplayName", "appRoleId", "resourceId"]
    )

    async def read(c: GraphServiceClient) -> list[Any]:
        first = await builder_of(c).get(RequestConfiguration(query_parameters=qp))
        return await follow(first, builder_of(c))

    pages = sdk(graph.base_url, read)
    assert [len(p.value) for p in pages] == [5, 5, 5, 1]
    link = pages[0].odata_next_link
    assert (
        link.startswith(graph.base_url + "/servicePrincipals/") and "$top=5" in link and "$skiptoken=" in link
    )
    assert "$select=principalId,principalType" in link  # the original query is echoed
    rows = [row for p in pages for row in p.value]
    assert all(isinstance(r.principal_id, uuid.UUID) for r in rows)
    assert {str(r.principal_id) for r in rows} == {a.principal_id for a in tenant.assignments}
    assert Counter(r.principal_type for r in rows) == {"Group": 14, "User": 2}
    in_file = {row["principalId"]: row.get("appRoleId", str(uuid.UUID(int=0))) for row in demo_file()["assignments"]}
    assert {str(r.principal_id): str(r.app_role_id) for r in rows} == in_file
    assert len(set(in_file.values())) == 5  # the default access role and four app roles
    assert {r.resource_id for r in rows} == {uuid.UUID(tenant.app.id)}
    assert "Facilities" not in {r.principal_display_name for r in rows}  # the unassigned group


def test_assignments_by_app_id_alternate_key_show_current_names(graph: GraphEmulator, tenant: Tenant) -> None:
    sales = group_id(tenant, "Sales")
    tenant.rename_group(sales, "Sales EMEA")
    url = f"{graph.base_url}/servicePrincipals(appId='{tenant.app.get('appId')}')/appRoleAssignedTo?$top=999"

    async def read(c: GraphServiceClient) -> Any:
        return (
            await c.service_principals.by_service_principal_id("x").app_role_assigned_to.with_url(url).get()
        )

    page = sdk(graph.base_url, read)
    assert page.odata_next_link is None and len(page.value) == 16
    names = {str(r.principal_id): r.principal_display_name for r in page.value}
    assert names[sales] == "Sales EMEA"


def test_service_principal_serves_its_app_roles(graph: GraphEmulator, tenant: Tenant) -> None:
    app_id = tenant.app.get("appId")
    qp = ServicePrincipalsWithAppIdRequestBuilder.ServicePrincipalsWithAppIdRequestBuilderGetQueryParameters(
        select=["appRoles"]
    )
    sp = sdk(graph.base_url, lambda c: c.service_principals_with_app_id(app_id).get(
        RequestConfiguration(query_parameters=qp)))
    in_file = demo_file()["service_principal"]["appRoles"]
    assert [(str(r.id), r.value, r.display_name, r.is_enabled, r.allowed_member_types) for r in sp.app_roles] \
        == [(r["id"], r["value"], r["displayName"], True, ["User"]) for r in in_file]
    assert all(isinstance(r.id, uuid.UUID) for r in sp.app_roles)
    assert sp.display_name is None  # not selected
    body = raw(graph, f"/servicePrincipals/{tenant.app.id}?$select=id,appRoles").json()
    assert set(body) == {"@odata.context", "id", "appRoles"}
    assert set(body["appRoles"][0]) == {"allowedMemberTypes", "description", "displayName", "id", "isEnabled",
                                        "origin", "value"}


def test_a_principal_may_hold_several_app_roles_each_its_own_row(graph: GraphEmulator, tenant: Tenant) -> None:
    sales = group_id(tenant, "Sales")
    admin, viewer = tenant.app_role_id("proxy_admin"), tenant.app_role_id("proxy_admin_viewer")
    assert tenant.assign(sales, admin) == tenant.assign(sales, admin)  # the same role again: no new row

    def rows() -> list[dict[str, Any]]:
        url = f"/servicePrincipals/{tenant.app.id}/appRoleAssignedTo?$select=id,principalId,appRoleId&$top=999"
        return [r for r in raw(graph, url).json()["value"] if r["principalId"] == sales]

    assert sorted(r["appRoleId"] for r in rows()) == sorted([str(uuid.UUID(int=0)), admin])
    assert len({r["id"] for r in rows()}) == 2
    tenant.unassign(sales, str(uuid.UUID(int=0)))
    assert [r["appRoleId"] for r in rows()] == [admin]
    with pytest.raises(ValueError, match="not one of the app's appRoles"):
        tenant.assign(sales, str(uuid.uuid4()))
    tenant.assign(sales, viewer)
    tenant.unassign(sales)  # every role
    assert rows() == []


# ---- members, transitive members, $select, polymorphism ----------------------------------------------


def test_transitive_members_flatten_nested_groups_once_with_select(
    graph: GraphEmulator, tenant: Tenant
) -> None:
    all_eng = group_id(tenant, "All Engineering")
    qp = TransitiveMembersRequestBuilder.TransitiveMembersRequestBuilderGetQueryParameters(
        select=["id", "displayName", "mail", "accountEnabled"], top=999
    )

    async def read(c: GraphServiceClient) -> Any:
        return await c.groups.by_group_id(all_eng).transitive_members.get(
            RequestConfiguration(query_parameters=qp)
        )

    page = sdk(graph.base_url, read)
    ids = [m.id for m in page.value]
    assert len(ids) == len(set(ids))  # leads are also in the nested groups, yet appear once
    nested = {m.display_name for m in page.value if isinstance(m, Group)}
    assert nested == {"Platform Engineering", "Product Engineering"}
    expected_users = set(members_in_file("Platform Engineering")) | set(
        members_in_file("Product Engineering")
    )
    expected_users |= {m for m in members_in_file("All Engineering") if tenant.get(m, "user")}
    assert {m.id for m in page.value if isinstance(m, User)} == expected_users
    users = [m for m in page.value if isinstance(m, User)]
    assert all(u.mail and u.account_enabled is not None for u in users)
    assert all(u.user_principal_name is None for u in users)  # not selected

    body = raw(graph, f"/groups/{all_eng}/transitiveMembers?$select=id,mail&$top=999").json()
    assert {tuple(sorted(item)) for item in body["value"]} <= {
        ("@odata.type", "id", "mail"),  # users, and groups (groups have a mail property too)
    }


def test_transitive_members_survive_a_membership_cycle(graph: GraphEmulator, tenant: Tenant) -> None:
    platform, all_eng = group_id(tenant, "Platform Engineering"), group_id(tenant, "All Engineering")
    tenant.add_member(platform, all_eng)  # All Engineering > Platform > All Engineering
    body = raw(graph, f"/groups/{platform}/transitiveMembers?$select=id&$top=999").json()
    ids = [item["id"] for item in body["value"]]
    assert len(ids) == len(set(ids)) and all_eng in ids and platform not in ids
    assert group_id(tenant, "Product Engineering") in ids


def test_members_are_polymorphic_objects(graph: GraphEmulator, tenant: Tenant) -> None:
    support = group_id(tenant, "Customer Support")
    page = sdk(graph.base_url, lambda c: c.groups.by_group_id(support).members.get())
    kinds = Counter(type(m).__name__ for m in page.value)
    assert kinds == {"User": 15, "Device": 1, "OrgContact": 1, "ServicePrincipal": 1}
    by_type = {type(m): m for m in page.value}
    assert by_type[Device].display_name == "KIOSK-LOBBY-01"
    assert by_type[OrgContact].mail == "helpdesk@fabrikam.com"
    assert by_type[ServicePrincipal].display_name == "Support Triage Bot"
    assert all(m.odata_type.startswith("#microsoft.graph.") for m in page.value)


def test_user_default_properties_exclude_account_enabled(graph: GraphEmulator, tenant: Tenant) -> None:
    guest = user_id(tenant, "Alice (Fabrikam)")
    body = raw(graph, "/users/alice_fabrikam.com%23EXT%23@contoso.onmicrosoft.com").json()
    assert body["id"] == guest and body["mail"] == "alice@fabrikam.com"
    assert "accountEnabled" not in body and "userType" not in body
    selected = raw(graph, f"/users/{guest}", params={"$select": "id,userType,accountEnabled"}).json()
    assert (selected["userType"], selected["accountEnabled"]) == ("Guest", True)
    assert "mail" not in selected


def test_query_options_are_decoded_whether_encoded_or_not(graph: GraphEmulator, tenant: Tenant) -> None:
    # httpx params= sends %24select=id%2Cmail; the SDK sends $select=id,mail literally
    encoded = raw(graph, "/users", params={"$select": "id,mail", "$filter": "startswith(displayName,'sam ')"})
    literal = raw(graph, "/users?$select=id,mail&$filter=startswith%28displayName%2C%27sam%20%27%29")
    assert (
        encoded.json()["value"]
        == literal.json()["value"]
        == [{"id": user_id(tenant, "Sam Rivera"), "mail": None}]
    )


@pytest.mark.parametrize("permanent", [False, True])
def test_a_deleted_user_answers_as_graph_does(graph: GraphEmulator, tenant: Tenant, permanent: bool) -> None:
    gone, kept = user_id(tenant, "Sam Rivera"), user_id(tenant, "Dana Whitfield")
    tenant.delete_user(gone, permanent=permanent)
    missing = raw(graph, f"/users/{gone}?$select=id,accountEnabled")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"
    listed = raw(graph, "/users", params={"$select": "id,accountEnabled", "$filter": f"id in ('{gone}','{kept}')"})
    assert listed.json()["value"] == [{"id": kept, "accountEnabled": False}]  # no trace of the deleted one


def test_an_in_clause_takes_at_most_15_values(graph: GraphEmulator, tenant: Tenant) -> None:
    users = [u.id for u in tenant.of_kind("user")]
    ids = (users * 16)[:16]  # repeats are values too

    def ask(values: list[str]) -> httpx.Response:
        listed = ",".join(f"'{v}'" for v in values)
        return raw(graph, "/users", params={"$select": "id", "$filter": f"id in ({listed})"})

    fifteen = ask(ids[:15])
    assert fifteen.status_code == 200
    assert {u["id"] for u in fifteen.json()["value"]} == set(ids[:15])
    sixteen = ask(ids)
    assert sixteen.status_code == 400
    assert sixteen.json()["error"]["code"] == "Request_UnsupportedQuery"
    assert "at most 15" in sixteen.json()["error"]["message"]


# ---- paging ----------------------------------------------------------------------------------------


def test_default_page_is_100_and_cast_next_link_reaches_the_rest(
    graph: GraphEmulator, tenant: Tenant
) -> None:
    platform = group_id(tenant, "Platform Engineering")
    qp = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(select=["id", "mail"])

    async def read(c: GraphServiceClient) -> list[Any]:
        builder = c.groups.by_group_id(platform).members.graph_user
        return await follow(await builder.get(RequestConfiguration(query_parameters=qp)), builder)

    pages = sdk(graph.base_url, read)
    assert [len(p.value) for p in pages] == [100, 30]
    assert "/members/microsoft.graph.user?" in pages[0].odata_next_link  # Graph spells the cast in full
    assert any(r.path.endswith("/members/graph.user") for r in graph.server.requests())  # the SDK's spelling
    ids = [u.id for p in pages for u in p.value]
    assert sorted(ids) == sorted(members_in_file("Platform Engineering"))


def test_top_999_is_one_page_and_out_of_range_top_is_400(graph: GraphEmulator, tenant: Tenant) -> None:
    platform = group_id(tenant, "Platform Engineering")
    page = raw(graph, f"/groups/{platform}/members?$top=999").json()  # raw: 130 SDK models cost ~1 s
    assert len(page["value"]) == 130 and "@odata.nextLink" not in page

    for bad in (1000, 0):
        qp = MembersRequestBuilder.MembersRequestBuilderGetQueryParameters(top=bad)
        conf = RequestConfiguration(query_parameters=qp)
        with pytest.raises(ODataError) as err:
            sdk(graph.base_url, lambda c, conf=conf: c.groups.by_group_id(platform).members.get(conf))
        assert (err.value.response_status_code, err.value.error.code) == (400, "Request_BadRequest")


def test_page_size_cap_splits_pages_even_at_top_999(tenant: Tenant) -> None:
    with GraphEmulator(tenant, page_size_cap=50) as graph:
        body = raw(graph, f"/groups/{group_id(tenant, 'Platform Engineering')}/members?$top=999").json()
    assert len(body["value"]) == 50 and "$top=999" in body["@odata.nextLink"]


def test_empty_pages_still_carry_a_next_link(graph: GraphEmulator, tenant: Tenant) -> None:
    sales = group_id(tenant, "Sales")
    graph.empty_page_every = 2
    qp = MembersRequestBuilder.MembersRequestBuilderGetQueryParameters(top=10)

    async def read(c: GraphServiceClient) -> list[Any]:
        builder = c.groups.by_group_id(sales).members
        return await follow(await builder.get(RequestConfiguration(query_parameters=qp)), builder)

    pages = sdk(graph.base_url, read)
    assert [len(p.value) for p in pages] == [10, 0, 10, 0, 6]
    assert sorted(m.id for p in pages for m in p.value) == sorted(members_in_file("Sales"))


def test_break_paging_fails_the_second_page(graph: GraphEmulator, tenant: Tenant) -> None:
    platform = group_id(tenant, "Platform Engineering")
    graph.break_paging_for = {platform}
    first = raw(graph, f"/groups/{platform}/transitiveMembers")
    assert first.status_code == 200 and len(first.json()["value"]) == 100
    second = request("GET", first.json()["@odata.nextLink"], headers={"Authorization": f"Bearer {TOKEN}"})
    assert second.status_code == 500 and second.json()["error"]["code"] == "generalException"


# ---- errors, auth, faults, throttling --------------------------------------------------------------


def test_unknown_group_is_404_with_graph_error_shape(graph: GraphEmulator) -> None:
    with pytest.raises(ODataError) as err:
        sdk(graph.base_url, lambda c: c.groups.by_group_id(str(uuid.uuid4())).members.get())
    assert err.value.response_status_code == 404
    assert err.value.error.code == "Request_ResourceNotFound"
    assert err.value.error.inner_error.request_id
    assert raw(graph, "/groups/x/owners/nope").json()["error"]["code"] == "BadRequest"


def test_wrong_token_is_401(graph: GraphEmulator, tenant: Tenant) -> None:
    with pytest.raises(ODataError) as err:
        sdk(graph.base_url, lambda c: c.groups.by_group_id(group_id(tenant, "Sales")).get(), token="stolen")
    assert (err.value.response_status_code, err.value.error.code) == (401, "InvalidAuthenticationToken")
    assert request("GET", f"{graph.base_url}/groups").status_code == 401  # no Authorization header at all


def test_injected_429_with_retry_after_is_retried_by_the_sdk(tenant: Tenant) -> None:
    faults = ScriptedFaults().add("GET", r"/groups/[^/]+/members$", Fault("status", 429, retry_after="1"))
    sales = group_id(tenant, "Sales")
    with GraphEmulator(tenant, faults=faults) as graph:
        started = time.monotonic()
        page = sdk(graph.base_url, lambda c: c.groups.by_group_id(sales).members.get())
        elapsed = time.monotonic() - started
        log = [r.status for r in graph.server.requests() if r.path.endswith(f"/groups/{sales}/members")]
    assert len(page.value) == 26
    assert log == [429, 200]
    assert elapsed >= 1.0  # the SDK honoured Retry-After: 1


def test_injected_503_has_graph_error_body(tenant: Tenant) -> None:
    faults = ScriptedFaults().add("GET", r"/users$", Fault("status", 503, retry_after="7"))
    with GraphEmulator(tenant, faults=faults) as graph:
        response = raw(graph, "/users")
    assert response.status_code == 503 and response.headers["Retry-After"] == "7"
    error = response.json()["error"]
    assert error["code"] == "serviceNotAvailable" and set(error["innerError"]) >= {"date", "request-id"}


def test_resource_unit_budget_throttles_with_integer_retry_after(tenant: Tenant) -> None:
    sales = group_id(tenant, "Sales")
    transitive = f"/groups/{sales}/transitiveMembers"
    # 5 RU refilling at 5 RU/s: one 5 RU call empties the bucket, the next must wait a second
    with GraphEmulator(tenant, throttle=ResourceUnitBudget(quota=5, window_seconds=1.0)) as graph:
        first = raw(graph, transitive)  # 5 RU
        second = raw(graph, f"{transitive}?$select=id&$top=10")  # 5 - 1 ($select) - 1 ($top < 20) = 3 RU
        assert (first.status_code, first.headers["x-ms-resource-unit"]) == (200, "5")
        assert (second.status_code, second.headers["x-ms-resource-unit"]) == (429, "3")
        assert second.json()["error"]["code"] == "TooManyRequests"
        assert second.headers["Retry-After"] == "1"
        assert graph.resource_units_used == 5  # throttled requests are not charged

        async def drained_then_sdk(c: GraphServiceClient) -> Any:
            while raw(graph, transitive).status_code == 200:
                pass
            return await c.groups.by_group_id(sales).transitive_members.get()

        charged_before = graph.resource_units_used
        page = sdk(graph.base_url, drained_then_sdk)
        statuses = [r.status for r in graph.server.requests()]
        assert len(page.value) == 26
        assert statuses[-3:] == [429, 429, 200]  # drained, then the SDK's 429 and its retry
        after_first = statuses.count(200) - 1  # the drain loop's successes and the SDK's retry
        assert graph.resource_units_used == charged_before + 5 * after_first


# ---- delta ----------------------------------------------------------------------------------------


async def delta_round(c: GraphServiceClient, link: str | None, **query: Any) -> tuple[list[list[Any]], str]:
    """One delta round; returns the pages' items and the deltaLink (graph.md §3.4)."""
    if link:
        resp = await c.groups.delta.with_url(link).get()
    else:
        qp = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(**query)
        resp = await c.groups.delta.get(RequestConfiguration(query_parameters=qp))
    pages = [resp.value]
    while resp.odata_next_link:
        assert resp.odata_delta_link is None
        resp = await c.groups.delta.with_url(resp.odata_next_link).get()
        pages.append(resp.value)
    assert resp.odata_delta_link
    return pages, resp.odata_delta_link


def test_groups_delta_initial_round_then_incremental_changes(graph: GraphEmulator, tenant: Tenant) -> None:
    graph.delta_page_size = 60  # Platform Engineering's 130 members spill over several pages
    sales, legal = group_id(tenant, "Sales"), group_id(tenant, "Legal")
    dana, newcomer = user_id(tenant, "Dana Whitfield"), members_in_file("Platform Engineering")[0]

    async def scenario(c: GraphServiceClient) -> tuple[Any, ...]:
        initial, link = await delta_round(c, None, select=["displayName", "members"])
        tenant.remove_member(sales, dana)
        tenant.add_member(sales, newcomer)
        tenant.rename_group(legal, "Legal & Compliance")
        tenant.disable_user(newcomer)  # a user property: not a groups/delta change
        changed, link2 = await delta_round(c, link)
        quiet, _ = await delta_round(c, link2)
        return initial, changed, quiet

    initial, changed, quiet = sdk(graph.base_url, scenario)
    assert len(initial) > 2
    merged: dict[str, list[str]] = {}
    pages_per_group: Counter[str] = Counter()
    for page in initial:
        for group in page:
            pages_per_group[group.id] += 1
            merged.setdefault(group.id, []).extend(
                str(m["id"]) for m in group.additional_data.get("members@delta", [])
            )
    assert pages_per_group[group_id(tenant, "Platform Engineering")] >= 2
    assert len(merged) == 15
    for name in ("Platform Engineering", "All Engineering", "Customer Support", "Facilities"):
        assert sorted(merged[group_id(tenant, name)]) == sorted(members_in_file(name))

    items = {g.id: g for page in changed for g in page}
    assert set(items) == {sales, legal}
    # kiota turns GUID-looking strings in additional_data into uuid.UUID
    refs = {str(m["id"]): m for m in items[sales].additional_data["members@delta"]}
    assert refs[dana]["@removed"] == {"reason": "deleted"}
    assert "@removed" not in refs[newcomer] and refs[newcomer]["@odata.type"] == "#microsoft.graph.user"
    assert items[legal].display_name == "Legal & Compliance"
    assert quiet == [[]]
    assert any(r.path.endswith("/groups/delta()") for r in graph.server.requests())


def test_delta_latest_with_id_filter_reports_only_later_changes(graph: GraphEmulator, tenant: Tenant) -> None:
    sales, legal, hr = (group_id(tenant, n) for n in ("Sales", "Legal", "People & HR"))
    latest = (f"{graph.base_url}/groups/delta?$select=displayName,members"
              f"&$filter=id eq '{sales}' or id eq '{legal}'&$deltatoken=latest")  # fmt: skip

    async def scenario(c: GraphServiceClient) -> tuple[Any, Any]:
        start, link = await delta_round(c, latest)
        tenant.delete_group(legal)
        tenant.rename_group(hr, "People")  # outside the filter
        changed, _ = await delta_round(c, link)
        return start, changed

    start, changed = sdk(graph.base_url, scenario)
    assert start == [[]]
    [[removed]] = changed
    assert removed.id == legal and removed.additional_data["@removed"] == {"reason": "changed"}


def test_users_delta_reports_disable_and_deletes(graph: GraphEmulator, tenant: Tenant) -> None:
    ids = members_in_file("Finance")[:4]
    latest = f"{graph.base_url}/users/delta?$select=displayName,mail,accountEnabled&$deltatoken=latest"

    async def scenario(c: GraphServiceClient) -> list[Any]:
        first = await c.users.delta.with_url(latest).get()
        assert first.value == [] and first.odata_delta_link
        tenant.disable_user(ids[0])
        tenant.delete_user(ids[1])
        tenant.remove_user(ids[2])
        tenant.update_user(ids[3], jobTitle="CFO")  # not selected: not reported
        return (await c.users.delta.with_url(first.odata_delta_link).get()).value

    items = {u.id: u for u in sdk(graph.base_url, scenario)}
    assert set(items) == set(ids[:3])
    assert items[ids[0]].account_enabled is False
    assert items[ids[1]].additional_data["@removed"] == {"reason": "changed"}
    assert items[ids[2]].additional_data["@removed"] == {"reason": "deleted"}


def test_expired_delta_token_is_sync_state_not_found_and_reset_is_410(graph: GraphEmulator) -> None:
    async def take_link(c: GraphServiceClient) -> str:
        return (await delta_round(c, None, select=["displayName"]))[1]

    link = sdk(graph.base_url, take_link)
    graph.force_delta_reset()
    with pytest.raises(ODataError) as err:
        sdk(graph.base_url, lambda c: c.groups.delta.with_url(link).get())
    assert err.value.response_status_code == 410
    assert "$select=displayName" in err.value.response_headers["location"]  # the token's own query
    graph.expire_delta_tokens()
    with pytest.raises(ODataError) as err:
        sdk(graph.base_url, lambda c: c.groups.delta.with_url(link).get())
    assert (err.value.response_status_code, err.value.error.code) == (400, "syncStateNotFound")

    graph.force_delta_reset()
    gone = request("GET", f"{graph.base_url}/groups/delta()?$select=displayName",
                   headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert gone.status_code == 410
    location = gone.headers["Location"]
    assert "$deltatoken=" in location and "$select=displayName" in location

    async def restart(c: GraphServiceClient) -> tuple[list[list[Any]], str]:
        return await delta_round(c, location)

    pages, _ = sdk(graph.base_url, restart)
    assert sum(len(p) for p in pages) == 15  # a full round again


# ---- tenant file and CLI ---------------------------------------------------------------------------


def test_demo_tenant_shape_and_json_round_trip(tenant: Tenant) -> None:
    assert len(tenant.of_kind("user")) == 250
    assigned = {a.principal_id for a in tenant.assignments if a.principal_type == "Group"}
    assert len(assigned) == 14 and group_id(tenant, "Facilities") not in assigned
    assert sum(a.principal_type == "User" for a in tenant.assignments) == 2
    assert len(members_in_file("Platform Engineering")) > 100
    users = tenant.of_kind("user")
    assert [u.get("userType") for u in users].count("Guest") == 1
    assert sum(u.get("accountEnabled") is False for u in users) == 1
    assert sum(u.get("mail") is None for u in users) == 1
    roles = {r["value"] for r in tenant.app.get("appRoles")}
    assert roles == {"proxy_admin", "proxy_admin_viewer", "internal_user", "Reports.Read"}
    by_role = {tenant.app_role_id(value): value for value in roles}
    given = Counter(by_role.get(a.app_role_id, "default") for a in tenant.assignments)
    assert given == {"default": 12, "proxy_admin": 1, "proxy_admin_viewer": 1, "internal_user": 1, "Reports.Read": 1}
    again = Tenant.from_dict(json.loads(tenant.to_json()))
    assert again.to_json() == tenant.to_json() == DEMO.read_text()


def test_cli_prints_base_url_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulators.graph", "--tenant", str(DEMO), "--token", "cli-token"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1.0")
        response = request("GET", f"{base_url}/users?$top=1", headers={"Authorization": "Bearer cli-token"})
        assert response.status_code == 200 and len(response.json()["value"]) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


# ---- $batch ---------------------------------------------------------------------------------------


def test_batch_through_the_sdk_adapter_with_inner_429_and_failed_dependency(tenant: Tenant) -> None:
    sales, legal = group_id(tenant, "Sales"), group_id(tenant, "Legal")
    faults = ScriptedFaults().add("GET", rf"/groups/{legal}/members$", Fault("status", 429, retry_after="3"))
    requests = [
        {"id": "1", "method": "GET", "url": f"/groups/{sales}/members?$select=id&$top=999"},
        {"id": "2", "method": "GET", "url": f"groups/{legal}/members?$select=id"},
        {"id": "3", "method": "GET", "url": f"/groups/{legal}", "dependsOn": ["2"]},
        {"id": "4", "method": "GET", "url": "/users/$count", "headers": {"ConsistencyLevel": "eventual"}},
    ]

    async def post(c: GraphServiceClient) -> Any:
        info = RequestInformation()
        info.http_method = Method.POST
        info.url = f"{c.request_adapter.base_url}/$batch"
        info.headers.try_add("Content-Type", "application/json")
        info.content = json.dumps({"requests": requests}).encode()
        return json.loads(await c.request_adapter.send_primitive_async(info, "bytes", {}))

    with GraphEmulator(tenant, faults=faults) as graph:
        answer = sdk(graph.base_url, post)
        charged = graph.resource_units_used
    by_id = {r["id"]: r for r in answer["responses"]}
    assert [r["id"] for r in answer["responses"]] != ["1", "2", "3", "4"]  # order is not guaranteed
    assert by_id["1"]["status"] == 200 and len(by_id["1"]["body"]["value"]) == 26
    assert by_id["1"]["headers"]["x-ms-resource-unit"] == "2"
    assert (by_id["2"]["status"], by_id["2"]["headers"]["Retry-After"]) == (429, "3")  # not retried inside
    assert by_id["3"]["status"] == 424
    assert (by_id["4"]["status"], by_id["4"]["body"]) == (200, "250")
    assert charged == 2 + 1  # only the served inner requests cost RU


def test_batch_limits(graph: GraphEmulator) -> None:
    def post(requests: list[dict[str, Any]]) -> httpx.Response:
        return request("POST", f"{graph.base_url}/$batch", json={"requests": requests},
                       headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip

    one = {"method": "GET", "url": "/users?$top=1"}
    assert post([{"id": str(i), **one} for i in range(21)]).status_code == 400
    assert post([{"id": "a", **one}, {"id": "A", **one}]).status_code == 400  # ids are case-insensitive
    assert post([{"id": str(i), **one} for i in range(20)]).status_code == 200

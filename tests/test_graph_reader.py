"""The Graph reader with the real msgraph-sdk against the Graph emulator over HTTP."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from emulators.graph.tenant import Tenant
from emulators.http_base import Fault, FaultInjector, Request, ScriptedFaults
from sync_core.errors import SourceError
from sync_core.graph.delta import DeltaReader
from sync_core.state import LocalStateBackend
from tests.graph_reads import read, reader
from tests.tenants import oid


def test_reads_assigned_groups_with_flattened_enabled_and_disabled_user_members(graph) -> None:
    directory, _ = read(graph)
    assert set(directory.groups) == {oid("Engineering"), oid("Operations"), oid("Everyone")}
    eng = directory.groups[oid("Engineering")]
    assert eng.display_name == "Engineering" and eng.known
    expected = {oid(f"eng{i}") for i in range(6)} | {oid("disabled"), oid("guest"), oid("nested0"), oid("nested1")}
    assert eng.member_ids == expected  # no device, contact, service principal or nested group
    assert directory.users[oid("disabled")].enabled is False
    assert directory.users[oid("guest")].email == "alice_fabrikam.com#ext#@contoso.onmicrosoft.com"
    assert directory.users[oid("eng0")].email == "eng0@contoso.com"  # lower-cased UPN
    assert directory.direct_user_ids == {oid("direct")}
    assert directory.assignments_complete


def test_direct_members_only_and_mail_attribute(graph) -> None:
    directory, _ = read(graph, nested=False, email="mail")
    assert oid("nested0") not in directory.groups[oid("Engineering")].member_ids
    assert directory.users[oid("guest")].email == "alice@fabrikam.com"
    assert directory.users[oid("nomail")].email == "nomail@contoso.com"  # falls back to the UPN


def test_pages_are_followed_to_the_end_including_empty_ones(graph) -> None:
    graph.page_size_cap = 40
    graph.empty_page_every = 2
    directory, _ = read(graph)
    assert len(directory.groups[oid("Everyone")].member_ids) == 150
    member_pages = [r for r in graph.server.requests() if r.path.endswith(f"{oid('Everyone')}/transitiveMembers")]
    assert len(member_pages) >= 5


def test_a_broken_page_makes_the_group_unknown_not_smaller(graph) -> None:
    graph.page_size_cap = 40
    graph.break_paging_for = {oid("Everyone")}
    directory, _ = read(graph)
    everyone = directory.groups[oid("Everyone")]
    assert everyone.member_ids is None and everyone.error
    assert directory.groups[oid("Engineering")].known


def test_a_group_deleted_during_the_run_is_unknown(graph) -> None:
    graph.server.faults = ScriptedFaults().add("GET", f"/groups/{oid('Operations')}/", Fault("status", 404))
    directory, _ = read(graph)
    assert directory.groups[oid("Operations")].member_ids is None
    assert "404" in (directory.groups[oid("Operations")].error or "")


def test_throttling_is_retried_honouring_retry_after(graph) -> None:
    graph.server.faults = ScriptedFaults().add("GET", "/transitiveMembers", Fault("status", 429, retry_after="1"), 2)
    directory, _ = read(graph)
    assert all(g.known for g in directory.groups.values())
    assert [r.status for r in graph.server.requests() if r.status == 429] == [429, 429]


def test_direct_users_are_read_15_to_a_request_and_a_deleted_one_is_left_out(graph, tenant, caplog) -> None:
    direct = [tenant.add_user(f"Direct {i}", f"direct{i}@contoso.com") for i in range(40)]
    for user in direct:
        tenant.assign(user)
    gone = direct[7]
    graph.server.faults = DeleteOnFirstUserRead(tenant, gone)
    with caplog.at_level("WARNING"):
        directory, _ = read(graph)
    user_reads = [r for r in graph.server.requests() if r.path.endswith("/users")]
    assert len(user_reads) == 3  # 41 directly assigned users, 15 to a request
    assert directory.direct_user_ids == {oid("direct"), *direct} - {gone}
    assert directory.users[direct[0]].email == "direct0@contoso.com"
    assert gone in caplog.text and "not found" in caplog.text


class DeleteOnFirstUserRead(FaultInjector):
    """Deletes a user just before the first user read arrives: deleted between the two reads."""

    def __init__(self, tenant: Tenant, user_id: str) -> None:
        self.tenant, self.user_id = tenant, user_id

    def decide(self, request: Request) -> Fault | None:
        if request.path.endswith("/users") and self.tenant.get(self.user_id) is not None:
            self.tenant.remove_user(self.user_id)
        return None


class FailLaterPages(FaultInjector):
    """Serves the first page of the assignment list, then fails every later one."""

    def __init__(self) -> None:
        self.served = 0

    def decide(self, request: Request) -> Fault | None:
        if "appRoleAssignedTo" not in request.path:
            return None
        self.served += 1
        return Fault("status", 500) if self.served > 1 else None


def test_an_assignment_list_that_breaks_off_is_incomplete(graph) -> None:
    graph.page_size_cap = 2
    graph.server.faults = FailLaterPages()
    directory, _ = read(graph)
    assert not directory.assignments_complete
    assert len(directory.groups) <= 2


def test_an_unreadable_assignment_list_fails_the_run(graph) -> None:
    graph.server.faults = ScriptedFaults().add("GET", "appRoleAssignedTo", Fault("status", 403), 10)
    with pytest.raises(SourceError, match="assignments"):
        read(graph)


# ---- users_by_id: the leaver lookups ----------------------------------------------------------------


def test_users_by_id_answers_each_user_as_graph_has_it_now_and_none_for_deleted(graph, tenant) -> None:
    soft, hard = oid("eng4"), oid("eng5")
    tenant.disable_user(oid("eng0"))
    tenant.update_user(oid("eng1"), mail="renamed@contoso.com")
    tenant.delete_user(soft)
    tenant.delete_user(hard, permanent=True)
    never = "0f8fad5b-d9cb-469f-a165-70867728950e"
    asked = [oid("eng0"), oid("eng1"), oid("guest"), soft, hard, never, oid("eng2").upper(), "not-a-guid"]
    found = asyncio.run(reader(graph, email="mail").users_by_id(asked))
    assert set(found) == set(asked)
    assert found[oid("eng0")].enabled is False
    assert found[oid("eng1")].email == "renamed@contoso.com"  # per SYNC_USER_EMAIL_ATTRIBUTE
    assert found[oid("guest")].email == "alice@fabrikam.com" and found[oid("guest")].enabled
    assert found[oid("eng2").upper()].id == oid("eng2")
    assert found[soft] is None and found[hard] is None and found[never] is None and found["not-a-guid"] is None
    # One filtered list (no question for a non-GUID), then Graph's own 404 for each id it left out.
    paths = [r.path for r in graph.server.requests()]
    assert paths[0] == "/v1.0/users" and sorted(paths[1:]) == sorted(f"/v1.0/users/{u}" for u in (soft, hard, never))


def test_users_by_id_reads_15_to_a_request(graph, tenant) -> None:
    ids = [oid(f"big{i}") for i in range(40)]
    found = asyncio.run(reader(graph).users_by_id(ids))
    assert all(found[i] is not None and found[i].id == i for i in ids)
    assert len(graph.server.requests()) == 3


@pytest.mark.parametrize("fault", [Fault("status", 403), Fault("status", 500), Fault("drop")])
def test_users_by_id_raises_when_graph_cannot_answer_never_says_deleted(graph, fault) -> None:
    ids = [oid(f"big{i}") for i in range(40)]
    graph.server.faults = ScriptedFaults().add("GET", "/users$", fault, 1)  # one of three requests fails
    with pytest.raises(SourceError, match="cannot read users"):
        asyncio.run(reader(graph).users_by_id(ids))


def test_the_delta_reader_answers_users_by_id_too(graph, tenant, tmp_path) -> None:
    tenant.remove_user(oid("ops1"))
    delta = DeltaReader(reader(graph), LocalStateBackend(tmp_path), full_every=timedelta(hours=1))
    found = asyncio.run(delta.users_by_id([oid("ops0"), oid("ops1")]))
    assert found[oid("ops0")].email == "ops0@contoso.com" and found[oid("ops1")] is None

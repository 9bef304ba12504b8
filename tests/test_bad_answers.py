"""Bad answers cost nobody access: Graph pages and LiteLLM lists of every shape, served over HTTP
by a tiny local server to the REAL readers (msgraph-sdk, httpx). The result is the truth or a
failure that names the route; never fewer members, never a "deleted" user Graph did not 404.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulators.http_base import EmulatorServer, Request, Response
from sync_core.errors import SourceError, TargetError
from sync_core.graph.client import build_graph_client
from sync_core.graph.delta import DeltaReader
from sync_core.graph.reader import USER_TYPE, GraphReader, GraphSource
from sync_core.litellm.client import LiteLLMClient, UserChange
from sync_core.settings import Settings
from sync_core.state import LocalStateBackend
from tests.conftest import MASTER_KEY, sync_env
from tests.tenants import APP_ID, oid

GROUP = oid("shapes-group")
HTML = "<html><head><title>Sign in</title></head>\n<body>\nplease log in\n</body></html>"
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass
class Served:
    """Answers by path (and page number), changed per example; anything else is Graph's 404."""

    pages: dict[str, list[Callable[[str], Response]]] = field(default_factory=dict)

    def handle(self, request: Request) -> Response:
        number = int(request.query.get("$skiptoken") or request.query.get("page") or 0)
        answers = self.pages.get(request.path)
        if answers is None:
            return Response(404, {"error": {"code": "Request_ResourceNotFound", "message": "not found"}})
        number = number - 1 if "page" in request.query else number  # LiteLLM counts from 1
        if not 0 <= number < len(answers):
            return Response(400, {"error": {"code": "BadRequest", "message": "bad page"}})
        return answers[number](request.raw_target)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Served, str]]:
    state = Served()
    with EmulatorServer(state.handle) as server:
        yield state, server.origin


# ---------------------------------------------------------------- page shapes

def user(i: int) -> dict[str, Any]:
    return {"@odata.type": USER_TYPE, "id": oid(f"shape-user-{i}"), "displayName": f"U{i}",
            "userPrincipalName": f"u{i}@contoso.com", "mail": f"u{i}@contoso.com", "accountEnabled": i % 3 != 0}


# What a page can go wrong with. Harmless ones leave the members as they are.
HARMLESS = {
    "none": lambda page: page,
    "extra keys": lambda page: {**page, "@odata.context": "x", "unknown": [1, {"a": None}]},
    "a device member": lambda page: {**page, "value": [*page["value"], {"@odata.type": "#microsoft.graph.device",
                                                                        "id": oid("device")}]},
    "null fields": lambda page: {**page, "value": [{**i, "mail": None, "displayName": None} for i in page["value"]]},
}
HARMFUL = {
    "no value": lambda page: {k: v for k, v in page.items() if k != "value"},
    "value null": lambda page: {**page, "value": None},
    "value a string": lambda page: {**page, "value": "[]"},
    "value an object": lambda page: {**page, "value": {}},
    "an item not an object": lambda page: {**page, "value": [*page["value"], "x"]},
    "a user without id": lambda page: {**page, "value": [*page["value"], {"@odata.type": USER_TYPE}]},
    "a numeric id": lambda page: {**page, "value": [*page["value"], {"@odata.type": USER_TYPE, "id": 7}]},
    "an item without type": lambda page: {**page, "value": [*page["value"], {"id": oid("typeless")}]},
    "accountEnabled a string": lambda page: {**page, "value": [*page["value"], {**user(99),
                                                                               "accountEnabled": "false"}]},
    "mail a number": lambda page: {**page, "value": [*page["value"], {**user(98), "mail": 5}]},
    "nextLink empty": lambda page: {**page, "@odata.nextLink": ""},
    "nextLink elsewhere": lambda page: {**page, "@odata.nextLink": "https://graph.evil.example/v1.0/x"},
    "nextLink a number": lambda page: {**page, "@odata.nextLink": 2},
    "a list": lambda page: [page],
}
RAW = {  # bodies that are not a JSON object at all
    "html": (HTML, "text/html"),
    "truncated": ('{"value": [{"id": "', "application/json"),
    "empty": ("", "application/json"),
}


def graph_page(body: Any) -> Callable[[str], Response]:
    if isinstance(body, tuple):
        text, kind = body
        return lambda target: Response(200, text.encode(), {"Content-Type": kind})
    return lambda target: Response(200, body)


@st.composite
def member_pages(draw: st.DrawFn, origin: str, relation: str) -> tuple[set[str], list[Any], bool, bool]:
    """(the members, the pages as served, whether a harmful change was made, whether a link was cut)."""
    count = draw(st.integers(1, 7))
    members = [user(i) for i in range(count)]
    cuts = sorted(draw(st.sets(st.integers(1, max(count, 1)), max_size=2)))
    slices = [members[a:b] for a, b in zip([0, *cuts], [*cuts, count], strict=True)] or [[]]
    path = f"/v1.0/groups/{GROUP}/{relation}"
    pages: list[Any] = []
    harmful = cut = False
    for number, items in enumerate(slices):
        page: dict[str, Any] = {"value": items}
        if number + 1 < len(slices):
            link = f"{origin}{path}?$select=id&$top=999&$skiptoken={number + 1}"
            if draw(st.booleans()) and draw(st.booleans()):
                link, cut = link[:draw(st.integers(0, len(link) - 1))], True  # a truncated nextLink
            page["@odata.nextLink"] = link
        kind = draw(st.sampled_from(["harmless", "harmless", "harmful", "harmful", "raw"]))
        if kind == "harmless":
            pages.append(HARMLESS[draw(st.sampled_from(sorted(HARMLESS)))](page))
        elif kind == "harmful":
            pages.append(HARMFUL[draw(st.sampled_from(sorted(HARMFUL)))](page))
        else:
            pages.append(RAW[draw(st.sampled_from(sorted(RAW)))])
        harmful |= kind != "harmless"
    return {m["id"] for m in members}, pages, harmful, cut


def graph_reader(origin: str) -> GraphReader:
    config = Settings.from_env(sync_env(f"{origin}/v1.0", "http://127.0.0.1:9"))
    return GraphReader(build_graph_client(config), GraphSource(base_url=f"{origin}/v1.0", app_id=APP_ID))


ASSIGNMENTS = {"value": [{"principalId": GROUP, "principalType": "Group", "principalDisplayName": "Shapes",
                          "appRoleId": "00000000-0000-0000-0000-000000000000"}]}


@EXAMPLES
@given(data=st.data(), incremental=st.booleans())
def test_a_group_read_is_the_members_or_a_named_failure_whatever_the_pages(served, tmp_path, data,
                                                                           incremental: bool) -> None:
    state, origin = served
    relation = "members" if incremental else "transitiveMembers"  # the delta reader reads direct members
    members, pages, harmful, cut = data.draw(member_pages(origin, relation))
    state.pages = {f"/v1.0/servicePrincipals(appId='{APP_ID}')/appRoleAssignedTo": [graph_page(ASSIGNMENTS)],
                   f"/v1.0/groups/{GROUP}/{relation}": [graph_page(p) for p in pages]}
    reader: GraphReader | DeltaReader = graph_reader(origin)
    if incremental:  # its first read is a full one (delta links answer 404 here: it reads on without them)
        reader = DeltaReader(reader, LocalStateBackend(tmp_path / data.draw(st.uuids()).hex),
                             full_every=timedelta(hours=1))
    group = asyncio.run(reader.read()).groups[GROUP]
    if group.member_ids is None:
        assert group.error and "\n" not in group.error
        assert harmful or cut, f"a clean read failed: {group.error}"
        if harmful and not cut:
            assert relation in group.error, group.error  # the route is named
    else:
        assert group.member_ids == members, "never fewer (or other) members"
        assert not harmful, f"a malformed page was taken as members: {pages}"


@pytest.mark.parametrize("incremental", [False, True], ids=["full reader", "delta reader"])
def test_every_malformed_page_shape_makes_the_group_unread(served, tmp_path, incremental: bool) -> None:
    state, origin = served
    relation = "members" if incremental else "transitiveMembers"
    page = {"value": [user(1), user(2)], "@odata.nextLink": f"{origin}/v1.0/groups/{GROUP}/{relation}?$skiptoken=1"}
    for name, shape in [*HARMFUL.items(), *((n, lambda p, raw=raw: raw) for n, raw in RAW.items())]:
        state.pages = {f"/v1.0/servicePrincipals(appId='{APP_ID}')/appRoleAssignedTo": [graph_page(ASSIGNMENTS)],
                       f"/v1.0/groups/{GROUP}/{relation}": [graph_page(page), graph_page(shape({"value": []}))]}
        reader: GraphReader | DeltaReader = graph_reader(origin)
        if incremental:
            reader = DeltaReader(reader, LocalStateBackend(tmp_path / name), full_every=timedelta(hours=1))
        group = asyncio.run(reader.read()).groups[GROUP]
        assert group.member_ids is None and f"/v1.0/groups/{GROUP}/{relation}" in (group.error or ""), \
            (name, group.error)


@EXAMPLES
@given(present=st.sets(st.integers(0, 5)), shape=st.sampled_from(["clean", "left out", *sorted(HARMFUL), *sorted(RAW)]))
def test_a_user_lookup_says_deleted_only_on_graphs_404(served, present: set[int], shape: str) -> None:
    state, origin = served
    asked = {i: oid(f"shape-user-{i}") for i in range(6)}
    found = [{k: v for k, v in user(i).items() if k != "@odata.type"} for i in sorted(present)]
    page: Any = {"value": found[1:] if shape == "left out" else found}  # "left out": well-formed, one missing
    page = HARMFUL[shape](page) if shape in HARMFUL else RAW.get(shape, page)
    state.pages = {"/v1.0/users": [graph_page(page)],
                   **{f"/v1.0/users/{asked[i]}": [graph_page(user(i))] for i in present}}
    try:
        result = asyncio.run(graph_reader(origin).users_by_id(list(asked.values())))
    except SourceError as exc:
        assert "/v1.0/users" in str(exc) and shape not in ("clean", "left out"), str(exc)
        return
    assert {i for i, user_id in asked.items() if result[user_id] is not None} == present


# ---------------------------------------------------------------- LiteLLM list pages

def team(i: int) -> dict[str, Any]:
    return {"team_id": f"shape-team-{i}", "team_alias": f"T{i}", "metadata": {}, "blocked": False,
            "members_with_roles": [{"user_id": f"u{i}", "user_email": None, "role": "user"}]}


LITELLM_HARMFUL = {
    "no teams": lambda page: {"total_pages": page["total_pages"]},
    "teams null": lambda page: {**page, "teams": None},
    "a numeric team_id": lambda page: {**page, "teams": [*page["teams"], {**team(9), "team_id": 9}]},
    "members not a list": lambda page: {**page, "teams": [{**team(8), "members_with_roles": "x"}]},
    "total_pages a word": lambda page: {**page, "total_pages": "many"},
    "total_pages huge": lambda page: {**page, "total_pages": 10**9},
    "a list": lambda page: [page],
}


@EXAMPLES
@given(count=st.integers(0, 5), per_page=st.integers(1, 3), broken=st.one_of(st.none(), st.integers(0, 2)),
       shape=st.sampled_from(sorted(LITELLM_HARMFUL) + sorted(RAW) + ["extra keys"]))
def test_a_litellm_team_list_is_the_teams_or_a_named_failure(served, count: int, per_page: int,
                                                              broken: int | None, shape: str) -> None:
    state, origin = served
    teams = [team(i) for i in range(count)]
    chunks = [teams[i:i + per_page] for i in range(0, count, per_page)] or [[]]
    pages: list[Any] = [{"teams": chunk, "total_pages": len(chunks)} for chunk in chunks]
    harmful = broken is not None and broken < len(pages) and shape != "extra keys"
    if broken is not None and broken < len(pages):
        page = pages[broken]
        pages[broken] = ({**page, "x": {"y": [1]}} if shape == "extra keys" else
                         RAW[shape] if shape in RAW else LITELLM_HARMFUL[shape](page))
    state.pages = {"/v2/team/list": [graph_page(p) for p in pages]}

    async def read() -> list[str]:
        async with LiteLLMClient(origin, MASTER_KEY, retry_budget=0) as client:
            return sorted(t.team_id for t in await client.list_teams())

    try:
        found = asyncio.run(read())
    except TargetError as exc:
        assert harmful and "/v2/team/list" in str(exc) and "\n" not in str(exc), str(exc)
        return
    assert found == [t["team_id"] for t in teams] and not harmful


def update_row(user_id: str, success: bool = True) -> dict[str, Any]:
    return {"user_id": user_id, "user_email": None, "success": success, "error": None if success else "no",
            "updated_user": None}


BULK_UPDATE_HARMFUL = {  # /user/bulk_update answers that leave some row's outcome unknown
    "no results": lambda rows: {"total_requested": len(rows)},
    "a row short": lambda rows: {"results": rows[:-1]},
    "a row too many": lambda rows: {"results": [*rows, update_row("extra")]},
    "success a word": lambda rows: {"results": [{**rows[0], "success": "maybe"}, *rows[1:]]},
    "success missing": lambda rows: {"results": [{"user_id": rows[0]["user_id"]}, *rows[1:]]},
    "another user's row": lambda rows: {"results": [{**rows[0], "user_id": "someone-else"}, *rows[1:]]},
    "a list": lambda rows: rows,
}


@EXAMPLES
@given(count=st.integers(1, 4), failed=st.sets(st.integers(0, 3)),
       shape=st.sampled_from([None, "extra keys", *sorted(BULK_UPDATE_HARMFUL), *sorted(RAW)]))
def test_a_bulk_user_update_is_one_outcome_per_row_or_a_named_failure(served, count: int, failed: set[int],
                                                                      shape: str | None) -> None:
    state, origin = served
    ids = [f"u{i}" for i in range(count)]
    rows = [update_row(u, i not in failed) for i, u in enumerate(ids)]
    answer: Any = {"results": rows, "total_requested": count, "successful_updates": 0, "failed_updates": 0}
    if shape == "extra keys":
        answer = {**answer, "x": {"y": [1]}, "results": [{**r, "more": 1} for r in rows]}
    elif shape in RAW:
        answer = RAW[shape]
    elif shape is not None:
        answer = BULK_UPDATE_HARMFUL[shape](rows)
    state.pages = {"/user/bulk_update": [graph_page(answer)]}

    async def update() -> list[str | None]:
        async with LiteLLMClient(origin, MASTER_KEY, retry_budget=0) as client:
            changes = [UserChange(u, {"metadata": {"a": 1}}) for u in ids]
            return [r.error for r in await client.update_users(changes)]

    try:
        errors = asyncio.run(update())
    except TargetError as exc:
        assert shape not in (None, "extra keys"), str(exc)
        assert str(exc).startswith("POST /user/bulk_update -> ") and "\n" not in str(exc), str(exc)
        return
    assert shape in (None, "extra keys")
    assert errors == [None if i not in failed else "POST /user/bulk_update -> row: no" for i in range(count)]


@pytest.mark.parametrize("status", [200, 502], ids=["a 200 is no success", "an error page"])
def test_an_html_answer_to_a_write_is_a_failed_write_in_one_line(served, status: int) -> None:
    state, origin = served
    state.pages = {"/team/new": [lambda target: Response(status, HTML.encode(), {"Content-Type": "text/html"})]}

    async def create() -> None:
        async with LiteLLMClient(origin, MASTER_KEY, retry_budget=0) as client:
            await client.create_team("t", "T", {}, {})

    with pytest.raises(TargetError) as caught:
        asyncio.run(create())
    assert str(caught.value) == f"POST /team/new -> {status}: answered with a body that is not JSON (text/html): Sign in"

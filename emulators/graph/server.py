"""The Microsoft Graph v1.0 emulator: routing, paging, $select/$filter, errors, delta and throttling.

It answers the directory calls the sync makes (graph.md §5) over real HTTP on 127.0.0.1, so the
real msgraph-sdk (middleware, retry handler, model parsing) can be pointed at it.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from emulators.graph.delta import (
    DeltaQuery,
    DeltaToken,
    incremental_entries,
    initial_entries,
    paginate,
    parse_delta_query,
    sync_state_not_found,
)
from emulators.graph.grants import AppRoleGrants
from emulators.graph.odata import (
    JSON_CONTENT_TYPE,
    Cursor,
    GraphError,
    bad_request,
    check_select,
    encode_query,
    error_body,
    is_eventual,
    normalize_query,
    not_found,
    parse_filter,
    parse_select,
    parse_top,
    render,
    select_suffix,
)
from emulators.graph.tenant import PROPERTIES, USER_DEFAULT_SELECT, Assignment, DirectoryObject, Tenant
from emulators.graph.throttle import (
    COST_MEMBERS,
    COST_TRANSITIVE_MEMBERS,
    COST_USERS_LIST,
    ResourceUnitBudget,
    request_cost,
)
from emulators.http_base import Emulator, EmulatorServer, Fault, FaultInjector, Request, Response

T = TypeVar("T")

ERROR_CODES = {
    400: "Request_BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Authorization_RequestDenied",
    404: "Request_ResourceNotFound",
    410: "resyncRequired",
    429: "TooManyRequests",
    500: "generalException",
    501: "NotImplemented",
    502: "badGateway",
    503: "serviceNotAvailable",
    504: "gatewayTimeout",
}
ASSIGNMENT_PROPERTIES = (
    "id",
    "deletedDateTime",
    "appRoleId",
    "createdDateTime",
    "principalDisplayName",
    "principalId",
    "principalType",
    "resourceDisplayName",
    "resourceId",
)
_SP_BY_APP_ID = re.compile(r"^servicePrincipals\(appId='([^']*)'\)$")
_DELTA_SEGMENTS = {"delta", "delta()", "microsoft.graph.delta", "microsoft.graph.delta()"}
_CAST_KINDS = {"user", "group", "device", "orgContact", "servicePrincipal"}
_MAX_STORED_ROUNDS = 256
MAX_IN_VALUES = 15  # values in one $filter `in` clause without advanced query (learn: filter-query-parameter)


def graph_fault_response(fault: Fault) -> Response:
    """Injected faults rendered the way Graph answers (code per status, innerError, Retry-After)."""
    code = ERROR_CODES.get(fault.status, "UnknownError")
    message = "Please retry again later." if fault.status == 429 else f"Injected fault {fault.status}."
    headers = {"Content-Type": JSON_CONTENT_TYPE}
    if fault.retry_after is not None:
        headers["Retry-After"] = fault.retry_after
    return Response(fault.status, error_body(code, message), headers)


@dataclass(frozen=True)
class Route:
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    base_cost: int = 1


@dataclass
class _Call:
    """One request as the handlers see it."""

    request: Request
    query: dict[str, str]
    segments: list[str]  # decoded path segments after /v1.0
    origin: str

    @property
    def eventual(self) -> bool:
        return is_eventual(self.request.headers)

    def url(self, path: str, options: dict[str, str]) -> str:
        return f"{self.origin}/v1.0/{path}" + (f"?{encode_query(options)}" if options else "")

    def next_link(self, cursor: Cursor) -> str:
        # Graph's nextLinks echo every original option and spell casts as microsoft.graph.X
        path = "/".join(quote(_canonical_segment(s), safe="()'=@:,$") for s in self.segments)
        options = {k: v for k, v in self.query.items() if k != "$skiptoken"}
        return self.url(path, {**options, "$skiptoken": cursor.encode()})

    def context(self, fragment: str) -> str:
        return f"{self.origin}/v1.0/$metadata#{fragment}"


@dataclass
class _DeltaRound:
    pages: list[list[dict[str, Any]]]
    token: DeltaToken
    context: str


class GraphEmulator(Emulator):
    """Microsoft Graph over HTTP on 127.0.0.1, backed by a mutable :class:`Tenant`.

    Runtime knobs (plain attributes): ``empty_page_every`` (every Nth followed page is empty but
    keeps its nextLink, N >= 2), ``break_paging_for`` (group ids whose member pages after the first
    fail with ``break_paging_status``), ``delta_page_size`` (entries per delta page) and
    ``page_size_cap`` (the most items a page holds even when $top asks for more, as Graph may).
    """

    def __init__(
        self,
        tenant: Tenant,
        *,
        token: str | None = "emulator-token",
        latency: float = 0.0,
        faults: FaultInjector | None = None,
        throttle: ResourceUnitBudget | None = None,
        page_size_cap: int = 999,
        port: int = 0,
    ) -> None:
        self.tenant = tenant
        self.token = token  # None accepts any bearer token
        self.grants = AppRoleGrants(tenant)  # application permissions (Microsoft Graph's own app roles)
        self.throttle = throttle
        self.page_size_cap = page_size_cap
        self.empty_page_every: int | None = None
        self.break_paging_for: set[str] = set()
        self.break_paging_status = 500
        self.delta_page_size = 200
        self.server = EmulatorServer(
            self.handle, latency=latency, faults=faults, port=port, fault_response=graph_fault_response
        )
        self._lock = threading.Lock()
        self._ru_used = 0
        self._epoch = 0
        self._reset_pending = False
        self._rounds: OrderedDict[str, _DeltaRound] = OrderedDict()

    # ---- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{self.server.origin}/v1.0"

    @property
    def resource_units_used(self) -> int:
        with self._lock:
            return self._ru_used

    def expire_delta_tokens(self) -> None:
        """Every delta and skip token issued so far now answers 400 syncStateNotFound."""
        with self._lock:
            self._epoch += 1
            self._rounds.clear()

    def force_delta_reset(self) -> None:
        """The next delta call answers 410 Gone with a Location to restart from (graph.md §1.7)."""
        with self._lock:
            self._reset_pending = True

    # ---- request handling -----------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        client_request_id = request.header("client-request-id") or str(uuid.uuid4())
        headers = {"request-id": str(uuid.uuid4()), "client-request-id": client_request_id}
        try:
            self._authenticate(request)
            call = self._call(request)
            if call.segments == ["$batch"] and request.method == "POST":
                response = self._batch(call)  # each inner request is metered on its own
            else:
                response = self._serve(call, headers)
        except GraphError as exc:
            response = _error_response(exc, client_request_id)
        response.headers = {**headers, **response.headers}
        return response

    def _serve(self, call: _Call, headers: dict[str, str]) -> Response:
        route = resolve(call.request.method, call.segments)
        cost = request_cost(route.base_cost, call.query)
        headers["x-ms-resource-unit"] = str(cost)
        self._admit(cost, headers)
        with self.tenant.lock:
            return self._dispatch(route, call)

    def _authenticate(self, request: Request) -> None:
        scheme, _, value = (request.header("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        if self.token is not None and value.strip() != self.token:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.")

    def _call(self, request: Request) -> _Call:
        raw_path = urlsplit(request.raw_target).path
        # split before decoding so an encoded '/' inside an id cannot create a segment
        segments = [unquote(s) for s in raw_path.split("/") if s]
        if not segments or segments[0] != "v1.0":
            first = segments[0] if segments else ""
            raise bad_request(f"Invalid version: {first}", "BadRequest")
        origin = f"http://{request.header('host') or self.server.origin.removeprefix('http://')}"
        return _Call(request, normalize_query(request.query), segments[1:], origin)

    def _admit(self, cost: int, headers: dict[str, str]) -> None:
        if self.throttle is not None:
            wait = self.throttle.try_charge(cost)
            if wait is not None:
                scope = f"Tenant_Application/ReadOnly/{self.tenant.app.get('appId')}/{self.tenant.tenant_id}"
                raise GraphError(
                    429,
                    "TooManyRequests",
                    "Please retry again later.",
                    {
                        "Retry-After": str(wait),
                        "x-ms-throttle-scope": scope,
                        "x-ms-throttle-information": "ResourceUnitLimitExceeded",
                    },
                )
            used = self.throttle.used_fraction()
            if used > 0.8:
                headers["x-ms-throttle-limit-percentage"] = f"{used:.1f}"
        with self._lock:
            self._ru_used += cost

    def _dispatch(self, route: Route, call: _Call) -> Response:
        handler: Callable[[_Call, dict[str, Any]], Response] = getattr(self, f"_on_{route.name}")
        return handler(call, route.args)

    # ---- service principals ---------------------------------------------------------------------

    def _service_principal(self, ref: tuple[str, str]) -> DirectoryObject:
        key, value = ref
        if key == "appId":
            sp = next((s for s in self.tenant.of_kind("servicePrincipal") if s.get("appId") == value), None)
            if sp is None:
                raise not_found(f"servicePrincipals(appId='{value}')")
            return sp
        sp = self.tenant.get(value, "servicePrincipal")
        if sp is None:
            raise not_found(value)
        return sp

    def _on_service_principal(self, call: _Call, args: dict[str, Any]) -> Response:
        sp = self._service_principal(args["sp"])
        return self._entity(call, sp, "servicePrincipals", PROPERTIES["servicePrincipal"])

    def _on_service_principals(self, call: _Call, args: dict[str, Any]) -> Response:
        sps = self._filtered(call, self.tenant.of_kind("servicePrincipal"), "servicePrincipal")
        return self._objects(
            call, sps, "servicePrincipals", PROPERTIES["servicePrincipal"], polymorphic=False
        )

    def _on_assignments(self, call: _Call, args: dict[str, Any]) -> Response:
        sp = self._service_principal(args["sp"])
        if "$filter" in call.query:  # not documented for appRoleAssignedTo: filter client-side
            raise bad_request("$filter is not supported on appRoleAssignedTo.", "Request_UnsupportedQuery")
        rows = self.tenant.assignments if sp.id == self.tenant.app.id else []
        if args.get("count"):
            return self._count(call, len(rows))
        select = parse_select(call.query)
        _check_names(select, ASSIGNMENT_PROPERTIES, "appRoleAssignment")
        keyed = sorted(((a.id, a) for a in rows), key=lambda pair: pair[0])
        context = call.context(f"servicePrincipals('{sp.id}')/appRoleAssignedTo{select_suffix(select)}")
        return self._paged(call, keyed, lambda a: self._assignment_json(a, select), context)

    def _assignment_json(self, row: Assignment, select: tuple[str, ...] | None) -> dict[str, Any]:
        body = {
            "id": row.id,
            "deletedDateTime": None,
            "appRoleId": row.app_role_id,
            "createdDateTime": row.created,
            "principalDisplayName": self.tenant.principal_name(row),
            "principalId": row.principal_id,
            "principalType": row.principal_type,
            "resourceDisplayName": self.tenant.app.display_name,
            "resourceId": self.tenant.app.id,
        }
        return body if select is None else {k: v for k, v in body.items() if k in select or k == "id"}

    def _on_granted(self, call: _Call, args: dict[str, Any]) -> Response:
        sp = self._service_principal(args["sp"])
        keyed = sorted(((g.id, g) for g in self.grants.granted_to(sp.id)), key=lambda pair: pair[0])
        context = call.context(f"servicePrincipals('{sp.id}')/appRoleAssignments")
        return self._paged(call, keyed, self.grants.to_json, context)

    def _on_grant(self, call: _Call, args: dict[str, Any]) -> Response:
        sp = self._service_principal(args["sp"])
        try:
            body = call.request.json()
        except ValueError:
            raise bad_request("The request body is not valid JSON.", "BadRequest") from None
        row = self.grants.to_json(self.grants.grant(sp, body))
        context = call.context(f"servicePrincipals('{sp.id}')/appRoleAssignments/$entity")
        return Response(201, {"@odata.context": context, **row}, {"Content-Type": JSON_CONTENT_TYPE})

    # ---- groups and users -----------------------------------------------------------------------

    def _on_groups(self, call: _Call, args: dict[str, Any]) -> Response:
        groups = self._filtered(call, self.tenant.of_kind("group"), "group")
        if args.get("count"):
            return self._count(call, len(groups))
        return self._objects(call, groups, "groups", PROPERTIES["group"], polymorphic=False)

    def _on_group(self, call: _Call, args: dict[str, Any]) -> Response:
        return self._entity(call, self._group(args["id"]), "groups", PROPERTIES["group"])

    def _on_users(self, call: _Call, args: dict[str, Any]) -> Response:
        users = self._filtered(call, self.tenant.of_kind("user"), "user")
        if args.get("count"):
            return self._count(call, len(users))
        return self._objects(call, users, "users", USER_DEFAULT_SELECT, polymorphic=False)

    def _on_user(self, call: _Call, args: dict[str, Any]) -> Response:
        key = args["key"]
        user = self.tenant.user_by_upn(key) if "@" in key else self.tenant.get(key, "user")
        if user is None:
            raise not_found(key)
        return self._entity(call, user, "users", USER_DEFAULT_SELECT)

    def _on_members(self, call: _Call, args: dict[str, Any]) -> Response:
        group = self._group(args["id"])
        objs = (
            self.tenant.transitive_members(group.id)
            if args["transitive"]
            else self.tenant.direct_members(group.id)
        )
        cast = args.get("cast")
        if cast is not None:
            objs = [o for o in objs if o.kind == cast]
        objs = self._filtered(call, objs, cast)
        if args.get("count"):
            return self._count(call, len(objs))
        # a cast collection is typed (users, groups...), a plain one holds polymorphic directoryObjects
        entity_set = f"{cast}s" if cast else "directoryObjects"
        default = USER_DEFAULT_SELECT if cast in (None, "user") else PROPERTIES[cast]
        return self._objects(call, objs, entity_set, default, polymorphic=cast is None, break_key=group.id)

    def _on_owners(self, call: _Call, args: dict[str, Any]) -> Response:
        group = self._group(args["id"])
        objs = self._filtered(call, self.tenant.group_owners(group.id), None)
        return self._objects(call, objs, "directoryObjects", USER_DEFAULT_SELECT, polymorphic=True)

    def _group(self, group_id: str) -> DirectoryObject:
        group = self.tenant.get(group_id, "group")
        if group is None:
            raise not_found(group_id)
        return group

    # ---- shared collection machinery ------------------------------------------------------------

    def _entity(
        self, call: _Call, obj: DirectoryObject, entity_set: str, default: tuple[str, ...]
    ) -> Response:
        select = parse_select(call.query)
        check_select(select, [obj.kind])
        body = {"@odata.context": call.context(f"{entity_set}{select_suffix(select)}/$entity")}
        body.update(render(obj, select, default, polymorphic=False))
        return _json(body)

    def _objects(
        self,
        call: _Call,
        objs: list[DirectoryObject],
        entity_set: str,
        default: tuple[str, ...],
        *,
        polymorphic: bool,
        break_key: str | None = None,
    ) -> Response:
        select = parse_select(call.query)
        kinds = _CAST_KINDS if entity_set == "directoryObjects" else {entity_set.removesuffix("s")}
        check_select(select, sorted(kinds, key=lambda k: k != "user"))
        keyed = sorted(((o.id, o) for o in objs), key=lambda pair: pair[0])
        context = call.context(f"{entity_set}{select_suffix(select)}")
        return self._paged(
            call,
            keyed,
            lambda o: render(o, select, default, polymorphic=polymorphic),
            context,
            break_key=break_key,
        )

    def _paged(
        self,
        call: _Call,
        keyed: list[tuple[str, T]],
        to_json: Callable[[T], dict[str, Any]],
        context: str,
        *,
        break_key: str | None = None,
    ) -> Response:
        """One page of a collection sorted by key; the skip token is a cursor past the last key served."""
        _reject_unsupported(call)
        size = min(parse_top(call.query), max(1, self.page_size_cap))
        cursor = Cursor.decode(call.query.get("$skiptoken"))
        body: dict[str, Any] = {"@odata.context": context}
        if cursor.page == 1 and call.eventual and call.query.get("$count", "").lower() == "true":
            body["@odata.count"] = len(keyed)
        broken = {g.lower() for g in self.break_paging_for}
        if break_key is not None and cursor.page >= 2 and break_key in broken:
            status = self.break_paging_status
            raise GraphError(status, ERROR_CODES.get(status, "UnknownError"), "The page could not be read.")
        if self._empty_page_due(cursor.page):
            body["@odata.nextLink"] = call.next_link(Cursor(cursor.after, cursor.page + 1))
            body["value"] = []
            return _json(body)
        rest = keyed if cursor.after is None else [pair for pair in keyed if pair[0] > cursor.after]
        page = rest[:size]
        body["value"] = [to_json(item) for _, item in page]
        if len(rest) > size:
            body["@odata.nextLink"] = call.next_link(Cursor(page[-1][0], cursor.page + 1))
        return _json(body)

    def _empty_page_due(self, page: int) -> bool:
        every = self.empty_page_every
        return every is not None and every >= 2 and page >= 2 and page % every == 0

    def _filtered(self, call: _Call, objs: list[DirectoryObject], kind: str | None) -> list[DirectoryObject]:
        text = call.query.get("$filter")
        if text is None:
            return objs
        if kind is None:
            raise bad_request(
                "$filter on a directoryObject collection needs a type cast.", "Request_UnsupportedQuery"
            )
        parsed = parse_filter(text, kind)
        advanced_query = call.eventual and call.query.get("$count", "").lower() == "true"
        if parsed.advanced and not advanced_query:
            raise bad_request(
                "Unsupported or invalid query filter clause: this operator needs advanced query parameters "
                "(ConsistencyLevel: eventual and $count=true).",
                "Request_UnsupportedQuery",
            )
        if parsed.longest_in > MAX_IN_VALUES and not advanced_query:
            # Graph's documented limit: 15 expressions in a filter clause with `in`, unless advanced.
            raise bad_request(
                f"Too many values in an 'in' clause: {parsed.longest_in} (at most {MAX_IN_VALUES}).",
                "Request_UnsupportedQuery",
            )
        return [o for o in objs if parsed.predicate(o)]

    def _count(self, call: _Call, n: int) -> Response:
        if not call.eventual:
            raise bad_request("$count is not currently supported.")
        return Response(200, str(n), {"Content-Type": "text/plain;charset=utf-8"})

    # ---- delta ----------------------------------------------------------------------------------

    def _on_delta(self, call: _Call, args: dict[str, Any]) -> Response:
        collection = args["collection"]
        self._maybe_reset(call, collection)
        skiptoken = call.query.get("$skiptoken")
        if skiptoken is not None:
            return self._delta_page(call, skiptoken)
        token = call.query.get("$deltatoken")
        if token:  # an empty $deltatoken (a 410 Location) starts over like the first request
            return self._delta_from_token(call, collection, token)
        query = parse_delta_query(collection, call.query)
        return self._start_round(call, query, initial_entries(self.tenant, query))

    def _delta_from_token(self, call: _Call, collection: str, token: str) -> Response:
        if token.lower() == "latest":  # "sync from now": no data, just a deltaLink
            return self._start_round(call, parse_delta_query(collection, call.query), [])  # type: ignore[arg-type]
        with self._lock:
            epoch = self._epoch
        parsed = DeltaToken.decode(token, collection, epoch, self.tenant.seq)  # type: ignore[arg-type]
        minimal = "return=minimal" in (call.request.header("prefer") or "").replace(" ", "").lower()
        entries = incremental_entries(self.tenant, parsed.query, parsed.position, minimal=minimal)
        return self._start_round(call, parsed.query, entries)

    def _maybe_reset(self, call: _Call, collection: str) -> None:
        with self._lock:
            pending, self._reset_pending = self._reset_pending, False
        if pending:
            options = self._original_delta_options(call, collection)
            location = call.url(f"{collection}/delta", {**options, "$deltatoken": ""})
            raise GraphError(
                410,
                "resyncRequired",
                "Resync required: replace any local state with a full sync.",
                {"Location": location},
            )

    def _original_delta_options(self, call: _Call, collection: str) -> dict[str, str]:
        """$select/$filter of the round being reset: from the deltaLink's token, else from the URL."""
        token = call.query.get("$deltatoken")
        if token and token.lower() != "latest":
            with self._lock:
                epoch = self._epoch
            try:
                return DeltaToken.decode(token, collection, epoch, self.tenant.seq).query.options()  # type: ignore[arg-type]
            except GraphError:
                pass  # an unreadable token: fall back to what the URL says
        return {k: v for k, v in call.query.items() if k in ("$select", "$filter")}

    def _start_round(self, call: _Call, query: DeltaQuery, entries: list[Any]) -> Response:
        with self._lock:
            token = DeltaToken(query, self.tenant.seq, self._epoch)
        pages = self._with_empty_pages(paginate(entries, self.delta_page_size))
        context = call.context(f"{query.collection}{select_suffix(query.select)}")
        round_ = _DeltaRound(pages, token, context)
        round_id = uuid.uuid4().hex
        if len(pages) > 1:
            with self._lock:
                self._rounds[round_id] = round_
                while len(self._rounds) > _MAX_STORED_ROUNDS:
                    self._rounds.popitem(last=False)
        return self._serve_round(call, round_id, round_, 0)

    def _with_empty_pages(self, pages: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        out = pages[:1]
        for page in pages[1:]:
            if self._empty_page_due(len(out) + 1):
                out.append([])
            out.append(page)
        return out

    def _delta_page(self, call: _Call, skiptoken: str) -> Response:
        try:
            data = json.loads(base64.urlsafe_b64decode(skiptoken + "=" * (-len(skiptoken) % 4)))
            round_id, index = str(data["r"]), int(data["i"])
        except (ValueError, KeyError, TypeError):
            raise sync_state_not_found() from None
        with self._lock:
            round_ = self._rounds.get(round_id)
        if round_ is None or not 0 < index < len(round_.pages):
            raise sync_state_not_found()
        return self._serve_round(call, round_id, round_, index)

    def _serve_round(self, call: _Call, round_id: str, round_: _DeltaRound, index: int) -> Response:
        collection = round_.token.query.collection
        body: dict[str, Any] = {"@odata.context": round_.context, "value": round_.pages[index]}
        if index + 1 < len(round_.pages):
            raw = json.dumps({"r": round_id, "i": index + 1}, separators=(",", ":")).encode()
            skiptoken = base64.urlsafe_b64encode(raw).decode().rstrip("=")
            body["@odata.nextLink"] = call.url(f"{collection}/delta", {"$skiptoken": skiptoken})
        else:
            body["@odata.deltaLink"] = call.url(f"{collection}/delta", {"$deltatoken": round_.token.encode()})
        return _json(body)

    # ---- $batch (graph.md §1.8) ------------------------------------------------------------------

    def _batch(self, call: _Call) -> Response:
        items = _batch_items(call.request)
        results: dict[str, dict[str, Any]] = {}
        for item in items:  # in order, so dependsOn sees its dependencies' outcomes
            results[str(item["id"]).lower()] = self._batch_item(call, item, results)
        # Graph answers in arbitrary order; reversing it catches clients that match by position
        return _json({"responses": list(reversed(results.values()))})

    def _batch_item(
        self, call: _Call, item: dict[str, Any], done: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        failed = [d for d in item.get("dependsOn") or [] if not 200 <= done[str(d).lower()]["status"] < 300]
        if failed:
            exc = GraphError(424, "FailedDependency", f"Dependent request(s) {failed} failed.")
            return _batch_result(item, _error_response(exc, None))
        inner = _inner_request(call.request, item)
        fault = self.server.faults.decide(inner)  # per-item faults, e.g. one throttled request
        if fault is not None and fault.kind == "status":
            return _batch_result(item, graph_fault_response(fault))
        headers: dict[str, str] = {}
        try:
            response = self._serve(self._call(inner), headers)
        except GraphError as exc:
            response = _error_response(exc, None)
        response.headers = {**headers, **response.headers}
        return _batch_result(item, response)


# ---- routing ---------------------------------------------------------------------------------------


def resolve(method: str, segments: list[str]) -> Route:
    """Map decoded path segments (after /v1.0) to a route; unknown segments answer 400 like Graph."""
    if method == "POST" and segments[-1:] == ["appRoleAssignments"]:
        return _grant_route(segments)
    if method != "GET":
        raise GraphError(501, "NotImplemented", f"The emulator is read-only: {method} is not supported.")
    if not segments:
        raise bad_request("Resource not found for the segment ''.", "BadRequest")
    head, rest = segments[0], segments[1:]
    sp_match = _SP_BY_APP_ID.match(head)
    if sp_match:
        return _sp_route(("appId", sp_match.group(1)), rest)
    routers = {"servicePrincipals": _service_principals_route, "groups": _groups_route, "users": _users_route}
    router = routers.get(head)
    if router is None:
        raise _unknown_segment(head)
    return router(rest)


def _service_principals_route(rest: list[str]) -> Route:
    if not rest:
        return Route("service_principals")
    return _sp_route(("id", rest[0]), rest[1:])


def _sp_route(ref: tuple[str, str], rest: list[str]) -> Route:
    if not rest:
        return Route("service_principal", {"sp": ref})
    if rest[0] == "appRoleAssignedTo" and rest[1:] in ([], ["$count"]):
        return Route("assignments", {"sp": ref, "count": rest[1:] == ["$count"]})
    if rest == ["appRoleAssignments"]:  # the other direction: what the principal was granted
        return Route("granted", {"sp": ref}, 2)
    raise _unknown_segment(rest[-1])


def _grant_route(segments: list[str]) -> Route:
    """POST .../appRoleAssignments on a service principal: the one write the emulator takes."""
    sp_match = _SP_BY_APP_ID.match(segments[0])
    if sp_match and len(segments) == 2:
        return Route("grant", {"sp": ("appId", sp_match.group(1))})
    if segments[0] == "servicePrincipals" and len(segments) == 3:
        return Route("grant", {"sp": ("id", segments[1])})
    raise GraphError(501, "NotImplemented", "The emulator is read-only except for granting app roles.")


def _groups_route(rest: list[str]) -> Route:
    if not rest:
        return Route("groups")
    if rest == ["$count"]:
        return Route("groups", {"count": True})
    if rest[0] in _DELTA_SEGMENTS and len(rest) == 1:
        return Route("delta", {"collection": "groups"})
    group_id, nav = rest[0], rest[1:]
    if not nav:
        return Route("group", {"id": group_id})
    if nav == ["owners"]:
        return Route("owners", {"id": group_id})
    if nav[0] not in ("members", "transitiveMembers"):
        raise _unknown_segment(nav[0])
    transitive = nav[0] == "transitiveMembers"
    args: dict[str, Any] = {"id": group_id, "transitive": transitive, "cast": None, "count": False}
    tail = nav[1:]
    if tail and tail[0] != "$count":
        args["cast"] = _cast_kind(tail[0])
        tail = tail[1:]
    if tail not in ([], ["$count"]):
        raise _unknown_segment(tail[-1])
    args["count"] = tail == ["$count"]
    return Route("members", args, COST_TRANSITIVE_MEMBERS if transitive else COST_MEMBERS)


def _users_route(rest: list[str]) -> Route:
    if not rest:
        return Route("users", {}, COST_USERS_LIST)
    if rest == ["$count"]:
        return Route("users", {"count": True})
    if rest[0] in _DELTA_SEGMENTS and len(rest) == 1:
        return Route("delta", {"collection": "users"})
    if len(rest) == 1:
        return Route("user", {"key": rest[0]})
    raise _unknown_segment(rest[1])


def _cast_kind(segment: str) -> str:
    for prefix in ("microsoft.graph.", "graph."):
        name = segment.removeprefix(prefix)
        if segment.startswith(prefix) and name in _CAST_KINDS:
            return name
    raise _unknown_segment(segment)


def _canonical_segment(segment: str) -> str:
    return "microsoft." + segment if segment.startswith("graph.") else segment


def _unknown_segment(segment: str) -> GraphError:
    return bad_request(f"Resource not found for the segment '{segment}'.", "BadRequest")


def _reject_unsupported(call: _Call) -> None:
    if "$skip" in call.query:
        raise bad_request("'$skip' is not supported by the service.")
    if "$search" in call.query and not call.eventual:
        raise bad_request(
            "Request with $search query parameter only works through MSGraph with a special request header: "
            "'ConsistencyLevel: eventual'",
            "Request_UnsupportedQuery",
        )
    for option in ("$search", "$orderby", "$expand"):
        if option in call.query:
            raise bad_request(f"{option} is not supported by the Graph emulator.", "Request_UnsupportedQuery")


def _check_names(select: tuple[str, ...] | None, known: tuple[str, ...], type_name: str) -> None:
    for name in select or ():
        if name not in known:
            raise bad_request(
                f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'."
            )


def _json(body: dict[str, Any]) -> Response:
    return Response(
        200, body, {"Content-Type": JSON_CONTENT_TYPE, "OData-Version": "4.0", "Cache-Control": "no-cache"}
    )


def _error_response(exc: GraphError, client_request_id: str | None) -> Response:
    body = error_body(exc.code, exc.message, client_request_id)
    return Response(exc.status, body, {"Content-Type": JSON_CONTENT_TYPE, **exc.headers})


MAX_BATCH_REQUESTS = 20


def _batch_items(request: Request) -> list[dict[str, Any]]:
    """The validated inner requests: at most 20, unique ids, dependsOn naming earlier requests."""
    try:
        items = request.json()["requests"]
    except (ValueError, KeyError, TypeError):
        raise bad_request("Invalid batch payload format.", "BadRequest") from None
    if not isinstance(items, list) or not items or len(items) > MAX_BATCH_REQUESTS:
        raise bad_request(f"A batch holds 1 to {MAX_BATCH_REQUESTS} requests.", "BadRequest")
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not {"id", "method", "url"} <= set(item):
            raise bad_request("Each batch request needs id, method and url.", "BadRequest")
        item_id = str(item["id"]).lower()
        if item_id in seen:
            raise bad_request(f"Batch request id '{item['id']}' is not unique.", "BadRequest")
        if any(str(d).lower() not in seen for d in item.get("dependsOn") or []):
            raise bad_request(f"dependsOn of '{item['id']}' names an unknown request.", "BadRequest")
        seen.add(item_id)
    return items


def _inner_request(outer: Request, item: dict[str, Any]) -> Request:
    # relative URLs are the rule; absolute ones (what msgraph-core sends) are accepted too
    parts = urlsplit(str(item["url"]))
    path = "/" + parts.path.lstrip("/")
    if not path.startswith("/v1.0/"):
        path = "/v1.0" + path
    target = path + (f"?{parts.query}" if parts.query else "")
    query = {unquote(k): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
    headers = {k.lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    headers.setdefault("authorization", outer.header("authorization") or "")
    headers.setdefault("host", outer.header("host") or "")
    body = json.dumps(item["body"]).encode() if "body" in item else b""
    return Request(str(item["method"]).upper(), unquote(path), query, headers, body, target)


def _batch_result(item: dict[str, Any], response: Response) -> dict[str, Any]:
    wanted = ("Content-Type", "Retry-After", "x-ms-resource-unit", "Location")
    headers = {k: v for k, v in response.headers.items() if k in wanted}
    return {"id": str(item["id"]), "status": response.status, "headers": headers, "body": response.body}

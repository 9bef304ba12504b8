"""An async client for the LiteLLM admin API, as observed on a real proxy (1.108.7).

Thin on purpose: one method per endpoint the sync uses, LiteLLM's idempotency quirks turned
into success (a retried write that already happened is not a failure), transient failures
retried within a time budget shared by the whole run. An answer is checked where it enters: a
2xx that is not JSON (a login page, a misrouted ingress) is a failed call, and a page or bulk
answer that does not fit its wire model is one too, each a TargetError naming the route.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter, ValidationError

from sync_core.errors import TargetAuthError, TargetError
from sync_core.litellm.wire import (
    BudgetList,
    BudgetWire,
    KeyPage,
    MemberDeleteResults,
    ModelList,
    Page,
    TeamPage,
    UserCreateResults,
    UserPage,
    error_message,
    error_type,
)
from sync_core.model import LiteLLMKey, LiteLLMState, LiteLLMTeam, LiteLLMUser
from sync_core.retry_after import retry_after_seconds
from sync_core.text import one_line
from sync_core.tls import shared_tls_context

PAGE_SIZE = 100  # the proxy's maximum for /v2/team/list and /user/list
KEY_LISTINGS = 3  # readings of the new keys while keys are being deleted under them
IDS_PER_LOOKUP = 50  # user ids in one /user/list query string: about 2 KB of URL
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ATTEMPTS = 5
BULK_ROWS = 500  # the proxy's most rows per bulk request (more is a 422)
# A route of the bulk family (/management/v1, LiteLLM 2026 builds) whose presence stands for all of them.
BULK_PROBE = "/management/v1/users/bulk"
BUDGET_READ = "/budget/info"  # a read, though a POST (the budget ids go in the body)
BUDGETS_PER_READ = 500
PageT = TypeVar("PageT", bound=Page)
ResultsT = TypeVar("ResultsT", UserCreateResults, MemberDeleteResults)
WireT = TypeVar("WireT")


@dataclass(frozen=True)
class NewUser:
    """A user to create, and the teams to add them to (role "user") in the same request."""

    user_id: str
    email: str
    params: Mapping[str, Any]
    teams: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowResult:
    """What one row of a bulk write came to: done when ``error`` is None. A created user's
    ``teams`` are those it landed in (empty when it already existed: membership unknown)."""

    error: str | None = None
    teams: frozenset[str] = frozenset()


class LiteLLMClient:
    def __init__(
        self,
        base_url: str,
        master_key: str,
        *,
        timeout: float = 30.0,
        retry_budget: float = 120.0,
        read_concurrency: int = 8,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {master_key}"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            verify=shared_tls_context(),
            # Room to spare: when requests queue for a full pool, httpcore's connection assignment
            # turns quadratic (concurrency 32 on a pool of 32 took 161 s instead of 73 s).
            limits=httpx.Limits(max_connections=2 * read_concurrency + 8,
                                max_keepalive_connections=2 * read_concurrency + 8),
        )
        # Seconds left to wait before retries, all calls together: a long run (a large initial
        # sync takes many minutes on a busy proxy) keeps retrying a late transient failure.
        self._retry_left = retry_budget
        self._read_slots = asyncio.Semaphore(read_concurrency)
        self.calls: Counter[str] = Counter()  # "POST /team/new" -> count, for reports and tests
        self.lost: Counter[str] = Counter()  # calls whose answer never came (timeouts, resets)
        self.offers_bulk: bool | None = None  # None until probed
        self._probe_lock = asyncio.Lock()

    async def __aenter__(self) -> LiteLLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    @property
    def write_calls(self) -> int:
        reads = f"POST {BUDGET_READ}"
        return sum(n for call, n in self.calls.items() if call.startswith("POST") and call != reads)

    # ------------------------------------------------------------------ reads

    async def read_state(self) -> LiteLLMState:
        teams, users = await asyncio.gather(self.list_teams(), self.list_users())
        return LiteLLMState.build(teams, users)

    async def list_teams(self) -> list[LiteLLMTeam]:
        pages = await self._all_pages("/v2/team/list", TeamPage, "team_id")
        return list({t.team_id: t.to_model() for page in pages for t in page.teams}.values())

    async def list_users(self) -> list[LiteLLMUser]:
        return await self._list_users({})

    async def users_by_id(self, user_ids: Collection[str]) -> list[LiteLLMUser]:
        """Those of ``user_ids`` that exist. LiteLLM matches a lone id as a case-insensitive
        substring, so only exact matches are kept."""
        ids = sorted(set(user_ids))
        chunks = [ids[i:i + IDS_PER_LOOKUP] for i in range(0, len(ids), IDS_PER_LOOKUP)]
        found = await asyncio.gather(*(self._list_users({"user_ids": ",".join(chunk)}) for chunk in chunks))
        wanted = set(ids)
        return [user for users in found for user in users if user.user_id in wanted]

    async def users_with_role(self, role: str) -> list[LiteLLMUser]:
        return await self._list_users({"role": role})

    async def users_with_email(self, email: str) -> list[LiteLLMUser]:
        """Every user whose e-mail is ``email`` (lower case), by user_id. LiteLLM's filter matches
        a case-insensitive substring; only whole e-mails are kept."""
        return [user for user in await self._list_users({"user_email": email}) if user.email == email]

    async def keys_of(self, user_id: str) -> tuple[LiteLLMKey, ...]:
        """Every key the user owns, personal and team keys alike (user_id matches exactly)."""
        filters = {"user_id": user_id, "return_full_object": "true"}
        pages = await self._all_pages("/key/list", KeyPage, "token", filters, size="size")
        return tuple({k.token: k.to_model() for page in pages for k in page.keys}.values())

    async def key_owners_since(self, since: datetime) -> set[str]:
        """The owners of every key made at or after ``since``: /key/list newest first (both 1.108.7
        and 1.80.0 sort by created_at), page after page until a key older than ``since`` shows up.
        A quiet run reads one page. A key deleted while the pages are read moves every later key
        one place up, across a page boundary and out of sight: a listing whose total_count fell
        meanwhile is read again (a key made meanwhile only shows one twice)."""
        for _ in range(KEY_LISTINGS):
            owners, shrank = await self._key_owners_listing(since)
            if not shrank:
                break
        return owners  # still shrinking: the next run's window covers these keys again

    async def _key_owners_listing(self, since: datetime) -> tuple[set[str], bool]:
        owners: set[str] = set()
        number, pages, first_total = 1, 1, None
        while number <= pages:
            params = {"page": number, "size": PAGE_SIZE, "return_full_object": "true",
                      "sort_by": "created_at", "sort_order": "desc"}
            page = _parse("GET /key/list", KeyPage, await self._call("GET", "/key/list", params=params))
            first_total = page.total_count if first_total is None else first_total
            if None not in (first_total, page.total_count) and page.total_count < first_total:
                return owners, True
            recent = [k for k in page.keys if k.created_at is None or k.created_at >= since]
            owners |= {k.user_id for k in recent if k.user_id}
            if len(recent) < len(page.keys):
                break
            number, pages = number + 1, page.total_pages
        return owners, False

    async def keys_by_user(self, user_ids: Collection[str]) -> dict[str, tuple[LiteLLMKey, ...]]:
        ids = sorted(set(user_ids))
        return dict(zip(ids, await asyncio.gather(*(self.keys_of(u) for u in ids)), strict=True))

    async def _list_users(self, filters: Mapping[str, str]) -> list[LiteLLMUser]:
        pages = await self._all_pages("/user/list", UserPage, "user_id", filters)
        return list({u.user_id: u.to_model() for page in pages for u in page.users}.values())

    async def _all_pages(self, path: str, model: type[PageT], key: str,
                         filters: Mapping[str, str] | None = None, size: str = "page_size") -> list[PageT]:
        """Page 1, then the rest concurrently, ordered by the unique id: a sort key with ties
        (created_at is shared by every row one call writes) has no stable order across pages.
        ``size``: the page-size parameter's name (/key/list calls it size)."""

        async def page(number: int) -> PageT:
            params = {**(filters or {}), "page": number, size: PAGE_SIZE,
                      "sort_by": key, "sort_order": "asc"}
            async with self._read_slots:
                return _parse(f"GET {path}", model, await self._call("GET", path, params=params))

        first = await page(1)
        rest = await asyncio.gather(*(page(n) for n in range(2, first.total_pages + 1)))
        return [first, *rest]

    async def budgets(self, budget_ids: Collection[str]) -> dict[str, BudgetWire]:
        """The budget rows of ``budget_ids`` (a team's member budget), by id; unknown ids are left out."""
        ids = sorted(set(budget_ids))
        chunks = [ids[i:i + BUDGETS_PER_READ] for i in range(0, len(ids), BUDGETS_PER_READ)]
        rows: dict[str, BudgetWire] = {}
        for chunk in chunks:
            answer = await self._call("POST", BUDGET_READ, json={"budgets": chunk})
            rows |= {b.budget_id: b for b in _parse(f"POST {BUDGET_READ}", BudgetList, answer)}
        return rows

    async def served_models(self) -> frozenset[str]:
        """The model names the proxy serves, its wildcard routes and model access groups included."""
        answer = await self.get("/v1/models", {"include_model_access_groups": "true",
                                               "return_wildcard_routes": "true"})
        return frozenset(m.id for m in _parse("GET /v1/models", ModelList, answer).data)

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """Any read-only GET (health, key and user info), with the client's retries and errors."""
        return await self._call("GET", path, params=params)

    async def offers(self, path: str) -> bool:
        """Whether the proxy has a route at ``path``, asked without calling it: a GET on a POST-only
        route the proxy has answers 405, on one it lacks 404 (seen on 1.108.7 and 1.80.0). Any other
        failure is a TargetError, after the client's retries."""
        try:
            await self._call("GET", path, done_if=lambda s, m, t: s == 405)
        except TargetError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # ------------------------------------------------------------------ team writes

    async def create_team(self, team_id: str, alias: str, metadata: Mapping[str, Any],
                          params: Mapping[str, Any]) -> None:
        body = {**params, "team_id": team_id, "team_alias": alias, "metadata": dict(metadata)}
        await self._write("/team/new", body, done_if=lambda s, m, t: s == 400 and "already exists" in m)

    async def update_team(self, team_id: str, **fields: Any) -> None:
        await self._write("/team/update", {"team_id": team_id, **fields})

    async def block_team(self, team_id: str, *, blocked: bool) -> None:
        await self._write("/team/block" if blocked else "/team/unblock", {"team_id": team_id})

    async def delete_team(self, team_id: str) -> None:
        # 404: already gone, e.g. a retried call whose first attempt did delete it.
        await self._write("/team/delete", {"team_ids": [team_id]}, done_if=lambda s, m, t: s == 404)

    # ------------------------------------------------------------------ users and members

    async def create_user(self, user_id: str, email: str, params: Mapping[str, Any]) -> None:
        await self._write("/user/new", _user_body(user_id, email, params),
                          done_if=lambda s, m, t: s == 409 and f"id {user_id} already exists" in m)

    async def create_users(self, users: Sequence[NewUser], *,
                           timeout: float | None = None) -> list[RowResult]:
        """One /management/v1/users/bulk request (at most BULK_ROWS users), each row with its
        teams, and ``timeout`` seconds for the answer (default: the client's). Rows fail
        independently. A user that already exists (a retried request whose first attempt
        committed) is done, with its memberships unknown. A lost answer is not retried here (the
        request may still be running): TargetError with no status; bulk_create resolves it."""
        rows = [{**_user_body(u.user_id, u.email, u.params), **({"teams": list(u.teams)} if u.teams else {})}
                for u in users]
        path = "/management/v1/users/bulk"
        body = await self._call("POST", path, json={"users": rows}, timeout=timeout, retry_lost=False)
        answer = _rows(f"POST {path}", UserCreateResults, body, len(users))
        results = []
        for user, row in zip(users, answer.data, strict=True):
            if row.user_id not in (None, user.user_id):
                raise TargetError(f"POST {path}", 200,
                                  f"the row for {user.user_id} answered for {row.user_id}")
            if row.success:
                results.append(RowResult(teams=frozenset(row.teams or ())))
            elif f"id={user.user_id} already exists" in (row.error or ""):
                results.append(RowResult())
            else:
                results.append(RowResult(_row_error(f"POST {path}", row.error)))
        return results

    async def add_members(self, team_id: str, user_ids: list[str]) -> None:
        """One member_add call. LiteLLM rejects a list whose members are all present with 400
        (team_member_already_in_team) and skips present ones in a mixed list: both mean done."""
        body = {"team_id": team_id, "member": [{"user_id": u, "role": "user"} for u in user_ids]}
        try:
            await self._write("/team/member_add", body,
                              done_if=lambda s, m, t: s == 400 and t == "team_member_already_in_team")
        except TargetError as exc:
            # The proxy adds a list in one transaction that it ends after 5 s: on a busy proxy a long
            # list keeps outliving it, however often it is retried. Halves are shorter; members a
            # half already added are skipped by the proxy.
            if len(user_ids) < 2 or exc.status != 500 or "Transaction already closed" not in exc.message:
                raise
            half = len(user_ids) // 2
            await self.add_members(team_id, user_ids[:half])
            await self.add_members(team_id, user_ids[half:])

    async def set_member_role(self, team_id: str, user_id: str, role: str) -> None:
        await self._write("/team/member_update", {"team_id": team_id, "user_id": user_id, "role": role})

    async def team_metadata(self, team_id: str) -> dict[str, Any]:
        info = await self.get("/team/info", params={"team_id": team_id})
        metadata = (info.get("team_info") or {}).get("metadata") if isinstance(info, dict) else None
        if not isinstance(metadata, dict):
            raise TargetError("GET /team/info", None, f"team {team_id!r}: the answer carries no metadata")
        return metadata

    async def update_user(self, user_id: str, **fields: Any) -> None:
        """Beware: LiteLLM creates a user it does not know (upsert). Metadata is replaced whole."""
        await self._write("/user/update", {"user_id": user_id, **fields})

    async def delete_user(self, user_id: str) -> None:
        # 404: already gone (the user and, with it, their keys and memberships).
        await self._write("/user/delete", {"user_ids": [user_id]}, done_if=lambda s, m, t: s == 404)

    async def block_key(self, token: str, *, blocked: bool) -> None:
        # A key that no longer exists needs no block: 404 (1.108.7), 401 token_not_found_in_db (1.80.0).
        await self._write("/key/block" if blocked else "/key/unblock", {"key": token}, done_if=_key_gone)

    async def remove_member(self, team_id: str, *, user_id: str | None, user_email: str | None) -> None:
        body: dict[str, Any] = {"team_id": team_id}
        if user_id:
            body["user_id"] = user_id
        else:
            body["user_email"] = user_email
        await self._write("/team/member_delete", body,
                          done_if=lambda s, m, t: s == 400 and "not found in team" in m)

    async def remove_members(self, team_id: str,
                             members: Sequence[tuple[str | None, str | None]]) -> list[RowResult]:
        """One bulk_delete request: at most BULK_ROWS (user_id, user_email) pairs, each member
        named by its id, or by e-mail when it has none. Like member_delete, a member who is not
        (or no longer) in the team is done."""
        route = "/management/v1/teams/{team_id}/members/bulk_delete"
        path = route.replace("{team_id}", quote(team_id, safe=""))
        body = {"members": [{"user_id": u} if u else {"user_email": e} for u, e in members]}
        answer = _rows(f"POST {route}", MemberDeleteResults, await self._write(path, body, route=route),
                       len(members))
        return [RowResult(None if row.success or row.error == "User not found in team"
                          else _row_error(f"POST {route}", row.error)) for row in answer.data]

    # ------------------------------------------------------------------ capabilities

    async def probe_bulk(self) -> bool:
        """Whether the proxy offers the bulk routes, learnt once per client with one read (offers).
        A probe that gets no clear answer means no: the per-call routes work on every proxy."""
        async with self._probe_lock:
            if self.offers_bulk is None:
                try:
                    self.offers_bulk = await self.offers(BULK_PROBE)
                except TargetError:
                    self.offers_bulk = False
            return self.offers_bulk

    # ------------------------------------------------------------------ transport

    async def _write(self, path: str, body: dict[str, Any],
                     done_if: Callable[[int, str, str | None], bool] | None = None,
                     route: str | None = None) -> Any:
        return await self._call("POST", path, json=body, done_if=done_if, route=route)

    async def _call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                    json: Any = None, done_if: Callable[[int, str, str | None], bool] | None = None,
                    route: str | None = None, timeout: float | None = None, retry_lost: bool = True) -> Any:
        """``retry_lost``: whether a call whose answer never came is made again (else TargetError)."""
        call = f"{method} {route or path}"  # the route, not the path, names a call in the stats
        limits = httpx.Timeout(timeout, connect=min(timeout, 10.0)) if timeout else httpx.USE_CLIENT_DEFAULT
        for attempt in range(1, MAX_ATTEMPTS + 1):
            self.calls[call] += 1
            try:
                response = await self._http.request(method, path, params=params, json=json, timeout=limits)
            except httpx.TransportError as exc:  # timeouts, resets, refused connections
                self.lost[call] += 1
                if not retry_lost or attempt == MAX_ATTEMPTS or not await self._backoff(attempt, None):
                    raise TargetError(call, None, one_line(f"{type(exc).__name__}: {exc}")) from None
                continue
            if response.status_code < 400:
                return _answer(call, response)
            body = _json(response)
            message, kind = error_message(body), error_type(body)
            if done_if is not None and done_if(response.status_code, message, kind):
                return body
            message = one_line(message)  # the proxy's text, shown in reports and logs
            if response.status_code == 401:
                raise TargetAuthError(call, response.status_code, message)
            if response.status_code not in RETRY_STATUSES or attempt == MAX_ATTEMPTS \
                    or not await self._backoff(attempt, response.headers.get("Retry-After")):
                raise TargetError(call, response.status_code, message)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _backoff(self, attempt: int, retry_after: str | None) -> bool:
        """Sleep before the next attempt; False when the run's retry budget is spent."""
        delay = retry_after_seconds(retry_after)
        if delay is None:
            delay = min(0.5 * 2 ** (attempt - 1), 8.0) * (0.5 + random.random())
        if delay > self._retry_left:
            return False
        self._retry_left -= delay
        await asyncio.sleep(delay)
        return True


def _key_gone(status: int, message: str, kind: str | None) -> bool:
    return status == 404 or (status == 401 and kind == "token_not_found_in_db")


def _user_body(user_id: str, email: str, params: Mapping[str, Any]) -> dict[str, Any]:
    # As LiteLLM's SSO creates users: same ids, no API key, auth_provider in metadata.
    metadata = {"auth_provider": "microsoft", **params.get("metadata", {})}
    return {**params, "user_id": user_id, "user_email": email, "sso_user_id": user_id,
            "auto_create_key": False, "metadata": metadata}


def _row_error(call: str, message: str | None) -> str:
    return f"{call} -> row: {message or 'failed without a message'}"


def _rows(call: str, model: type[ResultsT], body: Any, expected: int) -> ResultsT:
    """A bulk answer with one result per row sent, or a TargetError for the whole request."""
    answer = _parse(call, model, body)
    if len(answer.data) != expected:
        raise TargetError(call, 200, f"answered {len(answer.data)} row result(s) for {expected} row(s)")
    return answer


def _parse(call: str, model: type[WireT] | TypeAdapter[WireT], body: Any) -> WireT:
    """``body`` as ``model``, or a TargetError naming the call and the first field that does not fit."""
    validate = model.validate_python if isinstance(model, TypeAdapter) else model.model_validate
    try:
        return validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "the body"
        raise TargetError(call, 200, f"malformed answer ({where}: {one_line(error['msg'], 120)})") from None


def _answer(call: str, response: httpx.Response) -> Any:
    """A successful answer's JSON; one that is not JSON did not do what was asked, as far as we know."""
    body = _json(response)
    if isinstance(body, NotJson):
        raise TargetError(call, response.status_code, str(body))
    return body


class NotJson(str):
    """What stands for a body that is not JSON: one line saying what came instead."""


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        title = re.search(r"(?is)<title>(.*?)</title>", response.text)
        shown = title.group(1).strip() if title else response.text.strip()
        return NotJson(f"answered with a body that is not JSON ({one_line(kind, 60)}): "
                       f"{one_line(shown, 120) or 'empty'}")

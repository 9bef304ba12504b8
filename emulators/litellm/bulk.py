"""The bulk routes of LiteLLM 1.108.7 (/management/v1): POST /management/v1/users/bulk and
POST /management/v1/teams/{team_id}/members/bulk_delete.

They answer errors as RFC 9457 problem documents ({"type", "title", "status", "detail"}), 422s
included, with the first validation problem as ``detail`` ("users.0.bogus: Extra inputs are not
permitted"). An emulator made with ``bulk_routes=False`` has none of them (404), as LiteLLM 1.80.0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from emulators.http_base import Request, Response
from emulators.litellm.auth import Caller
from emulators.litellm.cost import TeamLocks
from emulators.litellm.errors import Reply
from emulators.litellm.router import Route
from emulators.litellm.state import LiteLLMState
from emulators.litellm.state.bulk import RowFault
from emulators.litellm.state.errors import TeamNotFound
from emulators.litellm.users import USER_FIELDS
from emulators.litellm.validation import Field, json_body, validate_fields

MAX_ROWS = 500
PROBLEM = "urn:litellm:error:"
# BulkNewUserItem's fields: /user/new's, without send_invite_email's effect; others are a 422.
ROW_NAMES = frozenset({
    *(f.name for f in USER_FIELDS), "key_alias", "duration", "spend", "agent_id", "budget_limits",
    "allowed_cache_controls", "config", "permissions", "model_max_budget", "budget_fallbacks",
    "model_rpm_limit", "model_tpm_limit", "mcp_rpm_limit", "tag_rpm_limit", "guardrails", "policies",
    "prompts", "blocked", "aliases", "object_permission", "organizations", "password",
})
ROW_FIELDS = tuple(Field(f.name, f.kind, nullable=f.nullable) for f in USER_FIELDS)


def problem(status: int, kind: str, title: str, detail: str) -> Response:
    return Response(status, {"type": PROBLEM + kind, "title": title, "status": status, "detail": detail})


def invalid_body(detail: str) -> Reply:
    return Reply(problem(422, "invalid-request-body", "Invalid request body", detail))


class BulkRoutes:
    """The bulk routes over the state. ``row_fault`` (user_id -> error or None) fails chosen rows
    of a bulk user creation, as a database error on one insert would: the chaos tests use it.
    ``costs``: the real proxy's cost of a creation, charged after it (see cost.py)."""

    def __init__(self, state: LiteLLMState, costs: TeamLocks | None = None) -> None:
        self.state = state
        self.row_fault: RowFault | None = None
        self.costs = costs

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/management/v1/users/bulk", self.users_bulk),
            Route("POST", "/management/v1/teams/{team_id}/members/bulk_delete", self.members_bulk_delete),
        ]

    def users_bulk(self, request: Request, caller: Caller | None) -> Response:
        rows = _rows(_body(request), "users")
        for i, row in enumerate(rows):
            _check_row(row, f"users.{i}")
        results = self.state.bulk_new_users(rows, self.row_fault)
        if self.costs is not None:
            created = [r for r in results if r["success"]]
            self.costs.charge(self.costs.model.bulk_create, len(created),
                              self.state.team_writes([t for r in created for t in r["teams"]]))
        return Response(200, _user_results(results))

    def members_bulk_delete(self, request: Request, caller: Caller | None) -> Response:
        rows = _rows(_body(request), "members", shape="Tuple")
        members = [_member(row, f"members.{i}") for i, row in enumerate(rows)]
        team_id = request.path_params["team_id"]
        try:
            results = self.state.bulk_delete_members(team_id, members)
        except TeamNotFound:
            return problem(404, "team-not-found", "Team not found", f"Team id={team_id} does not exist in db")
        return Response(200, {"data": results})


def _body(request: Request) -> dict[str, Any]:
    """The JSON object, with json_body's 422s turned into problem documents."""
    try:
        return json_body(request)
    except Reply as reply:
        if reply.response.status != 422:
            raise
        raise _as_problem(reply, []) from None


def _as_problem(reply: Reply, where: list[str]) -> Reply:
    """FastAPI's 422 list as the problem document: its first error, located from the body down."""
    first = reply.response.body["detail"][0]
    loc = ".".join([*where, *(str(p) for p in first["loc"] if p != "body")])
    return invalid_body(f"{loc}: {first['msg']}" if loc else first["msg"])


def _rows(body: Mapping[str, Any], name: str, shape: str = "Value") -> list[Any]:
    """The list of rows under ``name``: 1 to MAX_ROWS objects. ``shape`` is how pydantic names
    the declared type in its messages (users is a Sequence, members a tuple)."""
    extra = sorted(set(body) - {name})
    if extra:
        raise invalid_body(f"{extra[0]}: Extra inputs are not permitted")
    if name not in body:
        raise invalid_body(f"{name}: Field required")
    rows = body[name]
    if not isinstance(rows, list):
        expected = "a valid tuple" if shape == "Tuple" else "an instance of Sequence"
        raise invalid_body(f"{name}: Input should be {expected}")
    if not rows or len(rows) > MAX_ROWS:
        bound = "at least 1 item" if not rows else f"at most {MAX_ROWS} items"
        raise invalid_body(f"{name}: {shape} should have {bound} after validation, not {len(rows)}")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise invalid_body(f"{name}.{i}: Input should be a valid dictionary or instance")
    return rows


def _check_row(row: Mapping[str, Any], where: str) -> None:
    extra = sorted(set(row) - ROW_NAMES)
    if extra:
        raise invalid_body(f"{where}.{extra[0]}: Extra inputs are not permitted")
    try:
        validate_fields(row, ROW_FIELDS)
    except Reply as reply:
        raise _as_problem(reply, [where]) from None


def _member(row: Mapping[str, Any], where: str) -> tuple[str | None, str | None]:
    extra = sorted(set(row) - {"user_id", "user_email"})
    if extra:
        raise invalid_body(f"{where}.{extra[0]}: Extra inputs are not permitted")
    for name in ("user_id", "user_email"):
        if row.get(name) is not None and not isinstance(row[name], str):
            raise invalid_body(f"{where}.{name}: Input should be a valid string")
    user_id, email = row.get("user_id"), row.get("user_email")
    if user_id is None and email is None:
        raise invalid_body(f"{where}: Value error, Either user id or user email must be provided")
    if user_id is not None and email is not None:
        raise invalid_body(
            f"{where}: Value error, Each member must be identified by exactly one of user_id or user_email")
    return user_id, email


def _user_results(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    created = sum(1 for r in results if r["success"])
    return {"data": list(results),
            "meta": {"total_requested": len(results), "created": created, "failed": len(results) - created}}

"""User routes: /user/new, /user/info, /user/list, /user/update, /user/bulk_update and
/user/delete, with the user views they answer with.

/user/bulk_update (1.80.0 and 1.108.7 alike, tests/contract/test_users.py): each row is validated
as /user/update's body (one bad row is a 422 for the whole request), then the rows are done one
after another exactly as /user/update does them (upsert, metadata replaced whole, empty values
ignored), each on its own: a failed row is a ``success: false`` result in a 200, the others are
written. Its ``all_users`` form is not emulated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from emulators.http_base import Request, Response
from emulators.litellm.auth import Caller
from emulators.litellm.errors import Reply, auth_error, detail_error, proxy_error, py_dict
from emulators.litellm.keys import new_user_response
from emulators.litellm.paging import page_body, page_query
from emulators.litellm.router import Route
from emulators.litellm.state import LiteLLMState
from emulators.litellm.state.errors import CreatedByEmailQuirk, UserExists, UserNotFound
from emulators.litellm.state.users import USER_SORT_COLUMNS, UserQuery
from emulators.litellm.validation import (
    Field,
    check_id_or_email,
    err,
    invalid,
    json_body,
    validate_fields,
)

USER_FIELDS = (
    Field("user_id", "str"),
    Field("user_email", "str"),
    Field("user_alias", "str"),
    Field("user_role", "role"),
    Field("sso_user_id", "str"),
    Field("teams", "teams"),
    Field("team_id", "str"),
    Field("auto_create_key", "bool", nullable=False),
    Field("send_invite_email", "bool"),
    Field("max_budget", "float"),
    Field("budget_duration", "str"),
    Field("models", "list"),
    Field("metadata", "dict"),
    Field("tpm_limit", "int"),
    Field("rpm_limit", "int"),
    Field("max_parallel_requests", "int"),
)
USER_UPDATE_FIELDS = tuple(
    f for f in USER_FIELDS if f.name not in ("teams", "team_id", "auto_create_key", "send_invite_email")
)
MAX_BULK_UPDATE = 500
# /user/update by an unknown e-mail: the real proxy inserts the user, then fails shaping its answer
EMAIL_QUIRK = "'LiteLLM_UserTable' object has no attribute 'get'"
# An injected row failure of /user/bulk_update: user_id (or e-mail) -> the row's error, or None.
UpdateFault = Callable[[str], str | None]


class UserRoutes:
    """The user routes over the state. ``row_fault`` fails chosen rows of /user/bulk_update
    before they are written, as a database error on one row would (the executor's tests use it)."""

    def __init__(self, state: LiteLLMState) -> None:
        self.state = state
        self.row_fault: UpdateFault | None = None

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/user/new", self.user_new),
            Route("GET", "/user/info", self.user_info),
            Route("GET", "/user/list", self.user_list),
            Route("POST", "/user/update", self.user_update),
            Route("POST", "/user/bulk_update", self.user_bulk_update),
            Route("POST", "/user/delete", self.user_delete),
        ]

    def user_new(self, request: Request, caller: Caller | None) -> Response:
        data = validate_fields(json_body(request), USER_FIELDS)
        try:
            user, secret, teams = self.state.new_user(data)
        except UserExists as exc:
            return proxy_error(409, py_dict("error", f"User with {exc.label} {exc.value} already exists"))
        keys = self.state.user_keys(user["user_id"])
        created_at = keys[-1]["created_at"] if keys else None
        return Response(200, new_user_response(user, secret, teams, created_at))

    def user_info(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        asked = request.query.get("user_id")
        user_id = caller.user_id if asked is None else asked
        if not caller.admin_view and user_id != caller.user_id:
            return auth_error(
                403,
                "key not allowed to access this user's info. "
                f"user_id={user_id}, key's user_id={caller.user_id}",
            )
        try:
            user = self.state.user(user_id or "")
        except UserNotFound:
            return proxy_error(404, f"User {user_id} not found")
        # quirk: the master key asking about itself (no user_id) is shown every key in the proxy
        keys = self.state.user_keys(None if asked is None and caller.master else user["user_id"])
        teams = []
        with self.state.lock:
            for team_id in user["teams"]:
                if team_id in self.state.teams:
                    memberships = self.state.team_memberships(team_id, user["user_id"])
                    teams.append({**self.state.team(team_id), "team_memberships": memberships, "keys": []})
        return Response(
            200, {"user_id": user["user_id"], "user_info": user_info_row(user), "keys": keys, "teams": teams}
        )

    def user_list(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        page, page_size = page_query(request, 25)
        if not caller.admin_view:
            return detail_error(403, "Only proxy admins and organization admins can list users.")
        q = request.query
        sort_by, sort_order = q.get("sort_by"), q.get("sort_order", "asc")
        if sort_by is not None and sort_by not in USER_SORT_COLUMNS:
            return detail_error(400, f"Invalid sort column. Must be one of: {', '.join(USER_SORT_COLUMNS)}")
        if sort_by is not None and sort_order.lower() not in ("asc", "desc"):
            return detail_error(400, "Invalid sort order. Must be 'asc' or 'desc'")
        query = UserQuery(
            page=page,
            page_size=page_size,
            role=q.get("role") or None,
            user_ids=q.get("user_ids") or None,
            sso_user_ids=q.get("sso_user_ids"),
            user_email=q.get("user_email"),
            team=q.get("team"),
            organization_ids=q.get("organization_ids"),
            search=q.get("search") or None,
            sort_by=sort_by,
            sort_order=sort_order,
        )
        rows, total = self.state.list_users(query)
        users = [{**u, "key_count": len(self.state.user_keys(u["user_id"]))} for u in rows]
        return Response(200, page_body("users", users, total, page, page_size))

    def user_update(self, request: Request, caller: Caller | None) -> Response:
        updated = self._update(_update_data(json_body(request)))
        if updated is None:
            return auth_error(400, f"Authentication Error, {EMAIL_QUIRK}")
        return Response(200, updated)

    def user_bulk_update(self, request: Request, caller: Caller | None) -> Response:
        rows = _bulk_update_rows(json_body(request))
        if not rows:
            return detail_error(400, "Must specify either 'users' for individual updates or 'all_users=True' "
                                     "with 'user_updates' for bulk updates")
        if len(rows) > MAX_BULK_UPDATE:
            return detail_error(400, f"Maximum {MAX_BULK_UPDATE} users can be updated at once. "
                                     f"Found {len(rows)} users.")
        results = [self._bulk_row(row) for row in rows]
        done = sum(1 for r in results if r["success"])
        return Response(200, {"results": results, "total_requested": len(rows), "successful_updates": done,
                              "failed_updates": len(rows) - done})

    def _bulk_row(self, row: dict[str, Any]) -> dict[str, Any]:
        result = {"user_id": row.get("user_id"), "user_email": row.get("user_email")}
        fault = self.row_fault(row.get("user_id") or row["user_email"]) if self.row_fault else None
        updated = None if fault else self._update(row)
        if updated is None:
            return {**result, "success": False, "error": fault or EMAIL_QUIRK, "updated_user": None}
        return {**result, "success": True, "error": None, "updated_user": updated}

    def _update(self, data: Mapping[str, Any]) -> dict[str, Any] | None:
        """/user/update's answer, or None when the row hit the unknown-e-mail quirk."""
        try:
            user = self.state.update_user(data)
        except CreatedByEmailQuirk:
            return None
        return {"user_id": user["user_id"], "data": user_info_row(user, for_update=True)}

    def user_delete(self, request: Request, caller: Caller | None) -> Response:
        data = validate_fields(json_body(request), (Field("user_ids", "list_str", required=True),))
        try:
            count = self.state.delete_users(data["user_ids"])
        except UserNotFound as exc:
            return detail_error(404, f"User not found, passed user_id={exc.user_id}")
        return Response(200, count)  # a bare JSON number


def _update_data(body: Mapping[str, Any]) -> dict[str, Any]:
    """/user/update's body (UpdateUserRequest), checked: a 422 when it does not fit."""
    check_id_or_email(body)
    return validate_fields(body, USER_UPDATE_FIELDS)


def _bulk_update_rows(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``users`` of a /user/bulk_update body, each checked as /user/update's body (errors
    located under body.users.<i>)."""
    users = body.get("users")
    if users is not None and not isinstance(users, list):
        raise invalid([err("list_type", ["body", "users"], "Input should be a valid list")])
    if users and body.get("all_users"):
        both = "Value error, Cannot specify both 'users' and 'all_users=True'. Choose one approach."
        raise invalid([err("value_error", ["body", "user_updates"], both)])
    if body.get("all_users"):
        raise Reply(detail_error(400, "the emulator does not model all_users"))
    rows = []
    for i, row in enumerate(users or []):
        if not isinstance(row, dict):
            raise invalid([err("model_attributes_type", ["body", "users", i],
                               "Input should be a valid dictionary or object to extract fields from")])
        try:
            rows.append(_update_data(row))
        except Reply as reply:
            for error in reply.response.body["detail"]:
                error["loc"] = ["body", "users", i, *error["loc"][1:]]
            raise
    return rows


def user_info_row(user: Mapping[str, Any], *, for_update: bool = False) -> dict[str, Any]:
    """The user row as /user/info (or, with ``for_update``, /user/update's ``data``) shows it."""
    row = {"verified_subjects": None, **user}
    row.pop("organization_memberships")
    row.pop("object_permission")
    row.update(
        {
            "litellm_organization_table": None,
            "organization_memberships": None if for_update else [],
            "invitations_created": None,
            "invitations_updated": None,
            "invitations_user": None,
            "object_permission": None,
        }
    )
    if not for_update:
        row["model_max_budget_usage"] = {}
    return row

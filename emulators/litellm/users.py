"""User routes: /user/new, /user/info, /user/list, /user/update and /user/delete, with the
user views they answer with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulators.http_base import Request, Response
from emulators.litellm.auth import Caller
from emulators.litellm.errors import auth_error, detail_error, proxy_error, py_dict
from emulators.litellm.keys import new_user_response
from emulators.litellm.paging import page_body, page_query
from emulators.litellm.router import Route
from emulators.litellm.state import LiteLLMState
from emulators.litellm.state.errors import CreatedByEmailQuirk, UserExists, UserNotFound
from emulators.litellm.state.users import USER_SORT_COLUMNS, UserQuery
from emulators.litellm.validation import (
    Field,
    check_id_or_email,
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


class UserRoutes:
    """The user routes over the state."""

    def __init__(self, state: LiteLLMState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/user/new", self.user_new),
            Route("GET", "/user/info", self.user_info),
            Route("GET", "/user/list", self.user_list),
            Route("POST", "/user/update", self.user_update),
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
        body = json_body(request)
        check_id_or_email(body)
        data = validate_fields(body, USER_UPDATE_FIELDS)
        try:
            user = self.state.update_user(data)
        except CreatedByEmailQuirk:
            # the real proxy inserts the user, then fails while shaping its answer
            return auth_error(400, "Authentication Error, 'LiteLLM_UserTable' object has no attribute 'get'")
        return Response(200, {"user_id": user["user_id"], "data": user_info_row(user, for_update=True)})

    def user_delete(self, request: Request, caller: Caller | None) -> Response:
        data = validate_fields(json_body(request), (Field("user_ids", "list_str", required=True),))
        try:
            count = self.state.delete_users(data["user_ids"])
        except UserNotFound as exc:
            return detail_error(404, f"User not found, passed user_id={exc.user_id}")
        return Response(200, count)  # a bare JSON number


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

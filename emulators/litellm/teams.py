"""Team routes: /team/new, /team/update, /team/block, /team/unblock, /team/delete,
/team/info, /team/list and /v2/team/list, with the team views they answer with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulators.http_base import Request, Response
from emulators.litellm.auth import Caller, is_team_admin
from emulators.litellm.errors import auth_error, detail_error, proxy_error, py_dict
from emulators.litellm.paging import page_body, page_query
from emulators.litellm.router import Route
from emulators.litellm.state import LiteLLMState
from emulators.litellm.state.errors import (
    InvalidBudget,
    NoModelsConfigured,
    NotTeamMember,
    OrganizationNotFound,
    TeamExists,
    TeamNotFound,
    UserNotFound,
)
from emulators.litellm.state.teams import TeamQuery
from emulators.litellm.validation import Field, json_body, validate_fields

TEAM_FIELDS = (
    Field("team_alias", "str"),
    Field("team_id", "str"),
    Field("organization_id", "str"),
    Field("members_with_roles", "members", nullable=False),
    Field("metadata", "dict"),
    Field("tpm_limit", "int"),
    Field("rpm_limit", "int"),
    Field("tpd_limit", "int"),
    Field("max_budget", "float"),
    Field("soft_budget", "float"),
    Field("budget_duration", "str"),
    Field("models", "list", nullable=False),
    Field("blocked", "bool", nullable=False),
    Field("max_parallel_requests", "int"),
)
TEAM_UPDATE_FIELDS = tuple(
    Field(f.name, f.kind, f.name == "team_id", True) for f in TEAM_FIELDS if f.name != "members_with_roles"
)


class TeamRoutes:
    """The team routes over the state."""

    def __init__(self, state: LiteLLMState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/team/new", self.team_new),
            Route("POST", "/team/update", self.team_update),
            Route("POST", "/team/block", self.team_block),
            Route("POST", "/team/unblock", self.team_unblock),
            Route("POST", "/team/delete", self.team_delete),
            Route("GET", "/team/info", self.team_info),
            Route("GET", "/team/list", self.team_list),
            Route("GET", "/v2/team/list", self.team_list_v2),
        ]

    def team_new(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        data = validate_fields(json_body(request), TEAM_FIELDS)
        try:
            team = self.state.new_team(data, caller.user_id)
        except TeamExists as exc:
            return proxy_error(
                400,
                py_dict("error", f"Team id = {exc.team_id} already exists. Please use a different team id."),
            )
        except OrganizationNotFound as exc:
            return proxy_error(400, f"Organization not found for organization_id={exc.organization_id}")
        except InvalidBudget as exc:
            return proxy_error(
                400,
                py_dict(
                    "error", f"{exc.field_name} must be a non-negative finite number. Received: {exc.value}"
                ),
            )
        return Response(200, team)

    def team_update(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        body = json_body(request)
        data = validate_fields(body, TEAM_UPDATE_FIELDS)
        team_id = data.pop("team_id")
        if not caller.admin:  # checked before the team's existence: an unknown team is also a 403
            return self.refuse_team_update(caller, team_id)
        try:
            team = self.state.update_team(team_id, data)
        except TeamNotFound:
            return proxy_error(404, py_dict("error", f"Team not found, passed team_id={team_id}"))
        except NoModelsConfigured:
            return proxy_error(500, py_dict("error", "No models configured on proxy"))
        except InvalidBudget as exc:
            return proxy_error(
                400,
                py_dict(
                    "error", f"{exc.field_name} must be a non-negative finite number. Received: {exc.value}"
                ),
            )
        return Response(200, {"team_id": team_id, "data": team_db_row(team)})

    def refuse_team_update(self, caller: Caller, team_id: str) -> Response:
        try:
            team = self.state.team(team_id)
        except TeamNotFound:
            team = None
        if team is not None and is_team_admin(caller, team):
            return proxy_error(
                403,
                "Team admins on this proxy cannot edit team settings. Ask a proxy admin to enable fields "
                "under Settings > UI > Team admin editable fields.",
            )
        return proxy_error(403, "You do not have access to this team")

    def team_block(self, request: Request, caller: Caller | None) -> Response:
        return self.set_blocked(request, blocked=True)

    def team_unblock(self, request: Request, caller: Caller | None) -> Response:
        return self.set_blocked(request, blocked=False)

    def set_blocked(self, request: Request, *, blocked: bool) -> Response:
        team_id = validate_fields(json_body(request), (Field("team_id", "str", required=True),))["team_id"]
        try:
            team = self.state.set_blocked(team_id, blocked)
        except TeamNotFound:
            return detail_error(404, f"Team not found, passed team_id={team_id}")
        return Response(200, team_db_row(team))

    def team_delete(self, request: Request, caller: Caller | None) -> Response:
        data = validate_fields(json_body(request), (Field("team_ids", "list_str", required=True),))
        team_ids = list(dict.fromkeys(data["team_ids"]))  # the real request model dedupes the ids
        try:
            deleted = self.state.delete_teams(team_ids)
        except TeamNotFound as exc:
            return detail_error(404, f"Team not found, passed team_id={exc.team_id}")
        return Response(200, {"deleted_teams": deleted})

    def team_info(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        team_id = request.query.get("team_id")
        if team_id is None:
            return auth_error(422, py_dict("message", "Malformed request. No team id passed in."))
        try:
            team = self.state.team(team_id)
        except TeamNotFound:
            return auth_error(404, py_dict("message", f"Team not found, passed team id: {team_id}."))
        if not caller.admin_view and not any(
            m["user_id"] == caller.user_id for m in team["members_with_roles"]
        ):
            return auth_error(
                403, py_dict("error", f"User={caller.user_id} not authorized to access this team={team_id}")
            )
        with self.state.lock:
            aliases = {
                m["user_id"]: (self.state.users.get(m["user_id"]) or {}).get("user_alias")
                for m in team["members_with_roles"]
            }
        info = dict(team)
        info["members_with_roles"] = [
            {**m, "user_alias": aliases[m["user_id"]]} for m in team["members_with_roles"]
        ]
        info.update(
            {
                "team_member_budget_table": None,
                **_access_group_nulls(),
                "unresolved_access_group_ids": None,
                "access_group_details": None,
                "organization_models": None,
                "model_max_budget_usage": {},
                "caller_edit_access": {"kind": edit_access(caller, team)},
            }
        )
        memberships = [{**m, "budget_source": "none"} for m in self.state.team_memberships(team_id)]
        return Response(
            200, {"team_id": team_id, "team_info": info, "keys": [], "team_memberships": memberships}
        )

    def team_list(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        user_id = request.query.get("user_id")
        if not caller.admin_view and (user_id is None or user_id != caller.user_id):
            return detail_error(
                401, f"Only admin users can query all teams/other teams. Your user role={caller.role}"
            )
        teams = self.state.legacy_team_list(user_id or None)
        return Response(
            200,
            [
                {
                    **t,
                    "team_memberships": self.state.team_memberships(t["team_id"], user_id or None),
                    "keys": [],
                }
                for t in teams
            ],
        )

    def team_list_v2(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        page, page_size = page_query(request, 10)
        q = request.query
        user_id = q.get("user_id") or None
        if not caller.admin_view and user_id != caller.user_id:
            return detail_error(
                401, f"Only admin users can query all teams/other teams. Your user role={caller.role}"
            )
        status = q.get("status")
        if status is not None and status != "deleted":
            return detail_error(400, "Invalid status value. Currently only 'deleted' is supported.")
        if user_id is not None:
            try:
                if status is None and not self.state.check_team_list_user(user_id, q.get("team_id") or None):
                    return Response(200, page_body("teams", [], 0, page, page_size))
                if status is not None:
                    self.state.user(user_id)
            except UserNotFound:
                return detail_error(404, f"User not found, passed user_id={user_id}")
            except NotTeamMember as exc:
                return detail_error(404, f"User is not a member of team_id={exc.team_id}")
        query = TeamQuery(
            page=page,
            page_size=page_size,
            team_id=q.get("team_id") or None,
            team_alias=q.get("team_alias") or None,
            user_id=user_id,
            organization_id=q.get("organization_id") or None,
            sort_by=q.get("sort_by"),
            sort_order=q.get("sort_order", "asc"),
            deleted=status == "deleted",
        )
        rows, total = self.state.list_teams(query)
        if status is None:
            rows = [
                {
                    **t,
                    "members_count": len(t["members_with_roles"]),
                    "keys_count": self.state.team_key_count(t["team_id"]),
                    **_access_group_nulls(),
                }
                for t in rows
            ]
        return Response(200, page_body("teams", rows, total, page, page_size))


def edit_access(caller: Caller, team: Mapping[str, Any]) -> str:
    if caller.admin:
        return "unrestricted"
    # team admins may edit nothing until a proxy admin enables fields in the UI settings
    return "team_admin_disabled" if is_team_admin(caller, team) else "none"


def team_db_row(team: Mapping[str, Any]) -> dict[str, Any]:
    """The raw DB row that /team/update (as ``data``), /team/block and /team/unblock return."""
    names = ("team_id", "team_alias", "organization_id", "object_permission_id", "admins", "members")
    row: dict[str, Any] = {k: team[k] for k in names}
    row["members_with_roles"] = [
        {"role": m["role"], "user_id": m["user_id"], "user_email": m["user_email"]}
        for m in team["members_with_roles"]
    ]
    for name in (
        "metadata",
        "max_budget",
        "soft_budget",
        "spend",
        "models",
        "max_parallel_requests",
        "tpm_limit",
        "rpm_limit",
        "tpd_limit",
        "budget_duration",
        "budget_reset_at",
        "blocked",
        "created_at",
        "updated_at",
        "model_spend",
        "model_max_budget",
        "router_settings",
        "team_member_permissions",
        "access_group_ids",
        "policies",
        "default_team_member_models",
        "budget_limits",
        "model_id",
        "allow_team_guardrail_config",
    ):
        row[name] = team[name]
    row.update(
        {
            "litellm_organization_table": None,
            "litellm_model_table": None,
            "object_permission": None,
            "projects": None,
        }
    )
    return row


def _access_group_nulls() -> dict[str, None]:
    return {
        "access_group_models": None,
        "access_group_mcp_server_ids": None,
        "access_group_agent_ids": None,
        "access_group_skill_names": None,
    }

"""HTTP face of the LiteLLM emulator: routing, request validation, auth and LiteLLM's error bodies.

The real proxy (FastAPI) answers errors in two shapes, and which one depends on the endpoint
and the code path, so each handler below renders its errors the way the real proxy was seen to:

- ``{"error": {"message", "type", "param", "code"}}`` (``code`` a string such as "400"), and
- FastAPI's ``{"detail": {"error": "..."}}``, or ``{"detail": [...]}`` for 422 validation errors.

Order of checks, as on the real proxy: route (404/405), then auth (401, even for a malformed
body), then body/query validation (422), then the handler.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from emulators.http_base import (
    Emulator,
    EmulatorServer,
    Fault,
    FaultInjector,
    LoggedRequest,
    Request,
    Response,
)
from emulators.litellm.state import (
    MASTER_USER_ID,
    USER_ROLES,
    USER_SORT_COLUMNS,
    AlreadyInTeam,
    AmbiguousEmail,
    CreatedByEmailQuirk,
    IdentityMismatch,
    InvalidBudget,
    LiteLLMState,
    Member,
    MemberNotInTeam,
    NoModelsConfigured,
    NotTeamMember,
    OrganizationNotFound,
    PremiumAdmin,
    TeamExists,
    TeamNotFound,
    TeamQuery,
    TransactionClosed,
    UnknownUserIds,
    UserExists,
    UserNotFound,
    UserQuery,
)

PREMIUM_TAIL = (
    "You must be a LiteLLM Enterprise user to use this feature. If you have a license please set "
    "`LITELLM_LICENSE` in your env. Get a 7 day trial key here: https://www.litellm.ai/enterprise#trial. "
    "\nPricing: https://www.litellm.ai/#pricing. "
)
ROLE_LITERAL_MSG = (
    "Input should be <LitellmUserRoles.PROXY_ADMIN: 'proxy_admin'>, <LitellmUserRoles.PROXY_ADMIN_VIEW_ONLY: "
    "'proxy_admin_viewer'>, <LitellmUserRoles.INTERNAL_USER: 'internal_user'> or "
    "<LitellmUserRoles.INTERNAL_USER_VIEW_ONLY: 'internal_user_viewer'>"
)
# Routes a non-admin virtual key is turned away from in auth itself (probed on 1.108.7).
EMULATED_VERSION = "1.108.7"  # what /health/readiness/details reports as litellm_version
ADMIN_ONLY_ROUTES = frozenset(
    {"/team/new", "/team/block", "/team/unblock", "/team/delete", "/user/new", "/user/update", "/user/delete"}
)
_BOOL_TRUE = {"1", "on", "t", "true", "y", "yes"}
_BOOL_FALSE = {"0", "off", "f", "false", "n", "no"}


# ---------------------------------------------------------------------------------------- bodies


class _Reply(Exception):
    """Stop handling and answer with ``response``."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def proxy_error(
    status: int, message: str, type_: str = "internal_server_error", param: str | None = None
) -> Response:
    return Response(
        status, {"error": {"message": message, "type": type_, "param": param, "code": str(status)}}
    )


def auth_error(status: int, message: str) -> Response:
    # LiteLLM's auth failures carry the string "None" as param, not null
    return proxy_error(status, message, "auth_error", "None")


def detail_error(status: int, error: str) -> Response:
    return Response(status, {"detail": {"error": error}})


def _py_dict(key: str, message: str) -> str:
    """The real proxy stringifies ``{'error': ...}`` dicts into messages; repr keeps Python's quoting."""
    return repr({key: message})


def litellm_fault_response(fault: Fault) -> Response:
    """An injected ``status`` fault in LiteLLM's error shape (and Retry-After when set)."""
    response = proxy_error(fault.status, f"injected fault {fault.status}")
    if fault.retry_after is not None:
        response.headers["Retry-After"] = fault.retry_after
    return response


# ---------------------------------------------------------------------------------------- validation


class Field(NamedTuple):
    name: str
    kind: str  # str | int | float | bool | dict | list | list_str | role | teams | members
    required: bool = False
    nullable: bool = True


def _err(type_: str, loc: Sequence[Any], msg: str) -> dict[str, Any]:
    return {"type": type_, "loc": list(loc), "msg": msg}


def _invalid(errors: list[dict[str, Any]]) -> _Reply:
    return _Reply(Response(422, {"detail": errors}))


def _coerce_number(kind: str, value: Any, loc: list[Any]) -> tuple[Any, list[dict[str, Any]]]:
    """pydantic's lax int/float rules, which is what FastAPI applies to request bodies."""
    label = "integer" if kind == "int" else "number"
    if isinstance(value, (bool, int | float)):
        if kind == "int" and isinstance(value, float) and not value.is_integer():
            return None, [
                _err(
                    "int_from_float",
                    loc,
                    "Input should be a valid integer, got a number with a fractional part",
                )
            ]
        return (int(value) if kind == "int" else float(value)), []
    if isinstance(value, str):
        try:
            return (int(value.strip()) if kind == "int" else float(value.strip())), []
        except ValueError:
            return None, [
                _err(
                    f"{kind}_parsing",
                    loc,
                    f"Input should be a valid {label}, unable to parse string as an {label}"
                    if kind == "int"
                    else f"Input should be a valid {label}, unable to parse string as a {label}",
                )
            ]
    return None, [_err(f"{kind}_type", loc, f"Input should be a valid {label}")]


def _coerce_bool(value: Any, loc: list[Any]) -> tuple[Any, list[dict[str, Any]]]:
    if isinstance(value, bool):
        return value, []
    if isinstance(value, int) and value in (0, 1):
        return bool(value), []
    if isinstance(value, str) and value.strip().lower() in _BOOL_TRUE | _BOOL_FALSE:
        return value.strip().lower() in _BOOL_TRUE, []
    if isinstance(value, str | int | float):
        return None, [_err("bool_parsing", loc, "Input should be a valid boolean, unable to interpret input")]
    return None, [_err("bool_type", loc, "Input should be a valid boolean")]


def _coerce(kind: str, value: Any, loc: list[Any]) -> tuple[Any, list[dict[str, Any]]]:
    if kind == "str":
        ok = isinstance(value, str)
        return (value, []) if ok else (None, [_err("string_type", loc, "Input should be a valid string")])
    if kind in ("int", "float"):
        return _coerce_number(kind, value, loc)
    if kind == "bool":
        return _coerce_bool(value, loc)
    if kind == "dict":
        ok = isinstance(value, dict)
        return (value, []) if ok else (None, [_err("dict_type", loc, "Input should be a valid dictionary")])
    if kind == "list":
        ok = isinstance(value, list)
        return (value, []) if ok else (None, [_err("list_type", loc, "Input should be a valid list")])
    if kind == "list_str":
        if not isinstance(value, list):
            return None, [_err("list_type", loc, "Input should be a valid list")]
        errors = [e for i, v in enumerate(value) for e in _coerce("str", v, [*loc, i])[1]]
        return value, errors
    if kind == "role":
        ok = value in USER_ROLES
        return (value, []) if ok else (None, [_err("literal_error", loc, ROLE_LITERAL_MSG)])
    if kind == "teams":
        return _coerce_teams(value, loc)
    if kind == "members":
        return _coerce_member_list(value, loc)
    raise AssertionError(f"unknown field kind {kind}")


def _coerce_teams(value: Any, loc: list[Any]) -> tuple[Any, list[dict[str, Any]]]:
    """/user/new ``teams``: a list of team ids or of {team_id, user_role} objects."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value, []
    if isinstance(value, list) and all(
        isinstance(v, dict) and isinstance(v.get("team_id"), str) for v in value
    ):
        return value, []
    return None, [
        _err("list_type", [*loc, "list[str]"], "Input should be a valid list"),
        _err("list_type", [*loc, "list[NewUserRequestTeam]"], "Input should be a valid list"),
    ]


def _coerce_member_list(value: Any, loc: list[Any]) -> tuple[Any, list[dict[str, Any]]]:
    """/team/new ``members_with_roles``: plain pydantic list[Member] errors."""
    if not isinstance(value, list):
        return None, [_err("list_type", loc, "Input should be a valid list")]
    errors: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        errors += _member_errors(item, [*loc, i], field_loc=[*loc, i])
    return value, errors


def _member_errors(item: Any, loc: list[Any], field_loc: list[Any]) -> list[dict[str, Any]]:
    """Member's before-validator runs first (dict, id or e-mail), then its fields."""
    if not isinstance(item, dict):
        return [_err("value_error", loc, "Value error, input needs to be a dictionary")]
    if item.get("user_id") is None and item.get("user_email") is None:
        return [_err("value_error", loc, "Value error, Either user id or user email must be provided")]
    errors: list[dict[str, Any]] = []
    for name in ("user_id", "user_email"):
        if item.get(name) is not None:
            errors += _coerce("str", item[name], [*field_loc, name])[1]
    if "role" not in item:
        errors.append(_err("missing", [*field_loc, "role"], "Field required"))
    elif item["role"] not in ("admin", "user"):
        errors.append(_err("literal_error", [*field_loc, "role"], "Input should be 'admin' or 'user'"))
    return errors


def validate_fields(body: Mapping[str, Any], fields: Sequence[Field]) -> dict[str, Any]:
    """Check and coerce ``fields`` (in model order, errors collected); unknown keys are ignored."""
    errors: list[dict[str, Any]] = []
    values: dict[str, Any] = {}
    for spec in fields:
        loc = ["body", spec.name]
        if spec.name not in body:
            if spec.required:
                errors.append(_err("missing", loc, "Field required"))
            continue
        value = body[spec.name]
        if value is None and spec.nullable and not spec.required:
            values[spec.name] = None
            continue
        coerced, problems = _coerce(spec.kind, value, loc)
        errors += problems
        values[spec.name] = coerced
    if errors:
        raise _invalid(errors)
    return values


def json_body(request: Request) -> dict[str, Any]:
    """FastAPI's body handling: missing -> 422, non-JSON content type -> 422, bad JSON -> 422."""
    if not request.body:
        raise _invalid([_err("missing", ["body"], "Field required")])
    content_type = (request.header("content-type") or "").lower()
    if content_type and "json" not in content_type:
        raise _invalid(
            [
                _err(
                    "model_attributes_type",
                    ["body"],
                    "Input should be a valid dictionary or object to extract fields from",
                )
            ]
        )
    try:
        body = json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _invalid(
            [_err("json_invalid", ["body", getattr(exc, "pos", 0)], "JSON decode error")]
        ) from None
    if body is None:
        raise _invalid([_err("missing", ["body"], "Field required")])
    if not isinstance(body, dict):  # the real proxy crashes on a JSON array or scalar body
        raise _Reply(
            Response(500, {"error": {"message": "Internal server error", "type": "internal_server_error"}})
        )
    return body


def query_int(
    request: Request,
    name: str,
    default: int,
    errors: list[dict[str, Any]],
    *,
    ge: int = 1,
    le: int | None = None,
) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    loc = ["query", name]
    value, problems = _coerce_number("int", raw, loc)
    if problems:
        errors += problems
        return default
    if value < ge:
        errors.append(_err("greater_than_equal", loc, f"Input should be greater than or equal to {ge}"))
    elif le is not None and value > le:
        errors.append(_err("less_than_equal", loc, f"Input should be less than or equal to {le}"))
    return value


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


def _check_id_or_email(body: Mapping[str, Any]) -> None:
    """The before-validator of member_delete and user/update requests."""
    if body.get("user_id") is None and body.get("user_email") is None:
        raise _invalid(
            [_err("value_error", ["body"], "Value error, Either user id or user email must be provided")]
        )


# ---------------------------------------------------------------------------------------- views


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


_ROUTER_SETTINGS_NULLS = (
    "routing_strategy_args",
    "routing_strategy",
    "routing_groups",
    "retry_policy",
    "model_group_retry_policy",
    "model_group_affinity_config",
    "allowed_fails",
    "cooldown_time",
    "num_retries",
    "timeout",
    "max_retries",
    "retry_after",
    "fallbacks",
    "context_window_fallbacks",
)


def new_user_response(
    user: Mapping[str, Any], secret: str | None, teams: list[str] | None, key_created_at: str | None
) -> dict[str, Any]:
    """/user/new answers with a key-generation response; without a key most key fields are null."""
    keyed = secret is not None
    router = {
        **dict.fromkeys(_ROUTER_SETTINGS_NULLS),
        "model_group_alias": {},
        "enable_tag_filtering": None,
        "weights": None,
        "tag_routing_prefix": None,
        "optional_pre_call_checks": None,
        "fallback_on_unsupported_params": None,
    }
    body: dict[str, Any] = {
        "key_alias": None,
        "duration": None,
        "models": user["models"],
        "spend": 0.0,
        "max_budget": user["max_budget"],
        "user_id": user["user_id"],
        "team_id": None,
        "agent_id": None,
        "max_parallel_requests": user["max_parallel_requests"],
        "metadata": user["metadata"],
        "tpm_limit": user["tpm_limit"],
        "rpm_limit": user["rpm_limit"],
        "budget_duration": user["budget_duration"],
        "budget_limits": None,
        "allowed_cache_controls": [],
        "config": {},
        "permissions": {},
        "model_max_budget": {} if keyed else None,
        "budget_fallbacks": {} if keyed else None,
        "model_rpm_limit": None,
        "model_tpm_limit": None,
        "mcp_rpm_limit": None,
        "tag_rpm_limit": None,
        "guardrails": None,
        "policies": None,
        "prompts": None,
        "blocked": None,
        "aliases": {},
        "object_permission": None,
        "key": secret or "",
        "tpd_limit": None,
        "default_estimated_output_tokens": None,
        "default_estimated_output_tokens_per_model": None,
        "budget_id": None,
        "end_user_budget_id": None,
        "tags": None,
        "disable_global_guardrails": None,
        "enable_prompt_caching": None,
        "throttle_on_budget_exceeded": None,
        "enforced_params": None,
        "allowed_routes": [],
        "allowed_passthrough_routes": None,
        "denied_passthrough_routes": None,
        "allowed_vector_store_indexes": None,
        "rpm_limit_type": None,
        "tpm_limit_type": None,
        "router_settings": router if keyed else None,
        "access_group_ids": [] if keyed else None,
        "key_name": f"sk-...{secret[-4:]}" if secret else None,
        "key_type": None,
        "expires": None,
        "token_id": None,
        "organization_id": None,
        "project_id": None,
        "litellm_budget_table": None,
        "token": None,
        "created_by": None,
        "updated_by": None,
        "created_at": key_created_at if keyed else None,
        "updated_at": key_created_at if keyed else None,
        "user_email": user["user_email"],
        "user_role": user["user_role"],
        "teams": teams,
        "user_alias": user["user_alias"],
    }
    return body


def mask_user_id(user_id: str) -> str:
    """LiteLLM's masking of the caller's id in admin-only errors: 6 visible in front, 2 at the end."""
    if len(user_id) <= 4:
        return "***"
    if len(user_id) <= 8:
        return "*" * len(user_id)
    return f"{user_id[:6]}{'*' * (len(user_id) - 8)}{user_id[-2:]}"


def mask_key(key: str) -> str:
    return f"{key[:4]}****{key[-4:]}" if len(key) > 8 else "****"


# ---------------------------------------------------------------------------------------- caller


@dataclass(frozen=True)
class Caller:
    user_id: str | None
    role: str
    master: bool = False

    @property
    def admin(self) -> bool:
        return self.role == "proxy_admin"

    @property
    def admin_view(self) -> bool:
        return self.role in ("proxy_admin", "proxy_admin_viewer")


def _strip_scheme(value: str, *, strict: bool) -> str:
    for prefix in ("Bearer ", "Basic ", "bearer "):
        if value.startswith(prefix):
            return value.replace(prefix, "")
    return "" if strict else value


def presented_key(request: Request) -> str | None:
    """Which key the request carries: x-litellm-api-key wins over Authorization, then the
    Azure/Anthropic/Google style headers. "" means an Authorization header without a scheme."""
    custom = request.header("x-litellm-api-key")
    if custom:
        return _strip_scheme(custom, strict=False)
    authorization = request.header("authorization")
    if authorization:
        return _strip_scheme(authorization, strict=True)
    for name in ("api-key", "x-api-key", "x-goog-api-key", "ocp-apim-subscription-key"):
        value = request.header(name)
        if value:
            return value
    return None


# ---------------------------------------------------------------------------------------- emulator


class _Route(NamedTuple):
    handler: Callable[[Request, Caller | None], Response]
    auth: bool = True


class LiteLLMEmulator(Emulator):
    """The LiteLLM admin API on 127.0.0.1, in a background thread.

    ``member_add_limit``: a /team/member_add that would create or link more members than this
    fails with the real proxy's 500 "Transaction already closed" and commits nothing.
    """

    def __init__(
        self,
        master_key: str = "sk-test-master",
        latency: float = 0.0,
        faults: FaultInjector | None = None,
        member_add_limit: int | None = 500,
        *,
        port: int = 0,
        state: LiteLLMState | None = None,
    ) -> None:
        self.master_key = master_key
        self.member_add_limit = member_add_limit
        self.state = state or LiteLLMState()
        self.server = EmulatorServer(
            self.handle, latency=latency, faults=faults, port=port, fault_response=litellm_fault_response
        )
        self._routes: dict[tuple[str, str], _Route] = {
            ("GET", "/health/readiness"): _Route(self._readiness, auth=False),
            ("GET", "/health/liveliness"): _Route(self._liveliness, auth=False),
            ("GET", "/health/readiness/details"): _Route(self._readiness_details),
            ("GET", "/key/info"): _Route(self._key_info),
            ("POST", "/team/new"): _Route(self._team_new),
            ("POST", "/team/update"): _Route(self._team_update),
            ("POST", "/team/block"): _Route(self._team_block),
            ("POST", "/team/unblock"): _Route(self._team_unblock),
            ("POST", "/team/delete"): _Route(self._team_delete),
            ("GET", "/team/info"): _Route(self._team_info),
            ("GET", "/team/list"): _Route(self._team_list),
            ("GET", "/v2/team/list"): _Route(self._team_list_v2),
            ("POST", "/team/member_add"): _Route(self._member_add),
            ("POST", "/team/member_delete"): _Route(self._member_delete),
            ("POST", "/user/new"): _Route(self._user_new),
            ("GET", "/user/info"): _Route(self._user_info),
            ("GET", "/user/list"): _Route(self._user_list),
            ("POST", "/user/update"): _Route(self._user_update),
            ("POST", "/user/delete"): _Route(self._user_delete),
        }
        self._paths = {path for _, path in self._routes}

    # ------------------------------------------------------------------ lifecycle

    def write_calls(self) -> list[LoggedRequest]:
        """Logged POST requests (every LiteLLM admin write is a POST)."""
        return self.server.requests(["POST"])

    # ------------------------------------------------------------------ dispatch

    def handle(self, request: Request) -> Response:
        route = self._routes.get((request.method, request.path))
        if route is None:
            if request.path in self._paths:
                return Response(405, {"detail": "Method Not Allowed"})
            return Response(404, {"detail": "Not Found"})
        try:
            caller = self._authenticate(request) if route.auth else None
            return route.handler(request, caller)
        except _Reply as reply:
            return reply.response

    def _authenticate(self, request: Request) -> Caller:
        key = presented_key(request)
        if key is None:
            raise _Reply(auth_error(401, "Authentication Error, No api key passed in."))
        if key == "":
            raise _Reply(
                auth_error(
                    401, "Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix."
                )
            )
        if key == self.master_key:
            return Caller(MASTER_USER_ID, "proxy_admin", master=True)
        owner = self.state.key_owner(key)
        if owner is None and not key.startswith("sk-"):
            raise _Reply(
                auth_error(
                    401,
                    f"LiteLLM Virtual Key expected. Received={mask_key(key)}, expected to start with 'sk-'.",
                )
            )
        if owner is None:
            raise _Reply(
                proxy_error(
                    401, "Authentication Error, Invalid API key provided.", "token_not_found_in_db", "key"
                )
            )
        caller = Caller(owner["user_id"], owner["user_role"] or "internal_user")
        if not caller.admin and request.path in ADMIN_ONLY_ROUTES:
            raise _Reply(
                auth_error(
                    401,
                    (
                        "Authentication Error, Only proxy admin can be used to generate, delete, update info "
                        f"for new keys/users/teams. Route={request.path}. Your role={caller.role}. "
                        f"Your user_id={mask_user_id(caller.user_id or '')}"
                    ),
                )
            )
        return caller

    @staticmethod
    def _is_team_admin(caller: Caller, team: Mapping[str, Any]) -> bool:
        return caller.admin or any(
            m["user_id"] == caller.user_id and m["role"] == "admin" for m in team["members_with_roles"]
        )

    def _edit_access(self, caller: Caller, team: Mapping[str, Any]) -> str:
        if caller.admin:
            return "unrestricted"
        # team admins may edit nothing until a proxy admin enables fields in the UI settings
        return "team_admin_disabled" if self._is_team_admin(caller, team) else "none"

    def _member_gate(self, caller: Caller, route: str) -> Callable[[dict[str, Any]], None]:
        def check(team: dict[str, Any]) -> None:
            if not self._is_team_admin(caller, team):
                raise _Reply(
                    detail_error(
                        403,
                        "Call not allowed. User not proxy admin OR team admin. "
                        f"route={route}, team_id={team['team_id']}",
                    )
                )

        return check

    # ------------------------------------------------------------------ health

    def _readiness(self, request: Request, caller: Caller | None) -> Response:
        return Response(200, {"status": "healthy", "db": "connected"})

    def _readiness_details(self, request: Request, caller: Caller | None) -> Response:
        # 1.108.7 moved the version here from /health/readiness; admins and admin viewers only.
        assert caller is not None
        if not caller.admin_view:
            return auth_error(
                401,
                "Authentication Error, Only proxy admin can be used to generate, delete, update info for new "
                f"keys/users/teams. Route={request.path}. Your role={caller.role}. "
                f"Your user_id={mask_user_id(caller.user_id or '')}",
            )
        return Response(200, {"status": "healthy", "db": "connected", "cache": None,
                              "litellm_version": EMULATED_VERSION})

    def _liveliness(self, request: Request, caller: Caller | None) -> Response:
        return Response(200, json.dumps("I'm alive!").encode(), {"Content-Type": "application/json"})

    # ------------------------------------------------------------------ teams

    def _team_new(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        data = validate_fields(json_body(request), TEAM_FIELDS)
        try:
            team = self.state.new_team(data, caller.user_id)
        except TeamExists as exc:
            return proxy_error(
                400,
                _py_dict("error", f"Team id = {exc.team_id} already exists. Please use a different team id."),
            )
        except OrganizationNotFound as exc:
            return proxy_error(400, f"Organization not found for organization_id={exc.organization_id}")
        except InvalidBudget as exc:
            return proxy_error(
                400,
                _py_dict(
                    "error", f"{exc.field_name} must be a non-negative finite number. Received: {exc.value}"
                ),
            )
        return Response(200, team)

    def _team_update(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        body = json_body(request)
        data = validate_fields(body, TEAM_UPDATE_FIELDS)
        team_id = data.pop("team_id")
        if not caller.admin:  # checked before the team's existence: an unknown team is also a 403
            return self._refuse_team_update(caller, team_id)
        try:
            team = self.state.update_team(team_id, data)
        except TeamNotFound:
            return proxy_error(404, _py_dict("error", f"Team not found, passed team_id={team_id}"))
        except NoModelsConfigured:
            return proxy_error(500, _py_dict("error", "No models configured on proxy"))
        except InvalidBudget as exc:
            return proxy_error(
                400,
                _py_dict(
                    "error", f"{exc.field_name} must be a non-negative finite number. Received: {exc.value}"
                ),
            )
        return Response(200, {"team_id": team_id, "data": team_db_row(team)})

    def _refuse_team_update(self, caller: Caller, team_id: str) -> Response:
        try:
            team = self.state.team(team_id)
        except TeamNotFound:
            team = None
        if team is not None and self._is_team_admin(caller, team):
            return proxy_error(
                403,
                "Team admins on this proxy cannot edit team settings. Ask a proxy admin to enable fields "
                "under Settings > UI > Team admin editable fields.",
            )
        return proxy_error(403, "You do not have access to this team")

    def _team_block(self, request: Request, caller: Caller | None) -> Response:
        return self._set_blocked(request, blocked=True)

    def _team_unblock(self, request: Request, caller: Caller | None) -> Response:
        return self._set_blocked(request, blocked=False)

    def _set_blocked(self, request: Request, *, blocked: bool) -> Response:
        team_id = validate_fields(json_body(request), (Field("team_id", "str", required=True),))["team_id"]
        try:
            team = self.state.set_blocked(team_id, blocked)
        except TeamNotFound:
            return detail_error(404, f"Team not found, passed team_id={team_id}")
        return Response(200, team_db_row(team))

    def _team_delete(self, request: Request, caller: Caller | None) -> Response:
        data = validate_fields(json_body(request), (Field("team_ids", "list_str", required=True),))
        team_ids = list(dict.fromkeys(data["team_ids"]))  # the real request model dedupes the ids
        try:
            deleted = self.state.delete_teams(team_ids)
        except TeamNotFound as exc:
            return detail_error(404, f"Team not found, passed team_id={exc.team_id}")
        return Response(200, {"deleted_teams": deleted})

    def _team_info(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        team_id = request.query.get("team_id")
        if team_id is None:
            return auth_error(422, _py_dict("message", "Malformed request. No team id passed in."))
        try:
            team = self.state.team(team_id)
        except TeamNotFound:
            return auth_error(404, _py_dict("message", f"Team not found, passed team id: {team_id}."))
        if not caller.admin_view and not any(
            m["user_id"] == caller.user_id for m in team["members_with_roles"]
        ):
            return auth_error(
                403, _py_dict("error", f"User={caller.user_id} not authorized to access this team={team_id}")
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
                "caller_edit_access": {"kind": self._edit_access(caller, team)},
            }
        )
        memberships = [{**m, "budget_source": "none"} for m in self.state.team_memberships(team_id)]
        return Response(
            200, {"team_id": team_id, "team_info": info, "keys": [], "team_memberships": memberships}
        )

    def _team_list(self, request: Request, caller: Caller | None) -> Response:
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

    def _team_list_v2(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        errors: list[dict[str, Any]] = []
        page = query_int(request, "page", 1, errors)
        page_size = query_int(request, "page_size", 10, errors, le=100)
        if errors:
            raise _invalid(errors)
        q = request.query
        user_id = q.get("user_id") or None
        if not caller.admin_view and user_id != caller.user_id:
            return detail_error(
                401, f"Only admin users can query all teams/other teams. Your user role={caller.role}"
            )
        status = q.get("status")
        if status is not None and status != "deleted":
            return detail_error(400, "Invalid status value. Currently only 'deleted' is supported.")
        empty = {"teams": [], "total": 0, "page": page, "page_size": page_size, "total_pages": 0}
        if user_id is not None:
            try:
                if status is None and not self.state.check_team_list_user(user_id, q.get("team_id") or None):
                    return Response(200, empty)
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
        return Response(
            200,
            {
                "teams": rows,
                "total": total,
                "page": page,
                "page_size": page_size,
                "total_pages": -(-total // page_size),
            },
        )

    # ------------------------------------------------------------------ members

    def _member_add(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        body = json_body(request)
        members, single = _parse_member_add(body)
        data = validate_fields(
            body,
            (
                Field("team_id", "str", required=True),
                Field("max_budget_in_team", "float"),
                Field("budget_duration", "str"),
                Field("allowed_models", "list_str"),
            ),
        )
        team_id = data["team_id"]
        try:
            result = self.state.add_members(
                team_id,
                members,
                single=single,
                limit=self.member_add_limit,
                caller_can_manage=self._member_gate(caller, "/team/member_add"),
                may_create_users=caller.admin,
            )
        except PremiumAdmin as exc:
            return detail_error(
                400, f"Assigning team admins is a premium feature. Got={exc.member.py_str()}. " + PREMIUM_TAIL
            )
        except TeamNotFound:
            return detail_error(
                404, f"Team doesn't exist in db. Team={team_id}. Create team via `/team/new` call."
            )
        except UnknownUserIds as exc:
            listed, more = ", ".join(exc.user_ids[:10]), len(exc.user_ids) - 10
            return detail_error(
                403,
                f"Only proxy admins can add a user_id that does not exist yet: {listed}"
                f"{f' and {more} more' if more > 0 else ''}. Add the member by user_email to invite a new "
                "user, or ask a proxy admin to create the user first.",
            )
        except AlreadyInTeam as exc:
            return proxy_error(400, _already_in_team_message(exc), "team_member_already_in_team", "member")
        except IdentityMismatch as exc:
            return detail_error(
                400,
                f"user_email '{exc.user_email}' and user_id '{exc.user_id}' do not belong to the same user.",
            )
        except AmbiguousEmail as exc:
            return detail_error(
                400, f"Multiple users found with email '{exc.user_email}'. Please use 'user_id' instead."
            )
        except TransactionClosed as exc:
            return detail_error(
                500,
                f"Unable to add user - {exc.member.py_str()}, to team - {exc.team_id}, "
                "for reason - Transaction already closed: Could not perform operation.",
            )
        return Response(
            200,
            {
                **result.team,
                "updated_users": result.updated_users,
                "updated_team_memberships": result.memberships,
            },
        )

    def _member_delete(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        body = json_body(request)
        _check_id_or_email(body)
        data = validate_fields(
            body,
            (Field("user_id", "str"), Field("user_email", "str"), Field("team_id", "str", required=True)),
        )
        team_id = data["team_id"]
        try:
            team = self.state.delete_member(
                team_id,
                data.get("user_id"),
                data.get("user_email"),
                caller_can_manage=self._member_gate(caller, "/team/member_delete"),
            )
        except TeamNotFound:
            return detail_error(400, f"Team id={team_id} does not exist in db")
        except MemberNotInTeam:
            return detail_error(400, "User not found in team")
        return Response(200, team)

    # ------------------------------------------------------------------ users

    def _user_new(self, request: Request, caller: Caller | None) -> Response:
        data = validate_fields(json_body(request), USER_FIELDS)
        try:
            user, secret, teams = self.state.new_user(data)
        except UserExists as exc:
            return proxy_error(409, _py_dict("error", f"User with {exc.label} {exc.value} already exists"))
        keys = self.state.user_keys(user["user_id"])
        created_at = keys[-1]["created_at"] if keys else None
        return Response(200, new_user_response(user, secret, teams, created_at))

    def _key_info(self, request: Request, caller: Caller | None) -> Response:
        """The calling key's row (the ``key`` parameter is not emulated). The master key is not a
        row in the database: the real proxy answers it with 404 "Key not found in database"."""
        row = self.state.key_row(presented_key(request) or "")
        if row is None:
            return proxy_error(404, "Key not found in database", "not_found_error", "key")
        token = row["token"]
        return Response(200, {"key": token, "info": {k: v for k, v in row.items() if k != "token"}})

    def _user_info(self, request: Request, caller: Caller | None) -> Response:
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

    def _user_list(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        errors: list[dict[str, Any]] = []
        page = query_int(request, "page", 1, errors)
        page_size = query_int(request, "page_size", 25, errors, le=100)
        if errors:
            raise _invalid(errors)
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
        return Response(
            200,
            {
                "users": users,
                "total": total,
                "page": page,
                "page_size": page_size,
                "total_pages": -(-total // page_size),
            },
        )

    def _user_update(self, request: Request, caller: Caller | None) -> Response:
        body = json_body(request)
        _check_id_or_email(body)
        data = validate_fields(body, USER_UPDATE_FIELDS)
        try:
            user = self.state.update_user(data)
        except CreatedByEmailQuirk:
            # the real proxy inserts the user, then fails while shaping its answer
            return auth_error(400, "Authentication Error, 'LiteLLM_UserTable' object has no attribute 'get'")
        return Response(200, {"user_id": user["user_id"], "data": user_info_row(user, for_update=True)})

    def _user_delete(self, request: Request, caller: Caller | None) -> Response:
        data = validate_fields(json_body(request), (Field("user_ids", "list_str", required=True),))
        try:
            count = self.state.delete_users(data["user_ids"])
        except UserNotFound as exc:
            return detail_error(404, f"User not found, passed user_id={exc.user_id}")
        return Response(200, count)  # a bare JSON number


def _parse_member_add(body: Mapping[str, Any]) -> tuple[list[Member], bool]:
    """member_add's request model builds each Member in its __init__, so the first bad member's
    errors are all that comes back (loc ``body.<field>``), before any other field is looked at."""
    raw = body.get("member")
    if isinstance(raw, dict | list):
        items = [raw] if isinstance(raw, dict) else raw
        for item in items:
            if isinstance(item, dict):
                errors = _member_errors(item, ["body"], field_loc=["body"])
                if errors:
                    raise _invalid(errors)
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise _invalid(
                    [
                        _err(
                            "value_error",
                            ["body", "member", "list[Member]", i],
                            "Value error, input needs to be a dictionary",
                        ),
                        _err(
                            "value_error",
                            ["body", "member", "Member"],
                            "Value error, input needs to be a dictionary",
                        ),
                    ]
                )
        return [Member(i.get("user_id"), i.get("user_email"), i["role"]) for i in items], isinstance(
            raw, dict
        )
    errors = (
        [_err("missing", ["body", "member"], "Field required")]
        if raw is None
        else [
            _err("list_type", ["body", "member", "list[Member]"], "Input should be a valid list"),
            _err("value_error", ["body", "member", "Member"], "Value error, input needs to be a dictionary"),
        ]
    )
    if not isinstance(body.get("team_id"), str):
        errors += (
            [_err("missing", ["body", "team_id"], "Field required")]
            if "team_id" not in body
            else [_err("string_type", ["body", "team_id"], "Input should be a valid string")]
        )
    raise _invalid(errors)


def _already_in_team_message(exc: AlreadyInTeam) -> str:
    roster = ", ".join(m.py_repr() for m in exc.roster)
    if exc.single and exc.member is not None:
        return (
            f"User already in team. Member: user_id={exc.member.user_id}, "
            f"user_email={exc.member.user_email}. Existing members=[{roster}]"
        )
    return f"All users are already in team. Existing members=[{roster}]"

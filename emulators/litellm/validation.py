"""FastAPI-style request parsing: JSON bodies, query integers, and the pydantic (lax mode)
checks and coercions of body fields, with the real proxy's 422 ``{"detail": [...]}`` bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from emulators.http_base import Request, Response
from emulators.litellm.errors import Reply
from emulators.litellm.state.users import USER_ROLES

ROLE_LITERAL_MSG = (
    "Input should be <LitellmUserRoles.PROXY_ADMIN: 'proxy_admin'>, <LitellmUserRoles.PROXY_ADMIN_VIEW_ONLY: "
    "'proxy_admin_viewer'>, <LitellmUserRoles.INTERNAL_USER: 'internal_user'> or "
    "<LitellmUserRoles.INTERNAL_USER_VIEW_ONLY: 'internal_user_viewer'>"
)
_BOOL_TRUE = {"1", "on", "t", "true", "y", "yes"}
_BOOL_FALSE = {"0", "off", "f", "false", "n", "no"}


class Field(NamedTuple):
    name: str
    kind: str  # str | int | float | bool | dict | list | list_str | role | teams | members
    required: bool = False
    nullable: bool = True


def err(type_: str, loc: Sequence[Any], msg: str) -> dict[str, Any]:
    return {"type": type_, "loc": list(loc), "msg": msg}


def invalid(errors: list[dict[str, Any]]) -> Reply:
    return Reply(Response(422, {"detail": errors}))


def coerce_number(kind: str, value: Any, loc: list[Any]) -> tuple[Any, list[dict[str, Any]]]:
    """pydantic's lax int/float rules, which is what FastAPI applies to request bodies."""
    label = "integer" if kind == "int" else "number"
    if isinstance(value, (bool, int | float)):
        if kind == "int" and isinstance(value, float) and not value.is_integer():
            return None, [
                err(
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
                err(
                    f"{kind}_parsing",
                    loc,
                    f"Input should be a valid {label}, unable to parse string as an {label}"
                    if kind == "int"
                    else f"Input should be a valid {label}, unable to parse string as a {label}",
                )
            ]
    return None, [err(f"{kind}_type", loc, f"Input should be a valid {label}")]


def _coerce_bool(value: Any, loc: list[Any]) -> tuple[Any, list[dict[str, Any]]]:
    if isinstance(value, bool):
        return value, []
    if isinstance(value, int) and value in (0, 1):
        return bool(value), []
    if isinstance(value, str) and value.strip().lower() in _BOOL_TRUE | _BOOL_FALSE:
        return value.strip().lower() in _BOOL_TRUE, []
    if isinstance(value, str | int | float):
        return None, [err("bool_parsing", loc, "Input should be a valid boolean, unable to interpret input")]
    return None, [err("bool_type", loc, "Input should be a valid boolean")]


def _coerce(kind: str, value: Any, loc: list[Any]) -> tuple[Any, list[dict[str, Any]]]:
    if kind == "str":
        ok = isinstance(value, str)
        return (value, []) if ok else (None, [err("string_type", loc, "Input should be a valid string")])
    if kind in ("int", "float"):
        return coerce_number(kind, value, loc)
    if kind == "bool":
        return _coerce_bool(value, loc)
    if kind == "dict":
        ok = isinstance(value, dict)
        return (value, []) if ok else (None, [err("dict_type", loc, "Input should be a valid dictionary")])
    if kind == "list":
        ok = isinstance(value, list)
        return (value, []) if ok else (None, [err("list_type", loc, "Input should be a valid list")])
    if kind == "list_str":
        if not isinstance(value, list):
            return None, [err("list_type", loc, "Input should be a valid list")]
        errors = [e for i, v in enumerate(value) for e in _coerce("str", v, [*loc, i])[1]]
        return value, errors
    if kind == "role":
        ok = value in USER_ROLES
        return (value, []) if ok else (None, [err("literal_error", loc, ROLE_LITERAL_MSG)])
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
        err("list_type", [*loc, "list[str]"], "Input should be a valid list"),
        err("list_type", [*loc, "list[NewUserRequestTeam]"], "Input should be a valid list"),
    ]


def _coerce_member_list(value: Any, loc: list[Any]) -> tuple[Any, list[dict[str, Any]]]:
    """/team/new ``members_with_roles``: plain pydantic list[Member] errors."""
    if not isinstance(value, list):
        return None, [err("list_type", loc, "Input should be a valid list")]
    errors: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        errors += member_errors(item, [*loc, i], field_loc=[*loc, i])
    return value, errors


def member_errors(item: Any, loc: list[Any], field_loc: list[Any]) -> list[dict[str, Any]]:
    """Member's before-validator runs first (dict, id or e-mail), then its fields."""
    if not isinstance(item, dict):
        return [err("value_error", loc, "Value error, input needs to be a dictionary")]
    if item.get("user_id") is None and item.get("user_email") is None:
        return [err("value_error", loc, "Value error, Either user id or user email must be provided")]
    errors: list[dict[str, Any]] = []
    for name in ("user_id", "user_email"):
        if item.get(name) is not None:
            errors += _coerce("str", item[name], [*field_loc, name])[1]
    if "role" not in item:
        errors.append(err("missing", [*field_loc, "role"], "Field required"))
    elif item["role"] not in ("admin", "user"):
        errors.append(err("literal_error", [*field_loc, "role"], "Input should be 'admin' or 'user'"))
    return errors


def validate_fields(body: Mapping[str, Any], fields: Sequence[Field]) -> dict[str, Any]:
    """Check and coerce ``fields`` (in model order, errors collected); unknown keys are ignored."""
    errors: list[dict[str, Any]] = []
    values: dict[str, Any] = {}
    for spec in fields:
        loc = ["body", spec.name]
        if spec.name not in body:
            if spec.required:
                errors.append(err("missing", loc, "Field required"))
            continue
        value = body[spec.name]
        if value is None and spec.nullable and not spec.required:
            values[spec.name] = None
            continue
        coerced, problems = _coerce(spec.kind, value, loc)
        errors += problems
        values[spec.name] = coerced
    if errors:
        raise invalid(errors)
    return values


def json_body(request: Request) -> dict[str, Any]:
    """FastAPI's body handling: missing -> 422, non-JSON content type -> 422, bad JSON -> 422."""
    if not request.body:
        raise invalid([err("missing", ["body"], "Field required")])
    content_type = (request.header("content-type") or "").lower()
    if content_type and "json" not in content_type:
        raise invalid(
            [
                err(
                    "model_attributes_type",
                    ["body"],
                    "Input should be a valid dictionary or object to extract fields from",
                )
            ]
        )
    try:
        body = json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid(
            [err("json_invalid", ["body", getattr(exc, "pos", 0)], "JSON decode error")]
        ) from None
    if body is None:
        raise invalid([err("missing", ["body"], "Field required")])
    if not isinstance(body, dict):  # the real proxy crashes on a JSON array or scalar body
        raise Reply(
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
    value, problems = coerce_number("int", raw, loc)
    if problems:
        errors += problems
        return default
    if value < ge:
        errors.append(err("greater_than_equal", loc, f"Input should be greater than or equal to {ge}"))
    elif le is not None and value > le:
        errors.append(err("less_than_equal", loc, f"Input should be less than or equal to {le}"))
    return value


def check_id_or_email(body: Mapping[str, Any]) -> None:
    """The before-validator of member_delete and user/update requests."""
    if body.get("user_id") is None and body.get("user_email") is None:
        raise invalid(
            [err("value_error", ["body"], "Value error, Either user id or user email must be provided")]
        )

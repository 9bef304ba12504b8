"""Virtual keys as the API shows them: the key-generation response that /user/new answers with,
the key routes: /key/generate, /key/list, /key/block and /key/unblock, and /v1/models, the
cheapest way to use a key (a proxy that serves no model answers an empty list; a blocked key 401)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulators.http_base import Request, Response
from emulators.litellm.auth import Caller
from emulators.litellm.errors import detail_error, proxy_error
from emulators.litellm.router import Route
from emulators.litellm.state import LiteLLMState
from emulators.litellm.state.errors import InvalidKeyFormat, KeyNotFound, UserNotFound
from emulators.litellm.state.keys import KeyQuery
from emulators.litellm.validation import Field, invalid, json_body, query_int, validate_fields

GENERATE_FIELDS = (Field("user_id", "str"), Field("team_id", "str"))
BLOCK_FIELDS = (Field("key", "str", nullable=False),)


class KeyRoutes:
    """The key routes the sync uses, for a proxy admin (the master key)."""

    def __init__(self, state: LiteLLMState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/key/generate", self.generate),
            Route("GET", "/key/list", self.list),
            Route("POST", "/key/block", lambda r, c: self.block(r, c, blocked=True)),
            Route("POST", "/key/unblock", lambda r, c: self.block(r, c, blocked=False)),
        ]

    def generate(self, request: Request, caller: Caller | None) -> Response:
        data = validate_fields(json_body(request), GENERATE_FIELDS)
        try:
            secret, row = self.state.generate_key(data.get("user_id") or "", data.get("team_id"))
        except UserNotFound as exc:
            return detail_error(400, f"User not found, passed user_id={exc.user_id}")
        return Response(200, {**row, "key": secret})

    def list(self, request: Request, caller: Caller | None) -> Response:
        errors: list[dict[str, Any]] = []
        page = query_int(request, "page", 1, errors)
        size = query_int(request, "size", 10, errors, le=100)
        if errors:
            raise invalid(errors)
        q = request.query
        query = KeyQuery(page, size, q.get("user_id"), q.get("team_id"), q.get("sort_by") or "created_at",
                         q.get("sort_order", "desc"))
        rows, total = self.state.list_keys(query)
        full = q.get("return_full_object", "false").lower() == "true"
        return Response(200, {"keys": rows if full else [r["token"] for r in rows], "total_count": total,
                              "current_page": page, "total_pages": -(-total // size)})

    def block(self, request: Request, caller: Caller | None, *, blocked: bool) -> Response:
        key = validate_fields(json_body(request), BLOCK_FIELDS)["key"]
        try:
            return Response(200, self.state.set_key_blocked(key, blocked))
        except InvalidKeyFormat:
            return proxy_error(400, "Invalid key format.", "bad_request_error", "key")
        except KeyNotFound:
            return proxy_error(404, "Key not found.", "not_found_error", "key")

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

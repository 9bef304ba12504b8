"""Who is calling: the key a request presents, the caller it maps to, and LiteLLM's auth
errors (401 in auth itself, 403 for team routes a caller may not manage).

Auth runs after routing and before body validation, as on the real proxy: a malformed body
from an unknown key is a 401.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulators.http_base import Request
from emulators.litellm.errors import Reply, auth_error, detail_error, proxy_error
from emulators.litellm.state import LiteLLMState
from emulators.litellm.state.base import MASTER_USER_ID

# Routes a non-admin virtual key is turned away from in auth itself (probed on 1.108.7).
ADMIN_ONLY_ROUTES = frozenset(
    {"/team/new", "/team/block", "/team/unblock", "/team/delete", "/user/new", "/user/update",
     "/user/bulk_update", "/user/delete"}
)


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


def authenticate(request: Request, master_key: str, state: LiteLLMState) -> Caller:
    key = presented_key(request)
    if key is None:
        raise Reply(auth_error(401, "Authentication Error, No api key passed in."))
    if key == "":
        raise Reply(
            auth_error(
                401, "Authentication Error, Malformed API Key passed in. Ensure Key has `Bearer ` prefix."
            )
        )
    if key == master_key:
        return Caller(MASTER_USER_ID, "proxy_admin", master=True)
    owner = state.key_owner(key)
    if owner is None and not key.startswith("sk-"):
        raise Reply(
            auth_error(
                401,
                f"LiteLLM Virtual Key expected. Received={mask_key(key)}, expected to start with 'sk-'.",
            )
        )
    if owner is None:
        raise Reply(
            proxy_error(
                401, "Authentication Error, Invalid API key provided.", "token_not_found_in_db", "key"
            )
        )
    if state.key_blocked(key):
        message = "Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin."
        raise Reply(auth_error(401, message))
    caller = Caller(owner["user_id"], owner["user_role"] or "internal_user")
    if not caller.admin and request.path in ADMIN_ONLY_ROUTES:
        raise Reply(
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


def is_team_admin(caller: Caller, team: Mapping[str, Any]) -> bool:
    return caller.admin or any(
        m["user_id"] == caller.user_id and m["role"] == "admin" for m in team["members_with_roles"]
    )


def member_gate(caller: Caller, route: str) -> Callable[[dict[str, Any]], None]:
    """The team-admin check member_add and member_delete run once the team is read."""

    def check(team: dict[str, Any]) -> None:
        if not is_team_admin(caller, team):
            raise Reply(
                detail_error(
                    403,
                    "Call not allowed. User not proxy admin OR team admin. "
                    f"route={route}, team_id={team['team_id']}",
                )
            )

    return check


def mask_user_id(user_id: str) -> str:
    """LiteLLM's masking of the caller's id in admin-only errors: 6 visible in front, 2 at the end."""
    if len(user_id) <= 4:
        return "***"
    if len(user_id) <= 8:
        return "*" * len(user_id)
    return f"{user_id[:6]}{'*' * (len(user_id) - 8)}{user_id[-2:]}"


def mask_key(key: str) -> str:
    return f"{key[:4]}****{key[-4:]}" if len(key) > 8 else "****"

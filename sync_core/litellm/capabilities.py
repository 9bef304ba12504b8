"""What a LiteLLM proxy is and offers, read without changing anything: its version, whether the
configured key is a proxy admin, and which bulk routes it has (1.80.0 has none of them)."""

from __future__ import annotations

from dataclasses import dataclass

from sync_core.errors import TargetError
from sync_core.litellm.client import LiteLLMClient

# POST-only routes; a placeholder team id is enough to ask whether the path exists.
BULK_ROUTES = (
    "/management/v1/users/bulk",
    "/management/v1/users/bulk_delete",
    "/management/v1/teams/{team_id}/members/bulk_update",
    "/management/v1/teams/{team_id}/members/bulk_delete",
)


@dataclass(frozen=True)
class KeyRole:
    admin: bool
    who: str  # "the master key", or the key's user and role, for people to read


async def proxy_version(client: LiteLLMClient) -> str | None:
    """The proxy's version: /health/readiness has it up to 1.80; 1.108 moved it to .../details
    (a proxy-admin route)."""
    return _version(await client.get("/health/readiness")) \
        or _version(await client.get("/health/readiness/details"))


def _version(health: object) -> str | None:
    version = health.get("litellm_version") if isinstance(health, dict) else None
    return str(version) if version else None


async def team_admins_allowed(client: LiteLLMClient) -> bool | None:
    """Whether the proxy accepts team admins: LiteLLM gives them to licensed proxies only
    ("Assigning team admins is a premium feature"). 1.108 says so at /health/license, 1.80 in
    /health/readiness's ``license``. None: the proxy does not say (or could not be asked)."""
    try:
        return _has_licence(await client.get("/health/license"))
    except TargetError as exc:
        if exc.status != 404:
            return None
    try:
        readiness = await client.get("/health/readiness")
    except TargetError:
        return None
    return _has_licence(readiness.get("license") if isinstance(readiness, dict) else None)


def _has_licence(answer: object) -> bool | None:
    has = answer.get("has_license") if isinstance(answer, dict) else None
    return has if isinstance(has, bool) else None


async def key_role(client: LiteLLMClient) -> KeyRole:
    """Whether the client's key is a proxy admin. /user/info without a user id is no help: for the
    master key it describes `default_user_id`, an internal_user. The master key is the one key
    that authenticates but is not in the key table (/key/info: 404); any other key's role is its
    user's role."""
    try:
        key = await client.get("/key/info")
    except TargetError as exc:
        if exc.status == 404:
            return KeyRole(True, "the master key")
        raise
    user_id = (key.get("info") or {}).get("user_id") if isinstance(key, dict) else None
    if not user_id:
        return KeyRole(False, "a key that belongs to no user (a team or service key)")
    try:
        user = await client.get("/user/info", params={"user_id": user_id})
    except TargetError as exc:
        if exc.status == 404:  # /key/generate accepts a user_id that names no user
            return KeyRole(False, f"a key of user {user_id!r}, who is not a LiteLLM user")
        raise
    role = (user.get("user_info") or {}).get("user_role") if isinstance(user, dict) else None
    return KeyRole(role == "proxy_admin", f"a key of user {user_id!r} with role {role}")


async def bulk_routes(client: LiteLLMClient) -> list[str]:
    """The BULK_ROUTES the proxy has."""
    return [route for route in BULK_ROUTES if await client.offers(route.format(team_id="probe"))]

"""LiteLLM user roles from the enterprise app's app roles, as LiteLLM's Microsoft SSO sets them.

The directory says which LiteLLM role values each Entra user holds (Entra's token rule: direct
assignments, and assignments of groups the user is a direct member of). Several resolve to the most
privileged, as SSO does. A role the sync set (recorded in the user's marker) that no longer applies
falls back to the default; a role nobody in Entra gives is someone's hand-made choice and stays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sync_core.model import LiteLLMUser

# Most privileged first.
ROLE_ORDER = ("proxy_admin", "proxy_admin_viewer", "org_admin", "internal_user", "internal_user_viewer")
# What LiteLLM's SSO gives a new user with no role and no default_internal_user_params.user_role.
SSO_NEW_USER_ROLE = "internal_user_viewer"
# SSO can give org_admin, but /user/new and /user/update refuse it (422): where it is the strongest
# role a user holds, their role is left as it is.
NOT_SETTABLE = frozenset({"org_admin"})


def strongest(roles: Iterable[str]) -> str | None:
    ranked = [r for r in ROLE_ORDER if r in set(roles)]
    return ranked[0] if ranked else None


@dataclass(frozen=True)
class RoleChange:
    role: str | None  # the user_role to write; None leaves it
    recorded: str | None  # the role the marker records as set by the sync afterwards


def role_change(user: LiteLLMUser, roles: Iterable[str], fallback: str) -> RoleChange:
    wanted = strongest(roles)
    if wanted in NOT_SETTABLE:
        return RoleChange(None, user.marker.get("role"))
    if wanted is not None:
        return RoleChange(wanted if user.role != wanted else None, wanted)
    recorded = user.marker.get("role")
    if recorded is not None and user.role == recorded and user.role != fallback:
        return RoleChange(fallback, None)
    # Never set by the sync, or changed by hand since: left as it is, and no longer the sync's.
    return RoleChange(None, None)

"""LiteLLM roles from the enterprise app's app roles, as Entra gives them in a sign-in token.

An assignment's ``appRoleId`` names one of the app's ``appRoles``; that role's ``value`` is what
Entra puts in the token's ``roles`` claim, and LiteLLM's Microsoft SSO takes a value that is a
LiteLLM role as the user's ``user_role``. A user gets the roles of their own assignments and of
the assignments of the groups they are a DIRECT member of: Entra does not pass a group's
assignment on to the members of groups nested in it. The default access role (the zero GUID)
has no value, and disabled app roles and values that are not LiteLLM roles give nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

LITELLM_ROLES = frozenset(
    {"proxy_admin", "proxy_admin_viewer", "org_admin", "internal_user", "internal_user_viewer"})
DEFAULT_ROLE_ID = "00000000-0000-0000-0000-000000000000"


def litellm_role_values(app_roles: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """App role id -> value, for the enabled app roles whose value is a LiteLLM role."""
    return {str(role["id"]).lower(): role["value"] for role in app_roles
            if role.get("id") and role.get("value") in LITELLM_ROLES and role.get("isEnabled") is not False}


@dataclass(frozen=True)
class RoleGrants:
    """The LiteLLM role values the app's assignments give, by assigned principal."""

    users: Mapping[str, frozenset[str]] = field(default_factory=dict)  # directly assigned users
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)  # for the groups' direct members

    @staticmethod
    def of(role_ids: Mapping[str, Collection[str]], group_ids: Container[str],
           values: Mapping[str, str]) -> RoleGrants:
        """``role_ids``: principal -> the app role ids of its assignments; ``group_ids``: which
        principals are groups (the others are users); ``values``: litellm_role_values()."""
        users: dict[str, frozenset[str]] = {}
        groups: dict[str, frozenset[str]] = {}
        for principal, ids in role_ids.items():
            if granted := frozenset(values[i] for i in ids if i in values):
                (groups if principal in group_ids else users)[principal] = granted
        return RoleGrants(users, groups)

    def user_roles(self, direct_members: Mapping[str, Collection[str]],
                   known_users: Container[str]) -> dict[str, frozenset[str]]:
        """User id -> role values, for the users in ``known_users``. ``direct_members`` holds the
        direct user members of the groups in ``groups`` (a group left out gives no one a role)."""
        roles: dict[str, set[str]] = {u: set(v) for u, v in self.users.items() if u in known_users}
        for group, granted in self.groups.items():
            for user in direct_members.get(group, ()):
                if user in known_users:
                    roles.setdefault(user, set()).update(granted)
        return {user: frozenset(values) for user, values in roles.items()}

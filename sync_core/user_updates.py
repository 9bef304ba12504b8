"""The one update a LiteLLM user in scope may get per run: adopted (the sync's marker), the role
from Entra's app roles, and, for someone who came back, the keys the sync had blocked unblocked.

Folded into one UpdateUser because /user/update replaces metadata wholesale: two writes planned
from the same read would undo each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sync_core.actions import UpdateUser
from sync_core.model import EntraUser, LiteLLMUser, user_marker
from sync_core.roles import NOT_SETTABLE, role_change, strongest

_LEAVER_FIELDS = ("left_at", "left_reason", "blocked_keys")


def new_user_fields(entra_id: str, roles: frozenset[str] | None, defaults: Mapping[str, Any],
                    app: str | None) -> dict[str, Any]:
    """What CreateUser writes besides the defaults: the marker, and the role from Entra if any."""
    role = strongest(roles) if roles is not None else None
    role = None if role in NOT_SETTABLE else role
    fields = {"app": app, "role": role}
    marker = user_marker(entra_id, **{k: v for k, v in fields.items() if v is not None})
    params = {**defaults, "metadata": {**defaults.get("metadata", {}), **marker}}
    return params | {"user_role": role} if role else params


def user_update(account: EntraUser, user: LiteLLMUser, roles: frozenset[str] | None,
                fallback: str, app: str | None) -> UpdateUser | None:
    """``roles``: the user's LiteLLM app-role values, or None when the sync does not manage roles.
    ``app``: the enterprise app this sync serves, recorded in the marker."""
    changes: dict[str, Any] = {"app": app}
    reasons = []
    adopt = not user.ours(app)
    if adopt:
        reasons.append(f"matched to Entra user {account.display_name!r}")
    role = None
    if roles is not None:
        change = role_change(user, roles, fallback)
        role, changes["role"] = change.role, change.recorded
        if role is not None:
            reasons.append(f"app role {role}" if change.recorded else "the app role the sync gave is gone")
    returned = any(user.marker.get(f) for f in _LEAVER_FIELDS)
    unblock = tuple(user.marker.get("blocked_keys", ())) if returned else ()
    if returned:
        changes |= dict.fromkeys(_LEAVER_FIELDS)
        reasons.append("in scope again")
    metadata = user.with_marker(account.id, **changes)
    if role is None and metadata == user.metadata:
        return None
    return UpdateUser(user_id=user.user_id, email=user.email or account.email, metadata=metadata, role=role,
                      old_role=user.role if role is not None else None, adopt=adopt, unblock_keys=unblock,
                      returned=returned, reason="; ".join(reasons) or "records the role Entra gives")

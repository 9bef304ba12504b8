"""Who has left: managed LiteLLM users whose Entra account is disabled, deleted or out of scope.

Only users the sync manages (its marker in their metadata) are ever considered; a user it never
matched is never touched. Someone is out only on positive evidence from a complete read: with any
group, the assignment list or the lookup of absent accounts unread, nobody is made a leaver. A
deleted account is one Graph answered 404 for, never one whose read failed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sync_core.actions import Action, BlockUser, DeleteUser
from sync_core.model import Directory, LiteLLMState, LiteLLMUser


class LeaverAction(StrEnum):
    BLOCK = "block"
    KEEP = "keep"
    DELETE = "delete"


class Why(StrEnum):
    DISABLED = "disabled"
    DELETED = "deleted"
    OUT_OF_SCOPE = "out of scope"


def in_scope(directory: Directory) -> frozenset[str]:
    """Entra ids that are enabled members of an assigned group (as read) or assigned directly."""
    enabled = {u for u, user in directory.users.items() if user.enabled}
    members = set(directory.direct_user_ids)
    for group in directory.groups.values():
        members |= group.member_ids or set()
    return frozenset(members & enabled)


def why_out(entra_id: str, directory: Directory, scope: Collection[str]) -> Why | None:
    """Why this Entra user is out, or None when in scope or not known (never looked up)."""
    if entra_id in scope:
        return None
    if entra_id in directory.users:
        account = directory.users[entra_id]
    elif entra_id in directory.lookups:
        account = directory.lookups[entra_id]
    else:
        return None
    if account is None:
        return Why.DELETED
    return Why.OUT_OF_SCOPE if account.enabled else Why.DISABLED


def to_look_up(directory: Directory, litellm: LiteLLMState, *, app: str | None,
               known_leavers: bool = True) -> set[str]:
    """Entra ids of managed users that the directory does not mention: Graph is asked about them.
    Without ``known_leavers``, not those already recorded as leavers (their keys are checked again
    on full reads only)."""
    users = [u for u in litellm.users.values() if u.ours(app)]
    ids = {u.marker["entra_id"] for u in users if known_leavers or "left_at" not in u.marker}
    return ids - directory.users.keys()


def leavers(directory: Directory, litellm: LiteLLMState, kept: Collection[str],
            app: str | None) -> Iterator[tuple[LiteLLMUser, Why]]:
    """Managed users who are out, except the LiteLLM users in ``kept`` (in scope for someone)."""
    if not directory.complete:
        return
    scope = in_scope(directory)
    for user_id, user in sorted(litellm.users.items()):
        if user.ours(app) and user_id not in kept:
            why = why_out(user.marker["entra_id"], directory, scope)
            if why is not None:
                yield user, why


def leaver_actions(directory: Directory, litellm: LiteLLMState, kept: Collection[str], *, app: str | None,
                   action: LeaverAction, delete_after: timedelta, now: datetime) -> Iterator[Action]:
    if action is LeaverAction.KEEP:
        return
    for user, why in leavers(directory, litellm, kept, app):
        keys = litellm.keys.get(user.user_id)
        if keys is None:  # not listed: what they hold is unknown
            continue
        left_at = _left_at(user)
        if action is LeaverAction.DELETE and left_at is not None and now - left_at >= delete_after:
            yield DeleteUser(user_id=user.user_id, email=user.email, why=why, keys=len(keys),
                             reason=f"a leaver ({why}) since {left_at:%Y-%m-%d}")
            continue
        open_keys = [k for k in keys if not k.blocked]
        if open_keys or left_at is None:
            present = {k.token for k in keys}
            blocked = [t for t in user.marker.get("blocked_keys", ()) if t in present]
            blocked += [k.token for k in open_keys]
            metadata = user.with_marker(user.marker["entra_id"], blocked_keys=blocked,
                                        left_at=(left_at or now).isoformat(),
                                        left_reason=user.marker.get("left_reason", why.value))
            yield BlockUser(user_id=user.user_id, email=user.email, why=why,
                            block_keys=tuple(k.token for k in open_keys),
                            key_names=tuple(k.name or k.token[:12] for k in open_keys), metadata=metadata,
                            reason=_REASONS[why])


def needs_keys(directory: Directory, litellm: LiteLLMState, kept: Collection[str], *, app: str | None,
               known_leavers: bool = True) -> set[str]:
    """The LiteLLM users whose keys the planner must see: the leavers (without ``known_leavers``,
    only those not yet recorded as leavers). A leaver whose keys are not listed is left as is."""
    return {user.user_id for user, _ in leavers(directory, litellm, kept, app)
            if known_leavers or "left_at" not in user.marker}


def _left_at(user: LiteLLMUser) -> datetime | None:
    try:
        left_at = datetime.fromisoformat(str(user.marker["left_at"]))
    except (KeyError, ValueError):
        return None
    return left_at if left_at.tzinfo else left_at.replace(tzinfo=UTC)


_REASONS = {
    Why.DISABLED: "the Entra account is disabled",
    Why.DELETED: "the Entra account was deleted",
    Why.OUT_OF_SCOPE: "no longer an enabled member of an assigned group, nor assigned directly",
}

"""Who has left: managed LiteLLM users whose Entra account is disabled, deleted or out of scope.

Only users the sync manages (its marker in their metadata) are ever considered; a user it never
matched is never touched. Someone is out only on positive evidence from a complete read: with any
group, the assignment list or the lookup of absent accounts unread, nobody is made a leaver. A
deleted account is one Graph answered 404 for, never one whose read failed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sync_core.actions import Action, BlockUser, DeleteUser
from sync_core.model import Directory, LiteLLMState, LiteLLMUser
from sync_core.scope import Via, memberships


class LeaverAction(StrEnum):
    BLOCK = "block"
    KEEP = "keep"
    DELETE = "delete"


class Why(StrEnum):
    DISABLED = "disabled"
    DELETED = "deleted"
    OUT_OF_SCOPE = "out of scope"
    UNASSIGNED = "unassigned"  # out of scope, and assigned directly at the last complete run


def in_scope(directory: Directory) -> frozenset[str]:
    """Entra ids that are enabled members of an assigned group (as read) or assigned directly."""
    return frozenset(memberships(directory))


def why_out(entra_id: str, directory: Directory, scope: Collection[str],
            was: Mapping[str, Via] | None = None) -> Why | None:
    """Why this Entra user is out, or None when in scope or not known (never looked up). ``was``:
    who was in scope at the last complete run, and why (scope.py), when known."""
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
    if not account.enabled:
        return Why.DISABLED
    direct = was is not None and entra_id in was and was[entra_id].direct
    return Why.UNASSIGNED if direct else Why.OUT_OF_SCOPE


def _judged(litellm: LiteLLMState, app: str | None, recheck: Collection[str] | None) -> list[LiteLLMUser]:
    """The managed users judged this run: all with ``recheck`` None (a full read), else those not
    yet recorded as leavers and those in ``recheck`` (recorded leavers are looked at again only
    when there is a reason: scope.py)."""
    return [u for u in litellm.users.values() if u.ours(app)
            and (recheck is None or "left_at" not in u.marker or u.user_id in recheck)]


def to_look_up(directory: Directory, litellm: LiteLLMState, *, app: str | None,
               recheck: Collection[str] | None = None) -> set[str]:
    """Entra ids of managed users judged this run that the directory does not mention: Graph is
    asked about them."""
    return {u.marker["entra_id"] for u in _judged(litellm, app, recheck)} - directory.users.keys()


def leavers(directory: Directory, litellm: LiteLLMState, kept: Collection[str],
            app: str | None, was: Mapping[str, Via] | None = None) -> Iterator[tuple[LiteLLMUser, Why]]:
    """Managed users who are out, except the LiteLLM users in ``kept`` (in scope for someone)."""
    if not directory.complete:
        return
    scope = in_scope(directory)
    for user_id, user in sorted(litellm.users.items()):
        if user.ours(app) and user_id not in kept:
            why = why_out(user.marker["entra_id"], directory, scope, was)
            if why is not None:
                yield user, why


def leaver_actions(directory: Directory, litellm: LiteLLMState, kept: Collection[str], *, app: str | None,
                   action: LeaverAction, delete_after: timedelta, now: datetime,
                   was: Mapping[str, Via] | None = None) -> Iterator[Action]:
    if action is LeaverAction.KEEP:
        return
    for user, why in leavers(directory, litellm, kept, app, was):
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
            yield BlockUser(user_id=user.user_id, email=user.email, why=why, left_at=left_at or now,
                            recorded=left_at is not None,
                            block_keys=tuple(k.token for k in open_keys),
                            key_names=tuple(k.name or k.token[:12] for k in open_keys), metadata=metadata,
                            reason=_REASONS[why])


def needs_keys(directory: Directory, litellm: LiteLLMState, kept: Collection[str], *, app: str | None,
               recheck: Collection[str] | None = None) -> set[str]:
    """The LiteLLM users whose keys the planner must see: the leavers judged this run (see
    ``_judged``). A leaver whose keys are not listed is left as is."""
    judged = {u.user_id for u in _judged(litellm, app, recheck)}
    return {user.user_id for user, _ in leavers(directory, litellm, kept, app) if user.user_id in judged}


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
    Why.UNASSIGNED: "no longer assigned to the app directly, nor an enabled member of an assigned group",
}

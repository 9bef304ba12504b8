"""Who was in scope, remembered between runs: leavers come from what changed, not from rosters.

A run that reads Entra completely saves the people in scope (each with why: the assigned groups
they are an enabled member of, a direct assignment) in the ``scope`` state document, next to the
delta snapshot. The next run compares: everyone in scope then and not now is judged as on a full
read (their LiteLLM row, Graph's word on their account, their keys), whatever the rosters say;
everyone in scope now and not then has their row read, so a return by any path is seen.

The document also says what the sync has not finished: ``recheck`` names the LiteLLM users whose
leaver action (block, delete, return) failed, was held by the circuit breaker or was about to be
applied by a run that then died (it is written before the apply), and ``keys_since`` is the start
of the last run that looked at every key made before it (new keys of leavers are listed from then
on). A run whose Entra read was incomplete changes neither the scope nor ``keys_since``: nobody is
lost by a run that could not see everything, and the first complete run after it catches up.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sync_core.actions import Action, BlockUser, DeleteUser, UpdateUser
from sync_core.model import Directory, LiteLLMState

if TYPE_CHECKING:  # the state package imports the Azure Storage SDK
    from sync_core.state.base import StateBackend

log = logging.getLogger(__name__)

DOCUMENT = "scope"
VERSION = 1


@dataclass(frozen=True)
class Via:
    """Why someone is in scope, and the LiteLLM user standing for them where it is not their Entra id."""

    groups: frozenset[str] = frozenset()
    direct: bool = False
    user_id: str | None = None


@dataclass(frozen=True)
class SavedScope:
    # Entra id -> why in scope, at the last complete run; None before any complete run was saved.
    people: Mapping[str, Via] | None = None
    recheck: frozenset[str] = frozenset()  # LiteLLM user ids to judge again
    keys_since: datetime | None = None
    app: str | None = None

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"version": VERSION, "app": self.app, "recheck": sorted(self.recheck),
                               "keys_since": self.keys_since.isoformat() if self.keys_since else None}
        if self.people is not None:
            groups = sorted({g for via in self.people.values() for g in via.groups})
            index = {g: n for n, g in enumerate(groups)}
            doc["groups"] = groups
            doc["people"] = {person: _entry(via, index) for person, via in sorted(self.people.items())}
        return doc

    @staticmethod
    def from_doc(doc: Mapping[str, Any] | None, app: str | None) -> SavedScope:
        """The saved scope; an empty one (nothing known: the rosters and the next full read find
        leavers, as before any scope was saved) for no document, another version or another app,
        or a document that does not parse."""
        if not doc or doc.get("version") != VERSION or doc.get("app") != app:
            return SavedScope(app=app)
        try:
            people = None
            if "people" in doc:
                groups = doc["groups"]
                people = {str(person): _via(entry, groups) for person, entry in doc["people"].items()}
            since = doc.get("keys_since")
            return SavedScope(people, frozenset(map(str, doc.get("recheck", ()))),
                              datetime.fromisoformat(since) if since else None, app)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            log.warning("the %r state document is not usable (%s: %s); this run starts without it",
                        DOCUMENT, type(exc).__name__, exc)
            return SavedScope(app=app)

    def gone(self, now: Collection[str]) -> dict[str, Via]:
        """Those in scope at the last complete run and not in ``now``."""
        return {p: via for p, via in (self.people or {}).items() if p not in now}

    def arrived(self, now: Iterable[str]) -> set[str]:
        """Those in ``now`` who were not in scope at the last complete run (nobody when unknown)."""
        return set() if self.people is None else {p for p in now if p not in self.people}


async def load(store: StateBackend | None, app: str | None) -> SavedScope:
    """The saved scope, or an empty one (nothing known) without a store."""
    return SavedScope.from_doc(await store.load_state(DOCUMENT) if store is not None else None, app)


async def save(store: StateBackend, scope: SavedScope) -> None:
    await store.save_state(DOCUMENT, scope.to_doc())


def _via(entry: Mapping[str, Any], groups: Sequence[str]) -> Via:
    return Via(frozenset(groups[n] for n in entry.get("g", ())), bool(entry.get("d")), entry.get("u"))


def _entry(via: Via, index: Mapping[str, int]) -> dict[str, Any]:
    entry: dict[str, Any] = {"g": sorted(index[g] for g in via.groups)}
    if via.direct:
        entry["d"] = 1
    if via.user_id is not None:
        entry["u"] = via.user_id
    return entry


def memberships(directory: Directory) -> dict[str, Via]:
    """Entra id -> why in scope, for every enabled member of an assigned group (as read) and every
    enabled user assigned directly. Members of a group whose read failed are not known here."""
    enabled = {u for u, user in directory.users.items() if user.enabled}
    groups: dict[str, set[str]] = {}
    for group in directory.groups.values():
        for member in (group.member_ids or frozenset()) & enabled:
            groups.setdefault(member, set()).add(group.id)
    direct = directory.direct_user_ids & enabled
    return {person: Via(frozenset(groups.get(person, ())), person in direct)
            for person in groups.keys() | direct}


def to_recheck(saved: SavedScope, directory: Directory) -> set[str]:
    """LiteLLM users to judge as on a full read this run, recorded leavers included: those in scope
    at the last complete run and not now (when every group was read: a member of a group whose
    read failed is not gone), and those the last run left to recheck."""
    gone = saved.gone(memberships(directory).keys()) if directory.complete else {}
    return {via.user_id or person for person, via in gone.items()} | saved.recheck


def rows_to_read(saved: SavedScope, directory: Directory, litellm: LiteLLMState) -> set[str]:
    """LiteLLM users whose rows this run reads besides what the targeted read has: those to
    recheck, and those in scope now and not then known from a roster only (a return, by any path)."""
    arrived = saved.arrived(memberships(directory).keys())
    roster_only = {p for p in arrived if p in litellm.users and not litellm.users[p].row_read}
    return to_recheck(saved, directory) | roster_only


def _subjects(actions: Iterable[Action]) -> set[str]:
    """The LiteLLM users of leaver actions: blocked, deleted, or back in scope."""
    return {a.user_id for a in actions
            if isinstance(a, BlockUser | DeleteUser) or (isinstance(a, UpdateUser) and a.returned)}


def before_apply(saved: SavedScope, actions: Sequence[Action]) -> SavedScope | None:
    """What to save before applying: the users about to get a leaver action are rechecked by the
    next run should this one die half-way (None: nobody new to add)."""
    subjects = _subjects(actions) - saved.recheck
    return replace(saved, recheck=saved.recheck | subjects) if subjects else None


def after_run(saved: SavedScope, directory: Directory, people: Mapping[str, str], actions: Sequence[Action],
              applied: Sequence[bool], started_at: datetime) -> SavedScope:
    """The scope a finished run saves. ``people``: Entra id -> the LiteLLM user standing for them,
    for those in scope; ``applied``: per action. After a complete read: who is in scope now, and
    the users whose leaver action did not go through to recheck. After an incomplete one, the
    scope and ``keys_since`` stay, and so does every recheck (nobody could be judged)."""
    unsettled = _subjects(a for a, done in zip(actions, applied, strict=True) if not done)
    if not directory.complete:
        return replace(saved, recheck=saved.recheck | unsettled)
    now = {person: replace(via, user_id=_unless_same(people.get(person), person))
           for person, via in memberships(directory).items()}
    return SavedScope(now, frozenset(unsettled), started_at, saved.app)


def _unless_same(user_id: str | None, person: str) -> str | None:
    return None if user_id == person else user_id

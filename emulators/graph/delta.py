"""Delta queries for /groups/delta and /users/delta, computed from the tenant's change log.

A delta token is the query (collection, $select, $filter ids) plus a position in the change log
and the emulator's token epoch; an incremental round reports what changed after that position.
Pages are sized in "entries" (one per object plus one per member reference), so a big group's
members@delta spills onto the next page and the same group id shows up on several pages, as
Graph does (graph.md §1.7).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from emulators.graph.odata import GraphError, bad_request, check_select
from emulators.graph.tenant import (
    ODATA_TYPE,
    PROPERTIES,
    USER_DEFAULT_SELECT,
    Change,
    Collection,
    DirectoryObject,
    Kind,
    Tenant,
)

MAX_FILTER_IDS = 50
_ID_EQ = re.compile(r"\s*id\s+eq\s+'([^']*)'\s*", re.IGNORECASE)
_KIND = {"groups": "group", "users": "user"}


def sync_state_not_found() -> GraphError:
    return GraphError(
        400,
        "syncStateNotFound",
        "The sync state generation is not found. "
        "The delta token is expired and data must be synchronized again.",
    )


@dataclass(frozen=True)
class DeltaQuery:
    collection: Collection
    select: tuple[str, ...] | None
    ids: tuple[str, ...] | None

    @property
    def tracks_members(self) -> bool:
        return self.collection == "groups" and self.select is not None and "members" in self.select

    @property
    def properties(self) -> tuple[str, ...]:
        """Scalar properties each reported object carries (besides id)."""
        if self.select is None:
            return USER_DEFAULT_SELECT if self.collection == "users" else PROPERTIES["group"]
        return tuple(p for p in self.select if p not in ("members", "id"))

    def options(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.select is not None:
            out["$select"] = ",".join(self.select)
        if self.ids is not None:
            out["$filter"] = " or ".join(f"id eq '{i}'" for i in self.ids)
        return out


def parse_delta_query(collection: Collection, query: dict[str, str]) -> DeltaQuery:
    for option in ("$expand", "$orderby", "$search"):
        if option in query:
            raise bad_request(f"{option} is not supported on {collection}/delta.", "Request_UnsupportedQuery")
    raw_select = query.get("$select")
    select = tuple(p.strip() for p in raw_select.split(",") if p.strip()) if raw_select else None
    kind = _KIND[collection]
    check_select(select, [kind], extra=("members",) if collection == "groups" else ())
    return DeltaQuery(collection, select, _parse_id_filter(query.get("$filter")))


def _parse_id_filter(text: str | None) -> tuple[str, ...] | None:
    # delta only accepts `id eq '..' or id eq '..'` (graph.md §1.7)
    if text is None:
        return None
    clauses = re.split(r"\s+or\s+", text.strip(), flags=re.IGNORECASE)
    ids = []
    for clause in clauses:
        match = _ID_EQ.fullmatch(clause)
        if match is None:
            raise bad_request(
                f"Unsupported filter on delta: '{text}'. Only 'id eq' clauses joined by 'or'.",
                "Request_UnsupportedQuery",
            )
        ids.append(match.group(1).lower())
    if len(ids) > MAX_FILTER_IDS:
        raise bad_request(f"Too many ids in $filter: {len(ids)} (at most {MAX_FILTER_IDS}).")
    return tuple(ids)


@dataclass(frozen=True)
class DeltaToken:
    query: DeltaQuery
    position: int
    epoch: int

    def encode(self) -> str:
        q = self.query
        data = {"c": q.collection, "s": q.select, "i": q.ids, "p": self.position, "e": self.epoch}
        return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, collection: Collection, epoch: int, newest: int) -> DeltaToken:
        """Decode and validate; expired (older epoch), foreign or garbled tokens are syncStateNotFound."""
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            query = DeltaQuery(data["c"], _opt_tuple(data["s"]), _opt_tuple(data["i"]))
            parsed = cls(query, int(data["p"]), int(data["e"]))
        except (ValueError, KeyError, TypeError):
            raise sync_state_not_found() from None
        if parsed.epoch != epoch or query.collection != collection or not 0 <= parsed.position <= newest:
            raise sync_state_not_found()
        return parsed


def _opt_tuple(value: list[str] | None) -> tuple[str, ...] | None:
    return tuple(value) if value is not None else None


@dataclass
class DeltaEntry:
    body: dict[str, Any]
    members: list[dict[str, Any]] | None = None  # members@delta references; None = no such key


def initial_entries(tenant: Tenant, query: DeltaQuery) -> list[DeltaEntry]:
    """The first round: every current object in scope with its selected properties and all members."""
    kind: Kind = _KIND[query.collection]  # type: ignore[assignment]
    objects = sorted(tenant.of_kind(kind), key=lambda o: o.id)
    if query.ids is not None:
        objects = [o for o in objects if o.id in query.ids]
    return [_full_entry(tenant, query, obj) for obj in objects]


def _full_entry(tenant: Tenant, query: DeltaQuery, obj: DirectoryObject) -> DeltaEntry:
    body = {"id": obj.id, **{p: obj.get(p) for p in query.properties}}
    members = None
    if query.tracks_members:
        members = [_ref(m.id, m.kind) for m in tenant.direct_members(obj.id)] or None
    return DeltaEntry(body, members)


def _ref(member_id: str, kind: Kind, removed: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"@odata.type": ODATA_TYPE[kind], "id": member_id}
    if removed:
        ref["@removed"] = {"reason": "deleted"}  # Graph uses "deleted" for removal from the group too
    return ref


@dataclass
class _Pending:
    """What happened to one object since the token's position."""

    created: bool = False
    removed: str | None = None
    changed: set[str] = field(default_factory=set)
    members: dict[str, tuple[Kind, bool]] = field(default_factory=dict)  # member id -> (kind, now present)

    def apply(self, change: Change) -> None:
        if change.action == "created":
            self.created = True
        elif change.action == "updated":
            self.changed |= change.properties
        elif change.action == "removed":
            self.removed = change.reason
        elif change.member_id is not None and change.member_kind is not None:
            self.members[change.member_id] = (change.member_kind, change.action == "member_added")


def incremental_entries(tenant: Tenant, query: DeltaQuery, since: int, *, minimal: bool) -> list[DeltaEntry]:
    """Objects changed after ``since``; ``minimal`` (Prefer: return=minimal) keeps only changed properties."""
    pending: dict[str, _Pending] = {}
    for change in tenant.changes_since(since):
        if change.collection == query.collection and (query.ids is None or change.object_id in query.ids):
            pending.setdefault(change.object_id, _Pending()).apply(change)
    entries = (_changed_entry(tenant, query, object_id, p, minimal) for object_id, p in pending.items())
    return [e for e in entries if e is not None]


def _changed_entry(
    tenant: Tenant, query: DeltaQuery, object_id: str, p: _Pending, minimal: bool
) -> DeltaEntry | None:
    obj = tenant.get(object_id)
    if obj is None:
        return DeltaEntry({"id": object_id, "@removed": {"reason": p.removed or "deleted"}})
    if p.created:
        return _full_entry(tenant, query, obj)
    relevant = [name for name in query.properties if name in p.changed]
    refs = [_ref(mid, kind, not present) for mid, (kind, present) in p.members.items()]
    refs = refs if query.tracks_members else []
    if not relevant and not refs:
        return None  # only unselected properties changed: Graph does not report the object
    shown = relevant if minimal else query.properties
    return DeltaEntry({"id": obj.id, **{name: obj.get(name) for name in shown}}, refs or None)


def paginate(entries: list[DeltaEntry], capacity: int) -> list[list[dict[str, Any]]]:
    """Split entries into pages of at most ``capacity`` entries (objects + member references)."""
    capacity = max(2, capacity)
    pages: list[list[dict[str, Any]]] = [[]]
    room = capacity

    def add(item: dict[str, Any], size: int) -> None:
        nonlocal room
        if size > room and pages[-1]:
            pages.append([])
            room = capacity
        pages[-1].append(item)
        room -= size

    for entry in entries:
        if entry.members is None:
            add(entry.body, 1)
            continue
        refs = entry.members
        while refs:
            if room < 2 and pages[-1]:
                pages.append([])
                room = capacity
            chunk, refs = refs[: room - 1], refs[room - 1 :]
            add({**entry.body, "members@delta": chunk}, 1 + len(chunk))
    return pages

"""Incremental reads of Entra with Graph delta queries.

The reader keeps a snapshot between runs: every tracked group's direct members (users and
nested groups), the users seen, and two delta links (groups and users, tenant-wide). A run
re-reads the app's assignments (they have no delta), replays what changed since the links,
reads only what is new (a newly assigned or newly nested group, a new member's profile), and
computes transitive membership locally. It returns the same Directory a full read would. App
roles come from the assignments and the direct members the snapshot keeps: no extra reads.

Safety: a snapshot is saved only after a complete read; anything odd (an expired or reset
delta link, a failed delta page, a changed setting, an old snapshot) falls back to a full read,
which takes fresh links first so changes made while it reads are replayed next time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sync_core import progress
from sync_core.errors import SourceError
from sync_core.graph.reader import (
    USER_TYPE,
    Assignments,
    GraphReader,
    GraphSource,
    describe,
    role_members,
    with_app_roles,
)
from sync_core.graph.roles import RoleGrants
from sync_core.graph.wire import DirectoryObject, parse
from sync_core.model import Directory, EntraGroup, EntraUser

if TYPE_CHECKING:  # the state package imports the Azure Storage SDK
    from sync_core.state.base import StateBackend

log = logging.getLogger(__name__)

SNAPSHOT = "graph-delta"
VERSION = 1
GROUP_TYPE = "#microsoft.graph.group"
DELTA_USER_FIELDS = "displayName,mail,userPrincipalName,accountEnabled"


class DeltaUnusable(Exception):
    """The stored links cannot be used (expired, reset, failed): read everything instead."""


@dataclass
class Snapshot:
    key: str  # the settings the snapshot was taken under; another key means another snapshot
    full_at: str
    groups_link: str
    users_link: str
    members: dict[str, set[str]] = field(default_factory=dict)  # group -> direct user ids
    subgroups: dict[str, set[str]] = field(default_factory=dict)  # group -> direct group ids
    users: dict[str, EntraUser] = field(default_factory=dict)

    def to_doc(self) -> dict[str, Any]:
        return {
            "version": VERSION, "key": self.key, "full_at": self.full_at,
            "groups_link": self.groups_link, "users_link": self.users_link,
            "groups": {g: {"users": sorted(self.members[g]), "groups": sorted(self.subgroups.get(g, ()))}
                       for g in sorted(self.members)},
            "users": {u.id: [u.email, u.display_name, u.enabled] for u in self.users.values()},
        }

    @staticmethod
    def from_doc(doc: Mapping[str, Any]) -> Snapshot:
        groups = doc["groups"]
        return Snapshot(
            key=doc["key"], full_at=doc["full_at"],
            groups_link=doc["groups_link"], users_link=doc["users_link"],
            members={g: set(v["users"]) for g, v in groups.items()},
            subgroups={g: set(v["groups"]) for g, v in groups.items()},
            users={u: EntraUser(u, e, n, en) for u, (e, n, en) in doc["users"].items()},
        )


class DeltaReader:
    """A DirectoryReader that reads incrementally; see the module docstring."""

    incremental = True

    def __init__(self, reader: GraphReader, store: StateBackend, *, full_every: timedelta,
                 save: bool = True) -> None:
        self._reader = reader
        self._source: GraphSource = reader.source
        self._store = store
        self._full_every = full_every
        self._save = save  # False for dry runs: a plan must not move the links
        self.mode = "full"

    @property
    def requests(self) -> int:
        return self._reader.requests

    @property
    def throttled(self) -> int:
        return self._reader.throttled

    async def users_by_id(self, user_ids: Collection[str]) -> Mapping[str, EntraUser | None]:
        return await self._reader.users_by_id(user_ids)

    async def with_owners(self, directory: Directory, wanted: Callable[[str, str], bool]) -> Directory:
        return await self._reader.with_owners(directory, wanted)

    async def read(self, only_group_ids: frozenset[str] | None = None) -> Directory:
        if only_group_ids is not None:  # provision on demand: a plain full read of those groups
            return await self._reader.read(only_group_ids)
        snapshot = await self._usable_snapshot()
        if snapshot is not None:
            try:
                directory, complete = await self._incremental(snapshot)
                self.mode = "incremental"
            except DeltaUnusable as exc:
                log.warning("delta read not possible (%s); reading everything", exc)
                snapshot = None
        if snapshot is None:
            snapshot, directory, complete = await self._full()
            self.mode = "full"
        if complete and self._save:
            await self._store.save_state(SNAPSHOT, snapshot.to_doc())
        return directory

    # ------------------------------------------------------------------ snapshot handling

    @property
    def _key(self) -> str:
        s = self._source
        return f"{s.base_url}|{s.app_id}|{s.service_principal_id}|{s.nested_groups}|{s.email_attribute}"

    async def _usable_snapshot(self) -> Snapshot | None:
        doc = await self._store.load_state(SNAPSHOT)
        if not doc or doc.get("version") != VERSION or doc.get("key") != self._key:
            return None
        snapshot = Snapshot.from_doc(doc)
        if datetime.now(UTC) - datetime.fromisoformat(snapshot.full_at) > self._full_every:
            return None  # the scheduled full read: catches anything delta could have missed
        return snapshot

    # ------------------------------------------------------------------ full read

    async def _full(self) -> tuple[Snapshot, Directory, bool]:
        # Links first: changes made while we read are then replayed by the next run. Without
        # links the read still serves this run; it just is not kept.
        try:
            groups_link, users_link = await asyncio.gather(
                self._latest_link(f"{self._source.base_url}/groups/delta?$select=displayName,members"),
                self._latest_link(f"{self._source.base_url}/users/delta?$select={DELTA_USER_FIELDS}"))
        except Exception as exc:
            log.warning("cannot start delta tracking (%s); this run reads everything", describe(exc))
            groups_link = users_link = ""
        snapshot = Snapshot(self._key, datetime.now(UTC).isoformat(), groups_link, users_link)
        assigned = await self._reader.assignments()
        grants, problems = await self._reader.role_grants(assigned)
        failed = await self._read_groups(snapshot, assigned.groups.keys())
        await self._read_users(snapshot, assigned.users)
        directory = self._directory(snapshot, assigned, failed, grants, problems)
        return snapshot, directory, assigned.complete and not failed and bool(groups_link)

    async def _latest_link(self, url: str) -> str:
        return await self._delta_round(f"{url}&$deltatoken=latest", lambda item: None)

    async def _delta_round(self, link: str, apply: Callable[[Mapping[str, Any]], None]) -> str:
        """Apply every change of one delta round; returns the link for the next round."""

        def take(page: dict[str, Any]) -> None:
            for item in page.get("value", []):
                apply(item)

        last = await self._reader.read_pages(link, take)
        if "@odata.deltaLink" not in last:
            raise DeltaUnusable(f"a delta round from {link.split('?')[0]} ended without a deltaLink")
        return str(last["@odata.deltaLink"])

    async def _read_groups(self, snapshot: Snapshot, group_ids: Iterable[str]) -> dict[str, str]:
        """Read the direct members of these groups and, with nesting, of the groups inside them.
        Returns the groups whose read failed, with the error."""
        todo = [g for g in group_ids if g not in snapshot.members]
        with progress.stage(progress.GROUPS, 0):
            return await self._read_group_rounds(snapshot, todo)

    async def _read_group_rounds(self, snapshot: Snapshot, todo: list[str]) -> dict[str, str]:
        """One round per level of nesting: the groups found inside one round are the next's."""
        failed: dict[str, str] = {}
        while todo:
            progress.grow(progress.GROUPS, len(todo))
            results = await asyncio.gather(*(progress.counted(progress.GROUPS, self._direct_members(g))
                                             for g in todo), return_exceptions=True)
            found: set[str] = set()
            for group_id, result in zip(todo, results, strict=True):
                if isinstance(result, BaseException):
                    failed[group_id] = describe(result)
                    continue
                users, groups = result
                snapshot.members[group_id], snapshot.subgroups[group_id] = set(users), groups
                snapshot.users.update(users)
                found |= groups
            todo = [g for g in found if g not in snapshot.members and g not in failed] \
                if self._source.nested_groups else []
        return failed

    async def _direct_members(self, group_id: str) -> tuple[dict[str, EntraUser], set[str]]:
        users: dict[str, EntraUser] = {}
        groups: set[str] = set()

        def take(page: dict[str, Any]) -> None:
            for item in page["value"]:
                kind = parse(DirectoryObject, item).odata_type
                if kind == USER_TYPE:
                    user = self._reader.remember(item)
                    users[user.id] = user
                elif kind == GROUP_TYPE:
                    groups.add(str(item["id"]).lower())

        # Direct members only: nesting is flattened from the snapshot, so changes inside a
        # nested group (which groups/delta reports on that group) are seen too.
        await self._reader.read_pages(self._source.members_url(group_id, "members"), take)
        return users, groups

    async def _read_users(self, snapshot: Snapshot, user_ids: Iterable[str]) -> None:
        missing = [u for u in user_ids if u not in snapshot.users]
        for user in await self._reader.read_users(missing):
            snapshot.users[user.id] = user

    # ------------------------------------------------------------------ incremental read

    async def _incremental(self, snapshot: Snapshot) -> tuple[Directory, bool]:
        assigned = await self._reader.assignments()
        grants, problems = await self._reader.role_grants(assigned)
        try:
            snapshot.groups_link = await self._delta_round(
                snapshot.groups_link, lambda item: self._group_change(snapshot, item))
            snapshot.users_link = await self._delta_round(
                snapshot.users_link, lambda item: self._user_change(snapshot, item))
        except Exception as exc:
            raise DeltaUnusable(describe(exc)) from None
        new_members = {u for us in snapshot.members.values() for u in us} - snapshot.users.keys()
        failed = await self._read_groups(snapshot, assigned.groups.keys())
        failed |= await self._read_groups(snapshot, {g for gs in snapshot.subgroups.values() for g in gs})
        await self._read_users(snapshot, new_members | assigned.users)
        self._prune(snapshot, assigned.groups.keys())
        directory = self._directory(snapshot, assigned, failed, grants, problems)
        return directory, assigned.complete and not failed and not (new_members - snapshot.users.keys())

    @staticmethod
    def _group_change(snapshot: Snapshot, item: Mapping[str, Any]) -> None:
        group_id = str(item["id"]).lower()
        if group_id not in snapshot.members:
            return  # a group we do not track (its first read takes care of it)
        if "@removed" in item:
            del snapshot.members[group_id]
            snapshot.subgroups.pop(group_id, None)
            return
        for change in item.get("members@delta", []):
            member, kind = str(change["id"]).lower(), change.get("@odata.type")
            target = snapshot.members[group_id] if kind == USER_TYPE else \
                snapshot.subgroups.setdefault(group_id, set()) if kind == GROUP_TYPE else None
            if target is None:
                continue
            if "@removed" in change:
                target.discard(member)
            else:
                target.add(member)

    def _user_change(self, snapshot: Snapshot, item: Mapping[str, Any]) -> None:
        user_id = str(item["id"]).lower()
        if user_id not in snapshot.users:
            return  # not a member of anything we track
        if "@removed" in item:
            del snapshot.users[user_id]
            for users in snapshot.members.values():
                users.discard(user_id)
            return
        self._reader.forget(user_id)
        snapshot.users[user_id] = self._reader.remember({"id": user_id, **item})

    @staticmethod
    def _prune(snapshot: Snapshot, assigned: Iterable[str]) -> None:
        """Forget groups no longer reachable from an assigned group."""
        keep: set[str] = set()
        todo = [g for g in assigned if g in snapshot.members]
        while todo:
            group = todo.pop()
            if group not in keep:
                keep.add(group)
                todo.extend(g for g in snapshot.subgroups.get(group, ()) if g in snapshot.members)
        for group in set(snapshot.members) - keep:
            del snapshot.members[group]
            snapshot.subgroups.pop(group, None)

    # ------------------------------------------------------------------ the result

    def _directory(self, snapshot: Snapshot, assigned: Assignments, failed: Mapping[str, str],
                   grants: RoleGrants, problems: list[str]) -> Directory:
        groups: dict[str, EntraGroup] = {}
        for group_id, name in assigned.groups.items():
            members, broken = self._closure(snapshot, group_id, failed)
            groups[group_id] = EntraGroup(group_id, name, None, broken) if broken else \
                EntraGroup(group_id, name, frozenset(members))
        # App roles follow a group's direct members, which the snapshot holds for every assigned group.
        problems = list(problems)
        members = role_members([(g, snapshot.members[g] if g in snapshot.members else
                                 SourceError(failed.get(g, "not read"))) for g in grants.groups], problems)
        needed = {u for g in groups.values() for u in g.member_ids or ()} | assigned.users
        needed |= {u for users in members.values() for u in users}
        users = {u: snapshot.users[u] for u in needed if u in snapshot.users}
        directory = Directory(groups, users, frozenset(u for u in assigned.users if u in users),
                              assigned.complete, assigned.error)
        return with_app_roles(directory, grants, members, problems)

    def _closure(self, snapshot: Snapshot, group_id: str,
                 failed: Mapping[str, str]) -> tuple[set[str], str | None]:
        members: set[str] = set()
        seen: set[str] = set()
        todo = [group_id]
        while todo:
            group = todo.pop()
            if group in seen:
                continue
            seen.add(group)
            if group in failed or group not in snapshot.members:
                return set(), failed.get(group, f"members of nested group {group} could not be read")
            members |= snapshot.members[group]
            if self._source.nested_groups:
                todo.extend(snapshot.subgroups.get(group, ()))
        return members, None

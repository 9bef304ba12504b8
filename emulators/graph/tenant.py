"""The emulated Entra directory: objects, group memberships, app assignments and a change log.

The tenant is plain data plus a mutation API for tests. Every mutation that Graph delta would
report is appended to ``changes`` so the server can answer ``/groups/delta`` and ``/users/delta``
from any earlier position. App role assignments have no delta in Graph, so they are not logged.
The app's ``appRoles`` live on its service principal; each assignment names one of them by
``appRoleId`` (or the default access role, the zero GUID), and a principal may hold several.
All reads and writes go through ``lock`` because the HTTP server answers from worker threads.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Kind = Literal["user", "group", "device", "orgContact", "servicePrincipal"]
Collection = Literal["users", "groups"]

ODATA_TYPE: dict[str, str] = {
    "user": "#microsoft.graph.user",
    "group": "#microsoft.graph.group",
    "device": "#microsoft.graph.device",
    "orgContact": "#microsoft.graph.orgContact",
    "servicePrincipal": "#microsoft.graph.servicePrincipal",
}
PRINCIPAL_TYPE: dict[str, str] = {"user": "User", "group": "Group", "servicePrincipal": "ServicePrincipal"}

# Properties each type exposes (a readable subset of the Graph schema). Lists default to [].
PROPERTIES: dict[str, tuple[str, ...]] = {
    "user": (
        "id", "displayName", "givenName", "surname", "mail", "userPrincipalName", "accountEnabled",
        "userType", "jobTitle", "department", "mobilePhone", "officeLocation", "preferredLanguage",
        "businessPhones", "otherMails", "mailNickname", "createdDateTime",
    ),
    "group": (
        "id", "displayName", "description", "mail", "mailEnabled", "mailNickname", "securityEnabled",
        "groupTypes", "visibility", "createdDateTime",
    ),
    "device": ("id", "displayName", "deviceId", "operatingSystem", "accountEnabled"),
    "orgContact": ("id", "displayName", "mail", "givenName", "surname", "companyName"),
    "servicePrincipal": (
        "id", "appId", "displayName", "servicePrincipalType", "accountEnabled",
        "appRoleAssignmentRequired", "appRoles",
    ),
}  # fmt: skip
LIST_PROPERTIES = frozenset({"businessPhones", "otherMails", "groupTypes", "appRoles"})
# Graph's answer to GET /users without $select (graph.md §1.1): accountEnabled and userType are NOT here.
USER_DEFAULT_SELECT = (
    "businessPhones", "displayName", "givenName", "id", "jobTitle", "mail", "mobilePhone",
    "officeLocation", "preferredLanguage", "surname", "userPrincipalName",
)  # fmt: skip
DEFAULT_ROLE_ID = "00000000-0000-0000-0000-000000000000"
_FIXED_CREATED = "2024-01-15T09:00:00Z"
_ID_NAMESPACE = uuid.UUID("6f1c4a52-0f7e-4d55-9d55-5e1a7c0e2b11")


@dataclass
class DirectoryObject:
    id: str
    kind: Kind
    props: dict[str, Any]  # Graph property bag, `id` excluded

    def get(self, name: str) -> Any:
        if name == "id":
            return self.id
        return self.props.get(name, [] if name in LIST_PROPERTIES else None)

    @property
    def display_name(self) -> str | None:
        return self.props.get("displayName")


@dataclass
class Assignment:
    id: str
    principal_id: str
    principal_type: str  # "User" | "Group" | "ServicePrincipal"
    created: str
    app_role_id: str = DEFAULT_ROLE_ID


@dataclass(frozen=True)
class Change:
    """One entry of the change log that delta queries read."""

    seq: int
    collection: Collection
    object_id: str
    action: Literal["created", "updated", "removed", "member_added", "member_removed"]
    properties: frozenset[str] = frozenset()
    member_id: str | None = None
    member_kind: Kind | None = None
    reason: str | None = None  # for "removed": "changed" (soft delete) or "deleted" (permanent)


@dataclass
class Tenant:
    tenant_id: str
    app: DirectoryObject  # the LiteLLM enterprise app's service principal
    objects: dict[str, DirectoryObject] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)  # group id -> direct member ids
    owners: dict[str, list[str]] = field(default_factory=dict)  # group id -> owner ids
    assignments: list[Assignment] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    # ---- loading and saving -------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tenant:
        sp = dict(data["service_principal"])
        if "appRoles" in sp:
            sp["appRoles"] = [_app_role(role) for role in sp["appRoles"]]
        app = DirectoryObject(_guid(sp.pop("id")), "servicePrincipal", sp)
        tenant = cls(tenant_id=_guid(data["tenant_id"]), app=app)
        tenant.objects[app.id] = app
        for kind, key in (
            ("user", "users"),
            ("device", "devices"),
            ("orgContact", "contacts"),
            ("servicePrincipal", "service_principals"),
        ):
            for row in data.get(key, []):
                tenant._insert(kind, dict(row))
        for row in data.get("groups", []):
            row = dict(row)
            member_ids, owner_ids = row.pop("members", []), row.pop("owners", [])
            group_id = tenant._insert("group", row).id
            tenant.members[group_id] = list(member_ids)
            if owner_ids:
                tenant.owners[group_id] = [_guid(o) for o in owner_ids]
        tenant._check_members()
        for row in data.get("assignments", []):
            created = row.get("createdDateTime") or _FIXED_CREATED  # files stay stable across loads
            role = row.get("appRoleId")
            tenant._add_assignment(row["principalId"], row.get("principalType"), created, role)
        return tenant

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            return {
                "tenant_id": self.tenant_id,
                "service_principal": {"id": self.app.id, **self.app.props},
                "users": self._rows("user"),
                "groups": [{**row, "members": list(self.members[row["id"]]),
                            **({"owners": list(o)} if (o := self.owners.get(row["id"])) else {})}
                           for row in self._rows("group")],
                "devices": self._rows("device"),
                "contacts": self._rows("orgContact"),
                "service_principals": [r for r in self._rows("servicePrincipal") if r["id"] != self.app.id],
                "assignments": [_assignment_row(a) for a in self.assignments],
            }

    def to_json(self) -> str:
        """JSON with one record per line: diffable and still readable for a 250-user tenant."""
        data = self.to_dict()
        lines = ["{"]
        keys = list(data)
        for i, key in enumerate(keys):
            comma = "," if i < len(keys) - 1 else ""
            value = data[key]
            if isinstance(value, list) and value:
                rows = ",\n".join(f"    {json.dumps(row, ensure_ascii=False)}" for row in value)
                lines.append(f'  "{key}": [\n{rows}\n  ]{comma}')
            else:
                lines.append(f'  "{key}": {json.dumps(value, ensure_ascii=False)}{comma}')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    # ---- reads (callers hold `lock` when they need a consistent view) --------------------------

    @property
    def seq(self) -> int:
        """The current position in the change log (the number of changes so far)."""
        return len(self.changes)

    def get(self, object_id: str, kind: Kind | None = None) -> DirectoryObject | None:
        obj = self.objects.get(object_id.lower())
        return obj if obj is not None and (kind is None or obj.kind == kind) else None

    def of_kind(self, kind: Kind) -> list[DirectoryObject]:
        return [o for o in self.objects.values() if o.kind == kind]

    def user_by_upn(self, upn: str) -> DirectoryObject | None:
        wanted = upn.lower()
        return next(
            (u for u in self.of_kind("user") if str(u.get("userPrincipalName")).lower() == wanted), None
        )

    def direct_members(self, group_id: str) -> list[DirectoryObject]:
        return [self.objects[m] for m in self.members.get(group_id, [])]

    def group_owners(self, group_id: str) -> list[DirectoryObject]:
        return [self.objects[o] for o in self.owners.get(group_id, []) if o in self.objects]

    def transitive_members(self, group_id: str) -> list[DirectoryObject]:
        """Every object reachable below ``group_id`` once, nested groups included; cycles are safe."""
        seen: dict[str, DirectoryObject] = {}
        stack = list(reversed(self.members.get(group_id, [])))
        while stack:
            member_id = stack.pop()
            if member_id in seen or member_id == group_id:
                continue
            obj = self.objects[member_id]
            seen[member_id] = obj
            if obj.kind == "group":
                stack.extend(reversed(self.members.get(member_id, [])))
        return list(seen.values())

    def changes_since(self, position: int) -> list[Change]:
        return self.changes[position:]

    # ---- mutations (tests and scenarios; each logs what delta would report) ---------------------

    def add_user(
        self,
        display_name: str,
        user_principal_name: str,
        *,
        mail: str | None = None,
        account_enabled: bool = True,
        user_type: str = "Member",
        user_id: str | None = None,
        **extra: Any,
    ) -> str:
        with self.lock:
            row = {
                "id": user_id or self._new_id(f"user:{user_principal_name}"),
                "displayName": display_name,
                "userPrincipalName": user_principal_name,
                "mail": mail,
                "accountEnabled": account_enabled,
                "userType": user_type,
                **extra,
            }
            obj = self._insert("user", row)
            self._log("users", obj.id, "created", frozenset(obj.props))
            return obj.id

    def update_user(self, user_id: str, **props: Any) -> None:
        """Change user properties (displayName, mail, userPrincipalName, accountEnabled, ...)."""
        with self.lock:
            user = self._require(user_id, "user")
            changed = frozenset(k for k, v in props.items() if user.props.get(k) != v)
            user.props.update(props)
            if changed:
                self._log("users", user.id, "updated", changed)

    def disable_user(self, user_id: str) -> None:
        self.update_user(user_id, accountEnabled=False)

    def enable_user(self, user_id: str) -> None:
        self.update_user(user_id, accountEnabled=True)

    def delete_user(self, user_id: str, *, permanent: bool = False) -> None:
        """Soft delete (delta reason "changed") or, with ``permanent``, hard delete ("deleted")."""
        self._delete(user_id, "user", permanent)

    def remove_user(self, user_id: str) -> None:
        """Remove a user from the tenant for good (a hard delete)."""
        self._delete(user_id, "user", True)

    def add_group(
        self, display_name: str, members: Iterable[str] = (), *, group_id: str | None = None
    ) -> str:
        with self.lock:
            obj = self._insert(
                "group",
                {"id": group_id or self._new_id(f"group:{display_name}"), "displayName": display_name},
            )
            self.members[obj.id] = []
            self._log("groups", obj.id, "created", frozenset(obj.props))
            for member_id in members:
                self.add_member(obj.id, member_id)
            return obj.id

    def rename_group(self, group_id: str, display_name: str) -> None:
        with self.lock:
            group = self._require(group_id, "group")
            if group.props.get("displayName") != display_name:
                group.props["displayName"] = display_name
                self._log("groups", group.id, "updated", frozenset({"displayName"}))

    def delete_group(self, group_id: str, *, permanent: bool = False) -> None:
        self._delete(group_id, "group", permanent)

    def add_member(self, group_id: str, member_id: str) -> None:
        """Add a direct member; adding an existing member is a no-op (nothing to report)."""
        with self.lock:
            group = self._require(group_id, "group")
            member = self._require(member_id)
            if member.id == group.id:
                raise ValueError("a group cannot be a member of itself")
            if member.id not in self.members[group.id]:
                self.members[group.id].append(member.id)
                self._log("groups", group.id, "member_added", member_id=member.id, member_kind=member.kind)

    def add_owner(self, group_id: str, owner_id: str) -> None:
        """Owners are not members, and delta does not report them (Graph's groups/delta has no owners)."""
        with self.lock:
            group = self._require(group_id, "group")
            owner = self._require(owner_id)
            owners = self.owners.setdefault(group.id, [])
            if owner.id not in owners:
                owners.append(owner.id)

    def remove_owner(self, group_id: str, owner_id: str) -> None:
        with self.lock:
            owners = self.owners.get(_guid(group_id), [])
            if _guid(owner_id) in owners:
                owners.remove(_guid(owner_id))

    def remove_member(self, group_id: str, member_id: str) -> None:
        with self.lock:
            group = self._require(group_id, "group")
            member_id = member_id.lower()
            if member_id not in self.members[group.id]:
                raise KeyError(f"{member_id} is not a member of {group_id}")
            self.members[group.id].remove(member_id)
            kind = self.objects[member_id].kind
            self._log("groups", group.id, "member_removed", member_id=member_id, member_kind=kind)

    def assign(self, principal_id: str, app_role_id: str = DEFAULT_ROLE_ID) -> str:
        """Assign a user, group or service principal to the app in one of its app roles (default:
        the default access role); returns the row id. Assigning the same role again is a no-op."""
        with self.lock:
            role = _guid(app_role_id)
            existing = next((a for a in self.assignments_for(principal_id) if a.app_role_id == role), None)
            if existing is not None:
                return existing.id
            return self._add_assignment(principal_id, None, None, role).id

    def unassign(self, principal_id: str, app_role_id: str | None = None) -> None:
        """Remove the principal's assignment in ``app_role_id``, or all of its assignments."""
        with self.lock:
            rows = [a for a in self.assignments_for(principal_id)
                    if app_role_id is None or a.app_role_id == _guid(app_role_id)]
            if not rows:
                raise KeyError(f"{principal_id} is not assigned to the app" +
                               (f" in app role {app_role_id}" if app_role_id else ""))
            self.assignments = [a for a in self.assignments if a not in rows]

    def assignment_for(self, principal_id: str) -> Assignment | None:
        return next(iter(self.assignments_for(principal_id)), None)

    def assignments_for(self, principal_id: str) -> list[Assignment]:
        wanted = principal_id.lower()
        return [a for a in self.assignments if a.principal_id == wanted]

    def app_role_id(self, value: str) -> str:
        """The id of the app's app role with this ``value``."""
        return next(str(r["id"]) for r in self.app.get("appRoles") if r.get("value") == value)

    def principal_name(self, assignment: Assignment) -> str | None:
        """The principal's current displayName, so renames flow into appRoleAssignedTo."""
        obj = self.objects.get(assignment.principal_id)
        return obj.display_name if obj is not None else None

    # ---- internals ------------------------------------------------------------------------------

    def _insert(self, kind: Kind, row: dict[str, Any]) -> DirectoryObject:
        object_id = _guid(row.pop("id"))
        if object_id in self.objects:
            raise ValueError(f"duplicate object id {object_id}")
        obj = DirectoryObject(object_id, kind, row)
        self.objects[object_id] = obj
        return obj

    def _require(self, object_id: str, kind: Kind | None = None) -> DirectoryObject:
        obj = self.get(object_id, kind)
        if obj is None:
            raise KeyError(f"no {kind or 'directory object'} with id {object_id}")
        return obj

    def _check_members(self) -> None:
        for group_id, member_ids in self.members.items():
            normalized = [_guid(m) for m in member_ids]
            unknown = [m for m in normalized if m not in self.objects]
            if unknown:
                raise ValueError(f"group {group_id} has unknown members {unknown}")
            self.members[group_id] = list(dict.fromkeys(normalized))

    def _add_assignment(
        self, principal_id: str, principal_type: str | None, created: str | None, app_role_id: str | None
    ) -> Assignment:
        principal = self._require(principal_id)
        expected = PRINCIPAL_TYPE.get(principal.kind)
        if expected is None or principal_type not in (None, expected):
            raise ValueError(f"{principal.kind} {principal_id} cannot be assigned as {principal_type}")
        role = _guid(app_role_id or DEFAULT_ROLE_ID)
        if role != DEFAULT_ROLE_ID and role not in {str(r["id"]) for r in self.app.get("appRoles")}:
            # Graph: "Permission being assigned was not found on application"
            raise ValueError(f"app role {role} is not one of the app's appRoles")
        created = created or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        row_id = _assignment_id(principal.id, self.app.id, role)
        row = Assignment(row_id, principal.id, expected, created, role)
        self.assignments.append(row)
        return row

    def _delete(self, object_id: str, kind: Kind, permanent: bool) -> None:
        with self.lock:
            obj = self._require(object_id, kind)
            for group_id, member_ids in self.members.items():
                if obj.id in member_ids:  # Graph reports the lost membership in the parent groups
                    member_ids.remove(obj.id)
                    self._log("groups", group_id, "member_removed", member_id=obj.id, member_kind=kind)
            self.assignments = [a for a in self.assignments if a.principal_id != obj.id]
            del self.objects[obj.id]
            self.members.pop(obj.id, None)
            reason = "deleted" if permanent else "changed"
            self._log("users" if kind == "user" else "groups", obj.id, "removed", reason=reason)

    def _log(
        self,
        collection: Collection,
        object_id: str,
        action: str,
        properties: frozenset[str] = frozenset(),
        **kw: Any,
    ) -> None:
        self.changes.append(Change(self.seq + 1, collection, object_id, action, properties, **kw))  # type: ignore[arg-type]

    def _new_id(self, hint: str) -> str:
        # deterministic ids keep scenario runs reproducible; the change position disambiguates reuse
        return str(uuid.uuid5(_ID_NAMESPACE, f"{self.tenant_id}:{hint}:{self.seq}"))

    def _rows(self, kind: Kind) -> list[dict[str, Any]]:
        return [{"id": o.id, **o.props} for o in self.of_kind(kind)]


def load_tenant(path: str | Path) -> Tenant:
    return Tenant.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _guid(value: str) -> str:
    """Normalize a GUID (the SDK parses principalId/resourceId/appRoleId as UUIDs)."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"object ids must be GUIDs, got {value!r}") from None


def _assignment_row(row: Assignment) -> dict[str, str]:
    out = {"principalId": row.principal_id, "principalType": row.principal_type}
    if row.app_role_id != DEFAULT_ROLE_ID:
        out["appRoleId"] = row.app_role_id
    if row.created != _FIXED_CREATED:
        out["createdDateTime"] = row.created
    return out


def _assignment_id(principal_id: str, resource_id: str, app_role_id: str) -> str:
    # Graph's assignment ids are base64url strings, not GUIDs, and start with the principal's id
    # bytes; derive the rest stably from the app and the role, so each role's row has its own id
    raw = uuid.UUID(principal_id).bytes_le + uuid.uuid5(uuid.UUID(resource_id), app_role_id).bytes_le
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _app_role(row: dict[str, Any]) -> dict[str, Any]:
    """An appRole as Graph shows it (graph.md 1.2); a tenant file may give just id and value."""
    if not row.get("id") or not row.get("value"):
        raise ValueError(f"an app role needs an id and a value, got {row!r}")
    defaults = {"allowedMemberTypes": ["User"], "description": row["value"], "displayName": row["value"],
                "isEnabled": True, "origin": "Application"}
    return {**defaults, **row, "id": _guid(row["id"])}

"""Reads what Entra says: the app's assigned groups, their (transitive) user members, the
users assigned to the app directly, and the LiteLLM roles the app's app roles give (roles.py).

A read that fails or stops early never looks like an empty result: a group whose members
could not be read completely is returned with ``member_ids=None`` and the error, and an
assignment list that broke off is flagged incomplete. Every page is checked against the wire
models (wire.py) as it arrives: a malformed one is such a failure, naming the route.

Requests go through msgraph-sdk's request adapter (authentication, retry on 429/503/504
honouring Retry-After, redirects, error mapping to ODataError), but pages are taken as JSON
rather than as msgraph model objects: building a model costs about 7 ms of CPU per directory
object, which is minutes for a large tenant, and the sync needs five fields.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from sync_core import progress
from sync_core.errors import SourceError
from sync_core.graph.pacing import ResourceUnitPacer
from sync_core.graph.roles import DEFAULT_ROLE_ID, RoleGrants, litellm_role_values
from sync_core.graph.wire import (
    AppRoles,
    Assignment,
    CollectionPage,
    DirectoryObject,
    GraphUser,
    Malformed,
    origin_of,
    parse,
    route,
)
from sync_core.graph.wire import page as checked_page
from sync_core.model import Directory, EntraGroup, EntraUser
from sync_core.settings import Settings
from sync_core.text import one_line

log = logging.getLogger(__name__)

USER_FIELDS = "id,displayName,mail,userPrincipalName,accountEnabled"
USER_TYPE = "#microsoft.graph.user"
ERRORS: dict[str, Any] = {"XXX": ODataError}  # every non-2xx status becomes an ODataError
ASSIGNMENT_FIELDS = "principalId,principalType,principalDisplayName,appRoleId"
MAX_PAGE = 999
T = TypeVar("T")
USERS_PER_QUERY = 15  # Graph takes at most 15 values in a $filter `in` clause (without advanced query)


@dataclass(frozen=True)
class GraphSource:
    """Which enterprise app, and how to read its groups."""

    base_url: str
    app_id: str | None = None
    service_principal_id: str | None = None
    nested_groups: bool = True
    email_attribute: Literal["userPrincipalName", "mail"] = "userPrincipalName"
    concurrency: int = 8

    @classmethod
    def from_settings(cls, settings: Settings) -> GraphSource:
        return cls(
            base_url=settings.graph_base_url,
            app_id=settings.entra_app_id,
            service_principal_id=settings.entra_service_principal_id,
            nested_groups=settings.nested_groups,
            email_attribute=settings.user_email_attribute,
            concurrency=settings.graph_concurrency,
        )

    @property
    def service_principal_url(self) -> str:
        """The enterprise app's service principal, by object id or by appId (an alternate key)."""
        sp = (f"servicePrincipals/{self.service_principal_id}" if self.service_principal_id
              else f"servicePrincipals(appId='{self.app_id}')")
        return f"{self.base_url}/{sp}"

    @property
    def assignments_url(self) -> str:
        return f"{self.service_principal_url}/appRoleAssignedTo?$select={ASSIGNMENT_FIELDS}&$top={MAX_PAGE}"

    @property
    def app_roles_url(self) -> str:
        return f"{self.service_principal_url}?$select=appRoles"

    def members_url(self, group_id: str, relation: str | None = None) -> str:
        """A group's user members: transitive or direct as configured, or the ``relation`` given."""
        relation = relation or ("transitiveMembers" if self.nested_groups else "members")
        return f"{self.base_url}/groups/{quote(group_id)}/{relation}?$select={USER_FIELDS}&$top={MAX_PAGE}"

    def users_url(self, user_ids: Iterable[str]) -> str:
        """These users (at most USERS_PER_QUERY); ids that do not exist are simply not returned."""
        ids = ",".join(f"'{user_id}'" for user_id in user_ids)
        return f"{self.base_url}/users?$filter={quote(f'id in ({ids})', safe='')}&$select={USER_FIELDS}"


@dataclass
class Assignments:
    """The app's assignments (appRoleAssignedTo)."""

    groups: dict[str, str] = field(default_factory=dict)  # assigned group id -> display name
    users: set[str] = field(default_factory=set)  # users assigned directly
    role_ids: dict[str, set[str]] = field(default_factory=dict)  # principal -> app role ids but the default
    complete: bool = True  # the list was read to the end
    error: str | None = None  # why not

    @property
    def problems(self) -> list[str]:
        return [] if self.complete else [f"assignment list incomplete: {self.error}"]


class GraphReader:
    mode = "full"  # every read is
    incremental = False

    def __init__(self, client: GraphServiceClient, source: GraphSource,
                 pacer: ResourceUnitPacer | None = None) -> None:
        """``pacer``: the one in ``client``'s pipeline, if any, for its count of 429s."""
        self._client = client
        self.source = source
        self._pacer = pacer
        self._slots = asyncio.Semaphore(source.concurrency)
        self._users: dict[str, EntraUser] = {}  # one object per user, however many groups they are in
        self.requests = 0

    @property
    def throttled(self) -> int:
        return self._pacer.throttled if self._pacer is not None else 0

    async def read(self, only_group_ids: frozenset[str] | None = None) -> Directory:
        assigned = await self.assignments()
        grants, problems = await self.role_grants(assigned)
        groups, direct_ids = assigned.groups, assigned.users
        if only_group_ids is not None:
            groups = {gid: name for gid, name in groups.items() if gid in only_group_ids}
            direct_ids = set()
        # Roles come from a group's DIRECT members: a direct members read has them already;
        # otherwise (transitive reads, or a group not read on demand) they take one more read.
        reused = set(groups) if not self.source.nested_groups else set()
        extra = [gid for gid in grants.groups if gid not in reused]
        with progress.stage(progress.GROUPS, len(groups)):
            read_groups, extra_members = await asyncio.gather(
                asyncio.gather(*(progress.counted(progress.GROUPS, self._group(gid, name))
                                 for gid, name in groups.items())),
                asyncio.gather(*(self._direct_user_ids(gid) for gid in extra), return_exceptions=True))
        role_reads = [(g.id, g.member_ids if g.member_ids is not None else SourceError(g.error or "unknown"))
                      for g in read_groups if g.id in reused and g.id in grants.groups]
        members = role_members([*role_reads, *zip(extra, extra_members, strict=True)], problems)
        await self.read_users(direct_ids)
        directory = Directory(
            groups={g.id: g for g in read_groups},
            users=dict(self._users),
            direct_user_ids=frozenset(uid for uid in direct_ids if uid in self._users),
            assignments_complete=assigned.complete,
            assignments_error=assigned.error,
        )
        return with_app_roles(directory, grants, members, problems)

    async def assignments(self) -> Assignments:
        """The app's assignments; ``complete`` False with the error when the list broke off.
        SourceError when not even a first page came."""
        assigned = Assignments()

        def take(page: dict[str, Any]) -> None:
            for item in page["value"]:
                row = parse(Assignment, item)
                principal = row.principal_id.lower()
                if row.principal_type == "Group":
                    assigned.groups[principal] = row.principal_display_name or principal
                elif row.principal_type == "User":
                    assigned.users.add(principal)
                else:
                    continue
                role_id = (row.app_role_id or DEFAULT_ROLE_ID).lower()
                if role_id != DEFAULT_ROLE_ID:
                    assigned.role_ids.setdefault(principal, set()).add(role_id)

        try:
            pages = await self._pages(self.source.assignments_url, take)
        except Exception as exc:
            raise SourceError(f"cannot read the app's assignments: {describe(exc)}") from None
        try:
            await pages
        except Exception as exc:  # a later page failed: what we have is a partial list
            log.warning("assignment list incomplete: %s", describe(exc))
            assigned.complete, assigned.error = False, describe(exc)
        return assigned

    async def role_grants(self, assigned: Assignments) -> tuple[RoleGrants, list[str]]:
        """The LiteLLM roles the assignments give, and what could not be read (the assignment
        list's end, the app's appRoles). The app's appRoles are read once, and only when some
        assignment names an app role."""
        problems = assigned.problems
        if not assigned.role_ids:
            return RoleGrants(), problems
        try:
            app = await self._read(self.source.app_roles_url, lambda document: parse(AppRoles, document))
        except Exception as exc:
            log.warning("cannot read the app's appRoles: %s", describe(exc))
            return RoleGrants(), [*problems, f"the app's appRoles: {describe(exc)}"]
        values = litellm_role_values(role.model_dump(by_alias=True) for role in app.app_roles)
        return RoleGrants.of(assigned.role_ids, assigned.groups, values), problems

    async def _direct_user_ids(self, group_id: str) -> frozenset[str]:
        members: set[str] = set()

        def take(page: dict[str, Any]) -> None:
            members.update(user.id for user in self.user_members(page))

        await self.read_pages(self.source.members_url(group_id, "members"), take)
        return frozenset(members)

    async def _group(self, group_id: str, name: str) -> EntraGroup:
        members: set[str] = set()

        def take(page: dict[str, Any]) -> None:
            members.update(user.id for user in self.user_members(page))

        try:
            await self.read_pages(self.source.members_url(group_id), take)
        except Exception as exc:
            return EntraGroup(group_id, name, None, describe(exc))
        return EntraGroup(group_id, name, frozenset(members))

    async def with_owners(self, directory: Directory, wanted: Callable[[str, str], bool]) -> Directory:
        """``directory`` with the user owners of the groups ``wanted`` (id, display name) picks,
        read now (also after an incremental read: owners are not tracked by delta); a group whose
        owners could not be read keeps owner_ids=None and says why."""
        picked = [g for g in directory.groups.values() if wanted(g.id, g.display_name)]
        read = await asyncio.gather(*(self._owners(g) for g in picked))
        users = {**{u.id: u for u in self._users.values()}, **directory.users}
        return dataclasses.replace(directory, groups={**directory.groups, **{g.id: g for g in read}},
                                   users=users)

    async def _owners(self, group: EntraGroup) -> EntraGroup:
        owners: set[str] = set()

        def take(page: dict[str, Any]) -> None:
            owners.update(user.id for user in self.user_members(page))

        url = f"{self.source.base_url}/groups/{quote(group.id)}/owners?$select={USER_FIELDS}&$top={MAX_PAGE}"
        try:
            await self.read_pages(url, take)
        except Exception as exc:
            return dataclasses.replace(group, owner_ids=None, owners_error=describe(exc))
        return dataclasses.replace(group, owner_ids=frozenset(owners))

    async def read_users(self, user_ids: Iterable[str]) -> list[EntraUser]:
        """Read these users, USERS_PER_QUERY to a request. A user that cannot be read (deleted
        meanwhile, or its request failed) is logged and left out: only its creation in LiteLLM
        depends on it, and the next run retries."""
        found: list[EntraUser] = []
        for wanted, result in await self._user_chunks(user_ids, self.remember):
            if isinstance(result, BaseException):
                log.warning("cannot read users %s: %s", ", ".join(wanted), describe(result))
                continue
            if missing := set(wanted) - {user.id for user in result}:
                log.warning("users not found in Entra (deleted?): %s", ", ".join(sorted(missing)))
            found.extend(result)
        return found

    async def users_by_id(self, user_ids: Collection[str]) -> Mapping[str, EntraUser | None]:
        """Each of ``user_ids`` as Graph has it now, or None where Graph has no such user
        (deleted, or an id that is not a GUID, which no Entra object has). SourceError unless
        every request was answered: a failed read never says "deleted". An id a filtered list
        leaves out is asked for on its own: only Graph's 404 for it says "deleted"."""
        canonical = {user_id: guid(user_id) for user_id in user_ids}
        found: dict[str, EntraUser] = {}
        for wanted, result in await self._user_chunks(filter(None, canonical.values()), self.to_user):
            if isinstance(result, BaseException):
                raise SourceError(f"cannot read users {', '.join(wanted)}: {describe(result)}")
            found.update((user.id, user) for user in result)
        unseen = sorted({key for key in canonical.values() if key and key not in found})
        for key, result in zip(unseen, await asyncio.gather(*(self._user_or_none(k) for k in unseen),
                                                             return_exceptions=True), strict=True):
            if isinstance(result, BaseException):
                raise SourceError(f"cannot read user {key}: {describe(result)}")
            if result is not None:
                found[key] = result
        return {user_id: found.get(key) if key else None for user_id, key in canonical.items()}

    async def _user_or_none(self, user_id: str) -> EntraUser | None:
        """The user, or None on Graph's 404 for it."""
        url = f"{self.source.base_url}/users/{quote(user_id)}?$select={USER_FIELDS}"
        try:
            return await self._read(url, self.to_user)
        except ODataError as exc:
            if exc.response_status_code == 404:
                return None
            raise

    async def _user_chunks(self, user_ids: Iterable[str], make: Callable[[dict[str, Any]], EntraUser]
                           ) -> list[tuple[list[str], list[EntraUser] | BaseException]]:
        """Read these users, USERS_PER_QUERY ids to a request, concurrently: per request, the ids
        asked for and the users found (an id not found does not exist), or the exception."""
        ids = sorted(set(user_ids))
        chunks = [ids[i:i + USERS_PER_QUERY] for i in range(0, len(ids), USERS_PER_QUERY)]

        async def chunk(wanted: list[str]) -> list[EntraUser]:
            found: list[EntraUser] = []

            def take(page: dict[str, Any]) -> None:
                found.extend(make(item) for item in page["value"])

            await self.read_pages(self.source.users_url(wanted), take)
            return found

        results = await asyncio.gather(*(chunk(c) for c in chunks), return_exceptions=True)
        return list(zip(chunks, results, strict=True))

    async def read_pages(self, url: str, take: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Every page of a collection (or the exception of the first that failed); returns the
        last page, which carries the @odata.deltaLink of a delta round."""
        return await (await self._pages(url, take))

    async def _pages(self, url: str, take: Callable[[dict[str, Any]], None]) -> Awaitable[dict[str, Any]]:
        """Fetch the first page now (so its failure is told apart), return the rest as an awaitable.

        Follows @odata.nextLink to the end, including empty pages that still carry one.
        """
        def check(page: dict[str, Any]) -> dict[str, Any]:
            self._check_page(page)
            take(page)
            return page

        page = await self._read(url, check)

        async def rest() -> dict[str, Any]:
            current, seen = page, {url}
            while link := current.get("@odata.nextLink"):
                if link in seen:  # a loop would read forever
                    raise SourceError(f"GET {route(url)}: malformed answer (a nextLink back to a page read)")
                seen.add(link)
                current = await self._read(link, check)
            return current

        return rest()

    async def page(self, url: str) -> CollectionPage:
        """One page of a collection, checked (SourceError naming the route when malformed)."""
        return await self._read(url, self._check_page)

    def _check_page(self, page: dict[str, Any]) -> CollectionPage:
        return checked_page(page, origin_of(self.source.base_url))

    async def _read(self, url: str, check: Callable[[dict[str, Any]], T]) -> T:
        """GET ``url`` and hand the answer to ``check``; a malformed answer is a SourceError
        naming the route."""
        document = await self.get(url)
        try:
            return check(document)
        except Malformed as exc:
            raise SourceError(f"GET {route(url)}: malformed answer ({exc})") from None

    async def get(self, url: str) -> dict[str, Any]:
        request = RequestInformation(Method.GET)
        request.url = url  # as is: a URL template would re-expand the query (and eat $select's commas)
        request.headers.try_add("Accept", "application/json")
        adapter = self._client.request_adapter
        async with self._slots:
            self.requests += 1
            raw = await adapter.send_primitive_async(request, "bytes", ERRORS)
        if not raw:
            raise SourceError(f"GET {route(url)}: empty answer")
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError):  # HTML from a proxy, a truncated body
            raise SourceError(f"GET {route(url)}: answered with a body that is not JSON") from None
        if not isinstance(document, dict):
            raise SourceError(f"GET {route(url)}: malformed answer (not a JSON object)")
        return document

    def user_members(self, page: dict[str, Any]) -> Iterator[EntraUser]:
        """The users among a members page's items (groups, devices, ... are not members here)."""
        for item in page["value"]:
            if parse(DirectoryObject, item).odata_type == USER_TYPE:
                yield self.remember(item)

    def forget(self, user_id: str) -> None:
        self._users.pop(user_id, None)

    def remember(self, user: dict[str, Any]) -> EntraUser:
        """The user's EntraUser, made once per run from a Graph user object."""
        known = self._users.get(str(user.get("id")).lower())
        if known is not None:
            return known
        entra = self.to_user(user)
        self._users[entra.id] = entra
        return entra

    def to_user(self, item: dict[str, Any]) -> EntraUser:
        """A Graph user object as an EntraUser, its e-mail per the configured attribute."""
        user = parse(GraphUser, item)
        upn = (user.user_principal_name or "").lower()
        mail = (user.mail or "").lower()
        email = (mail or upn) if self.source.email_attribute == "mail" else (upn or mail)
        # accountEnabled missing (no User.Read.All) is not "disabled": the user has no e-mail
        # then either, and is not provisioned.
        return EntraUser(id=user.id.lower(), email=email, display_name=user.display_name or "",
                         enabled=user.account_enabled is not False)


def role_members(reads: Iterable[tuple[str, Collection[str] | BaseException]],
                 problems: list[str]) -> dict[str, Collection[str]]:
    """Group id -> direct user members, from (group, its members or why they are unknown) pairs;
    the unknown ones are added to ``problems``."""
    members: dict[str, Collection[str]] = {}
    for group_id, result in reads:
        if isinstance(result, BaseException):
            problems.append(f"direct members of group {group_id}: {describe(result)}")
        else:
            members[group_id] = result
    return members


def with_app_roles(directory: Directory, grants: RoleGrants, direct_members: Mapping[str, Collection[str]],
                   problems: list[str]) -> Directory:
    """``directory`` with the LiteLLM roles its users get; ``problems``: what could not be read."""
    return dataclasses.replace(directory, app_roles=grants.user_roles(direct_members, directory.users),
                               app_roles_complete=not problems, app_roles_error="; ".join(problems) or None)


def guid(value: str) -> str | None:
    """``value`` as Graph spells an object id (lower-case, hyphens), or None if it is no GUID."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None


def describe(exc: BaseException) -> str:
    """A one-line, secret-free description of a Graph failure."""
    status = getattr(exc, "response_status_code", None)
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or str(exc) or type(exc).__name__
    parts = [p for p in (str(status) if status else None, code, message) if p]
    return one_line(" ".join(parts))

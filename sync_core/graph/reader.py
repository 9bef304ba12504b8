"""Reads what Entra says: the app's assigned groups, their (transitive) user members, and the
users assigned to the app directly.

A read that fails or stops early never looks like an empty result: a group whose members
could not be read completely is returned with ``member_ids=None`` and the error, and an
assignment list that broke off is flagged incomplete.

Requests go through msgraph-sdk's request adapter (authentication, retry on 429/503/504
honouring Retry-After, redirects, error mapping to ODataError), but pages are taken as JSON
rather than as msgraph model objects: building a model costs about 7 ms of CPU per directory
object, which is minutes for a large tenant, and the sync needs five fields.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from sync_core.errors import SourceError
from sync_core.graph.pacing import ResourceUnitPacer
from sync_core.model import Directory, EntraGroup, EntraUser
from sync_core.settings import Settings

log = logging.getLogger(__name__)

USER_FIELDS = "id,displayName,mail,userPrincipalName,accountEnabled"
USER_TYPE = "#microsoft.graph.user"
ERRORS: dict[str, Any] = {"XXX": ODataError}  # every non-2xx status becomes an ODataError
ASSIGNMENT_FIELDS = "principalId,principalType,principalDisplayName"
MAX_PAGE = 999
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

    def members_url(self, group_id: str, relation: str | None = None) -> str:
        """A group's user members: transitive or direct as configured, or the ``relation`` given."""
        relation = relation or ("transitiveMembers" if self.nested_groups else "members")
        return f"{self.base_url}/groups/{quote(group_id)}/{relation}?$select={USER_FIELDS}&$top={MAX_PAGE}"

    def users_url(self, user_ids: Iterable[str]) -> str:
        """These users (at most USERS_PER_QUERY); ids that do not exist are simply not returned."""
        ids = ",".join(f"'{user_id}'" for user_id in user_ids)
        return f"{self.base_url}/users?$filter={quote(f'id in ({ids})', safe='')}&$select={USER_FIELDS}"


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
        groups, direct_ids, complete, error = await self.assignments()
        if only_group_ids is not None:
            groups = {gid: name for gid, name in groups.items() if gid in only_group_ids}
            direct_ids = set()
        read_groups = await asyncio.gather(*(self._group(gid, name) for gid, name in groups.items()))
        await self.read_users(direct_ids)
        return Directory(
            groups={g.id: g for g in read_groups},
            users=dict(self._users),
            direct_user_ids=frozenset(uid for uid in direct_ids if uid in self._users),
            assignments_complete=complete,
            assignments_error=error,
        )

    async def assignments(self) -> tuple[dict[str, str], set[str], bool, str | None]:
        """Assigned groups (id -> display name), directly assigned users, whether the list was
        read to the end, and the error if not. SourceError when not even a first page came."""
        groups: dict[str, str] = {}
        users: set[str] = set()

        def take(page: dict[str, Any]) -> None:
            for row in page.get("value", []):
                principal = str(row["principalId"]).lower()
                if row.get("principalType") == "Group":
                    groups[principal] = row.get("principalDisplayName") or principal
                elif row.get("principalType") == "User":
                    users.add(principal)

        try:
            pages = await self._pages(self.source.assignments_url, take)
        except Exception as exc:
            raise SourceError(f"cannot read the app's assignments: {describe(exc)}") from None
        try:
            await pages
        except Exception as exc:  # a later page failed: what we have is a partial list
            log.warning("assignment list incomplete: %s", describe(exc))
            return groups, users, False, describe(exc)
        return groups, users, True, None

    async def _group(self, group_id: str, name: str) -> EntraGroup:
        members: set[str] = set()

        def take(page: dict[str, Any]) -> None:
            for item in page.get("value", []):
                if item.get("@odata.type") == USER_TYPE and item.get("id"):
                    members.add(self.remember(item).id)

        try:
            await self.read_pages(self.source.members_url(group_id), take)
        except Exception as exc:
            return EntraGroup(group_id, name, None, describe(exc))
        return EntraGroup(group_id, name, frozenset(members))

    async def read_users(self, user_ids: Iterable[str]) -> list[EntraUser]:
        """Read these users, USERS_PER_QUERY to a request. A user that cannot be read (deleted
        meanwhile, or its request failed) is logged and left out: only its creation in LiteLLM
        depends on it, and the next run retries."""
        ids = sorted(set(user_ids))
        chunks = [ids[i:i + USERS_PER_QUERY] for i in range(0, len(ids), USERS_PER_QUERY)]

        async def chunk(wanted: list[str]) -> list[EntraUser]:
            found: list[EntraUser] = []

            def take(page: dict[str, Any]) -> None:
                found.extend(self.remember(item) for item in page.get("value", []) if item.get("id"))

            try:
                await self.read_pages(self.source.users_url(wanted), take)
            except Exception as exc:
                log.warning("cannot read users %s: %s", ", ".join(wanted), describe(exc))
                return []
            if missing := set(wanted) - {user.id for user in found}:
                log.warning("users not found in Entra (deleted?): %s", ", ".join(sorted(missing)))
            return found

        return [user for users in await asyncio.gather(*(chunk(c) for c in chunks)) for user in users]

    async def read_pages(self, url: str, take: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Every page of a collection (or the exception of the first that failed); returns the
        last page, which carries the @odata.deltaLink of a delta round."""
        return await (await self._pages(url, take))

    async def _pages(self, url: str, take: Callable[[dict[str, Any]], None]) -> Awaitable[dict[str, Any]]:
        """Fetch the first page now (so its failure is told apart), return the rest as an awaitable.

        Follows @odata.nextLink to the end, including empty pages that still carry one.
        """
        page = await self.get(url)
        take(page)

        async def rest() -> dict[str, Any]:
            current = page
            while current.get("@odata.nextLink"):
                current = await self.get(current["@odata.nextLink"])
                take(current)
            return current

        return rest()

    async def get(self, url: str) -> dict[str, Any]:
        request = RequestInformation(Method.GET)
        request.url = url  # as is: a URL template would re-expand the query (and eat $select's commas)
        request.headers.try_add("Accept", "application/json")
        adapter = self._client.request_adapter
        async with self._slots:
            self.requests += 1
            raw = await adapter.send_primitive_async(request, "bytes", ERRORS)
        if not raw:
            raise SourceError(f"empty response from {url.split('?')[0]}")
        document = json.loads(raw)
        if not isinstance(document, dict):
            raise SourceError(f"unexpected response from {url.split('?')[0]}")
        return document

    def forget(self, user_id: str) -> None:
        self._users.pop(user_id, None)

    def remember(self, user: dict[str, Any]) -> EntraUser:
        """The user's EntraUser, made once per run from a Graph user object."""
        user_id = str(user["id"]).lower()
        known = self._users.get(user_id)
        if known is not None:
            return known
        upn = (user.get("userPrincipalName") or "").lower()
        mail = (user.get("mail") or "").lower()
        email = (mail or upn) if self.source.email_attribute == "mail" else (upn or mail)
        # accountEnabled missing (no User.Read.All) is not "disabled": the user has no e-mail
        # then either, and is not provisioned.
        entra = EntraUser(id=user_id, email=email, display_name=user.get("displayName") or "",
                          enabled=user.get("accountEnabled") is not False)
        self._users[user_id] = entra
        return entra


def describe(exc: BaseException) -> str:
    """A one-line, secret-free description of a Graph failure."""
    status = getattr(exc, "response_status_code", None)
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or str(exc) or type(exc).__name__
    parts = [p for p in (str(status) if status else None, code, message) if p]
    return " ".join(parts)[:300]

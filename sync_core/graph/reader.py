"""Reads what Entra says: the app's assigned groups, their (transitive) user members, and the
users assigned to the app directly.

A read that fails or stops early never looks like an empty result: a group whose members
could not be read completely is returned with ``member_ids=None`` and the error, and an
assignment list that broke off is flagged incomplete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from msgraph import GraphServiceClient
from msgraph.generated.models.user import User

from sync_core.errors import SourceError
from sync_core.model import Directory, EntraGroup, EntraUser

log = logging.getLogger(__name__)

USER_FIELDS = "id,displayName,mail,userPrincipalName,accountEnabled"
ASSIGNMENT_FIELDS = "principalId,principalType,principalDisplayName"
MAX_PAGE = 999


@dataclass(frozen=True)
class GraphSource:
    """Which enterprise app, and how to read its groups."""

    base_url: str
    app_id: str | None = None
    service_principal_id: str | None = None
    nested_groups: bool = True
    email_attribute: Literal["userPrincipalName", "mail"] = "userPrincipalName"
    concurrency: int = 8

    @property
    def assignments_url(self) -> str:
        sp = (f"servicePrincipals/{self.service_principal_id}" if self.service_principal_id
              else f"servicePrincipals(appId='{self.app_id}')")
        return f"{self.base_url}/{sp}/appRoleAssignedTo?$select={ASSIGNMENT_FIELDS}&$top={MAX_PAGE}"

    def members_url(self, group_id: str) -> str:
        relation = "transitiveMembers" if self.nested_groups else "members"
        return f"{self.base_url}/groups/{quote(group_id)}/{relation}?$select={USER_FIELDS}&$top={MAX_PAGE}"

    def user_url(self, user_id: str) -> str:
        return f"{self.base_url}/users/{quote(user_id)}?$select={USER_FIELDS}"


class GraphReader:
    def __init__(self, client: GraphServiceClient, source: GraphSource) -> None:
        self._client = client
        self._source = source
        self._slots = asyncio.Semaphore(source.concurrency)
        self._users: dict[str, EntraUser] = {}  # one object per user, however many groups they are in
        self.requests = 0

    async def read(self, only_group_ids: frozenset[str] | None = None) -> Directory:
        groups, direct_ids, complete, error = await self._assignments()
        if only_group_ids is not None:
            groups = {gid: name for gid, name in groups.items() if gid in only_group_ids}
            direct_ids = set()
        read_groups = await asyncio.gather(*(self._group(gid, name) for gid, name in groups.items()))
        await asyncio.gather(*(self._direct_user(uid) for uid in sorted(direct_ids)))
        return Directory(
            groups={g.id: g for g in read_groups},
            users=dict(self._users),
            direct_user_ids=frozenset(uid for uid in direct_ids if uid in self._users),
            assignments_complete=complete,
            assignments_error=error,
        )

    async def _assignments(self) -> tuple[dict[str, str], set[str], bool, str | None]:
        groups: dict[str, str] = {}
        users: set[str] = set()
        builder = self._client.service_principals.by_service_principal_id("-").app_role_assigned_to

        def take(page: Any) -> None:
            for row in page.value or []:
                principal = str(row.principal_id)
                if row.principal_type == "Group":
                    groups[principal] = row.principal_display_name or principal
                elif row.principal_type == "User":
                    users.add(principal)

        try:
            url = self._source.assignments_url
            pages = await self._pages(lambda u: builder.with_url(u).get(), url, take)
        except Exception as exc:
            raise SourceError(f"cannot read the app's assignments: {describe(exc)}") from None
        try:
            await pages
        except Exception as exc:  # a later page failed: what we have is a partial list
            log.warning("assignment list incomplete: %s", describe(exc))
            return groups, users, False, describe(exc)
        return groups, users, True, None

    async def _group(self, group_id: str, name: str) -> EntraGroup:
        builder = self._client.groups.by_group_id(group_id).transitive_members
        members: set[str] = set()

        def take(page: Any) -> None:
            for item in page.value or []:
                if isinstance(item, User) and item.id:
                    members.add(self._remember(item).id)

        try:
            first = await self._pages(lambda url: builder.with_url(url).get(),
                                      self._source.members_url(group_id), take)
            await first
        except Exception as exc:
            return EntraGroup(group_id, name, None, describe(exc))
        return EntraGroup(group_id, name, frozenset(members))

    async def _direct_user(self, user_id: str) -> None:
        builder = self._client.users.by_user_id(user_id)
        try:
            async with self._slots:
                self.requests += 1
                user = await builder.with_url(self._source.user_url(user_id)).get()
        except Exception as exc:  # only creation depends on it, so a miss just defers that
            log.warning("cannot read directly assigned user %s: %s", user_id, describe(exc))
            return
        if user is not None and user.id:
            self._remember(user)

    async def _pages(self, get: Callable[[str], Awaitable[Any]], url: str,
                     take: Callable[[Any], None]) -> Awaitable[None]:
        """Fetch the first page now (so its failure is told apart), return the rest as an awaitable.

        Follows @odata.nextLink to the end, including empty pages that still carry one.
        """
        page = await self._get(get, url)
        take(page)

        async def rest() -> None:
            current = page
            while current is not None and current.odata_next_link:
                current = await self._get(get, current.odata_next_link)
                take(current)

        return rest()

    async def _get(self, get: Callable[[str], Awaitable[Any]], url: str) -> Any:
        async with self._slots:
            self.requests += 1
            page = await get(url)
        if page is None:
            raise SourceError(f"empty response from {url}")
        return page

    def _remember(self, user: User) -> EntraUser:
        known = self._users.get(user.id or "")
        if known is not None:
            return known
        upn = (user.user_principal_name or "").lower()
        mail = (user.mail or "").lower()
        email = (mail or upn) if self._source.email_attribute == "mail" else (upn or mail)
        entra = EntraUser(id=user.id or "", email=email, display_name=user.display_name or "",
                          enabled=user.account_enabled is not False)
        self._users[entra.id] = entra
        return entra


def describe(exc: BaseException) -> str:
    """A one-line, secret-free description of a Graph failure."""
    status = getattr(exc, "response_status_code", None)
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or str(exc) or type(exc).__name__
    parts = [p for p in (str(status) if status else None, code, message) if p]
    return " ".join(parts)[:300]

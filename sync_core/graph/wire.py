"""Microsoft Graph wire models: the shapes the reader relies on, checked where a page enters.

Pages are parsed from JSON (not into msgraph's model objects, see reader.py), so these models are
what stands between a malformed answer and the planner: a page without a ``value`` list, an item
of the wrong type, a user member without an id, or a nextLink that leaves Graph is a failed read
naming the route, never fewer members.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CollectionPage(_Wire):
    """One page of a collection: its items (checked by kind where used), and where it goes on."""

    value: list[dict[str, Any]]
    next_link: StrictStr | None = Field(None, alias="@odata.nextLink", min_length=1)
    delta_link: StrictStr | None = Field(None, alias="@odata.deltaLink", min_length=1)


class DirectoryObject(_Wire):
    """An item of a members collection: its kind decides whether it is read as a user."""

    id: StrictStr = Field(min_length=1)
    odata_type: StrictStr = Field(alias="@odata.type")


class GraphUser(_Wire):
    """A user as the sync selects it. Every field but the id may be null (limited information:
    an app that may not read users gets only the id); a wrong type is a malformed answer."""

    id: StrictStr = Field(min_length=1)
    display_name: StrictStr | None = Field(None, alias="displayName")
    mail: StrictStr | None = None
    user_principal_name: StrictStr | None = Field(None, alias="userPrincipalName")
    account_enabled: StrictBool | None = Field(None, alias="accountEnabled")


class Assignment(_Wire):
    """One appRoleAssignment of the enterprise app."""

    principal_id: StrictStr = Field(alias="principalId", min_length=1)
    principal_type: StrictStr | None = Field(None, alias="principalType")
    principal_display_name: StrictStr | None = Field(None, alias="principalDisplayName")
    app_role_id: StrictStr | None = Field(None, alias="appRoleId")


class AppRole(_Wire):
    id: StrictStr
    value: StrictStr | None = None
    is_enabled: StrictBool | None = Field(None, alias="isEnabled")


class AppRoles(_Wire):
    """The enterprise app's app roles (``$select=appRoles``)."""

    app_roles: list[AppRole] = Field(default_factory=list, alias="appRoles")


class Malformed(ValueError):
    """An answer that does not have the shape the sync relies on; the reader names the route."""


def route(url: str) -> str:
    """The path a URL asks for, without its query (which may be long, or carry tokens)."""
    return urlsplit(url).path or url.split("?")[0]


def parse(model: type[ModelT], data: Any) -> ModelT:
    """``data`` as ``model``, or Malformed with the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "the body"
        raise Malformed(f"{where}: {error['msg']}") from None


def page(document: Any, origin: str) -> CollectionPage:
    """A collection page whose links stay on the Graph the sync reads (``origin``: scheme://host:port)."""
    parsed = parse(CollectionPage, document)
    for link in (parsed.next_link, parsed.delta_link):
        if link is not None and origin_of(link) != origin:
            raise Malformed(f"a next or delta link that leaves {origin}")
    return parsed


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()

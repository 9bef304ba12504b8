"""The route table: which handler answers a method and path, and FastAPI's 404/405 otherwise.

A route's path is exact (``/team/new``) or a template whose ``{name}`` segments each match one
path segment (``/management/v1/teams/{team_id}/members/bulk_delete``); the handler reads the
values from ``request.path_params``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

from emulators.http_base import Request, Response

if TYPE_CHECKING:
    from emulators.litellm.auth import Caller

Handler = Callable[[Request, "Caller | None"], Response]
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Route(NamedTuple):
    method: str
    path: str
    handler: Handler
    auth: bool = True


class Router:
    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self._exact: dict[str, list[Route]] = {}  # path -> its routes, one per method
        self._templates: list[tuple[re.Pattern[str], Route]] = []
        self._registered: set[tuple[str, str]] = set()
        for route in routes:
            self.add(route)

    def add(self, route: Route) -> None:
        if (route.method, route.path) in self._registered:
            raise ValueError(f"route {route.method} {route.path} is registered twice")
        self._registered.add((route.method, route.path))
        if _PARAM.search(route.path):
            self._templates.append((_compile(route.path), route))
        else:
            self._exact.setdefault(route.path, []).append(route)

    def resolve(self, request: Request) -> tuple[Route, Request] | Response:
        """The route for the request (and the request with its path parameters), or the 404/405."""
        candidates = self._candidates(request.path)
        for route, params in candidates:
            if route.method == request.method:
                return route, replace(request, path_params=params)
        if candidates:
            return Response(405, {"detail": "Method Not Allowed"})
        return Response(404, {"detail": "Not Found"})

    def _candidates(self, path: str) -> list[tuple[Route, dict[str, str]]]:
        """Routes whose path matches, exact ones first, whatever their method."""
        found: list[tuple[Route, dict[str, str]]] = [(r, {}) for r in self._exact.get(path, [])]
        for pattern, route in self._templates:
            match = pattern.fullmatch(path)
            if match:
                found.append((route, match.groupdict()))
        return found


def _compile(template: str) -> re.Pattern[str]:
    parts = _PARAM.split(template)  # literal, name, literal, name, ..., literal
    return re.compile(
        "".join(f"(?P<{part}>[^/]+)" if i % 2 else re.escape(part) for i, part in enumerate(parts))
    )

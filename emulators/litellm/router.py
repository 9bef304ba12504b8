"""The route table: which handler answers a method and path, and FastAPI's 404/405 otherwise."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

from emulators.http_base import Request, Response

if TYPE_CHECKING:
    from emulators.litellm.auth import Caller

Handler = Callable[[Request, "Caller | None"], Response]


class Route(NamedTuple):
    method: str
    path: str
    handler: Handler
    auth: bool = True


class Router:
    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self._exact: dict[str, list[Route]] = {}  # path -> its routes, one per method
        self._registered: set[tuple[str, str]] = set()
        for route in routes:
            self.add(route)

    def add(self, route: Route) -> None:
        if (route.method, route.path) in self._registered:
            raise ValueError(f"route {route.method} {route.path} is registered twice")
        self._registered.add((route.method, route.path))
        self._exact.setdefault(route.path, []).append(route)

    def resolve(self, request: Request) -> tuple[Route, Request] | Response:
        """The route for the request, or the 404/405."""
        candidates = self._exact.get(request.path, [])
        for route in candidates:
            if route.method == request.method:
                return route, request
        if candidates:
            return Response(405, {"detail": "Method Not Allowed"})
        return Response(404, {"detail": "Not Found"})

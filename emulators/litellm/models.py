"""/v1/models: the models the proxy serves (like a real proxy started without a config: none), and
the cheapest way to use a key: authentication, blocked keys included, comes first (auth.py)."""

from __future__ import annotations

from emulators.http_base import Request, Response
from emulators.litellm.auth import Caller
from emulators.litellm.router import Route


class ModelRoutes:
    def routes(self) -> list[Route]:
        return [Route("GET", "/v1/models", self.list_models)]

    def list_models(self, request: Request, caller: Caller | None) -> Response:
        return Response(200, {"data": [], "object": "list"})

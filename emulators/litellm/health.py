"""Health routes: /health/readiness and /health/liveliness (no auth)."""

from __future__ import annotations

import json

from emulators.http_base import Request, Response
from emulators.litellm.auth import Caller
from emulators.litellm.router import Route


class HealthRoutes:
    """The health routes; they need no state."""

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/health/readiness", self.readiness, auth=False),
            Route("GET", "/health/liveliness", self.liveliness, auth=False),
        ]

    def readiness(self, request: Request, caller: Caller | None) -> Response:
        return Response(200, {"status": "healthy", "db": "connected"})

    def liveliness(self, request: Request, caller: Caller | None) -> Response:
        return Response(200, json.dumps("I'm alive!").encode(), {"Content-Type": "application/json"})

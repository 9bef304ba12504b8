"""Health routes: /health/readiness and /health/liveliness (no auth), /health/readiness/details
(admins and admin viewers: 1.108.7 moved the version there)."""

from __future__ import annotations

import json

from emulators.http_base import Request, Response
from emulators.litellm.auth import Caller, mask_user_id
from emulators.litellm.errors import auth_error
from emulators.litellm.router import Route

EMULATED_VERSION = "1.108.7"


class HealthRoutes:
    """The health routes; they need no state."""

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/health/readiness", self.readiness, auth=False),
            Route("GET", "/health/liveliness", self.liveliness, auth=False),
            Route("GET", "/health/readiness/details", self.readiness_details),
        ]

    def readiness(self, request: Request, caller: Caller | None) -> Response:
        return Response(200, {"status": "healthy", "db": "connected"})

    def readiness_details(self, request: Request, caller: Caller | None) -> Response:
        assert caller is not None
        if not caller.admin_view:
            return auth_error(
                401,
                "Authentication Error, Only proxy admin can be used to generate, delete, update info for new "
                f"keys/users/teams. Route={request.path}. Your role={caller.role}. "
                f"Your user_id={mask_user_id(caller.user_id or '')}",
            )
        return Response(200, {"status": "healthy", "db": "connected", "cache": None,
                              "litellm_version": EMULATED_VERSION})

    def liveliness(self, request: Request, caller: Caller | None) -> Response:
        return Response(200, json.dumps("I'm alive!").encode(), {"Content-Type": "application/json"})

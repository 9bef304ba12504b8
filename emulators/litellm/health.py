"""Health routes: /health/readiness and /health/liveliness (no auth), /health/readiness/details
(admins and admin viewers: 1.108.7 moved the version there)."""

from __future__ import annotations

import json

from emulators.http_base import Request, Response
from emulators.litellm.auth import Caller, mask_user_id
from emulators.litellm.errors import auth_error
from emulators.litellm.router import Route
from emulators.litellm.state import LiteLLMState

EMULATED_VERSION = "1.108.7"


class HealthRoutes:
    """The health routes; /health/license answers from the state's licence flag."""

    def __init__(self, state: LiteLLMState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/health/license", self.license),
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

    def license(self, request: Request, caller: Caller | None) -> Response:
        licensed = self.state.licensed
        kind = "enterprise" if licensed else "community"
        return Response(200, {"has_license": licensed, "license_type": kind,
                              "expiration_date": None, "allowed_features": [],
                              "limits": {"max_users": None, "max_teams": None}})

    def liveliness(self, request: Request, caller: Caller | None) -> Response:
        return Response(200, json.dumps("I'm alive!").encode(), {"Content-Type": "application/json"})

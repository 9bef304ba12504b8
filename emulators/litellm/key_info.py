"""GET /key/info: the calling key's row, which is how a key's owner (and so its role) is found.

The master key is not a row in the database: the real proxy answers it with 404 "Key not found in
database". The ``key`` parameter (an admin asking about another key) is not emulated.
"""

from __future__ import annotations

from emulators.http_base import Request, Response
from emulators.litellm.auth import Caller, presented_key
from emulators.litellm.errors import proxy_error
from emulators.litellm.router import Route
from emulators.litellm.state import LiteLLMState


class KeyInfoRoutes:
    def __init__(self, state: LiteLLMState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        return [Route("GET", "/key/info", self.info)]

    def info(self, request: Request, caller: Caller | None) -> Response:
        row = self.state.key_row(presented_key(request) or "")
        if row is None:
            return proxy_error(404, "Key not found in database", "not_found_error", "key")
        return Response(200, {"key": row["token"], "info": {k: v for k, v in row.items() if k != "token"}})

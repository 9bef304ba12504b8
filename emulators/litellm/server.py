"""The LiteLLM emulator: one HTTP server, the route table of every resource, auth and dispatch.

Order of checks, as on the real proxy: route (404/405), then auth (401, even for a malformed
body), then body/query validation (422), then the handler. Each resource's routes live in their
own module (``teams``, ``members``, ``users``, ``keys``, ``health``); to add a resource, write its module
with a ``routes()`` list and register it in ``LiteLLMEmulator.__init__``.
"""

from __future__ import annotations

from emulators.http_base import Emulator, EmulatorServer, FaultInjector, LoggedRequest, Request, Response
from emulators.litellm.auth import authenticate
from emulators.litellm.bulk import BulkRoutes
from emulators.litellm.cost import CostModel, TeamLocks
from emulators.litellm.errors import Reply, litellm_fault_response
from emulators.litellm.health import HealthRoutes
from emulators.litellm.key_info import KeyInfoRoutes
from emulators.litellm.keys import KeyRoutes
from emulators.litellm.members import MemberRoutes
from emulators.litellm.models import ModelRoutes
from emulators.litellm.router import Router
from emulators.litellm.state import LiteLLMState
from emulators.litellm.teams import TeamRoutes
from emulators.litellm.users import UserRoutes


class LiteLLMEmulator(Emulator):
    """The LiteLLM admin API on 127.0.0.1, in a background thread.

    ``member_add_limit``: a /team/member_add that would create or link more members than this
    fails with the real proxy's 500 "Transaction already closed" and commits nothing.
    ``bulk_routes``: False makes an older proxy (1.80.0) without the /management/v1 bulk routes.
    ``cost``: writes to a team take as long as on the real proxy and wait for each other
    (cost.py; ``CostModel.calibrated()``); None answers at once.
    ``licensed``: a proxy with a LiteLLM licence, which accepts team admins.
    """

    def __init__(
        self,
        master_key: str = "sk-test-master",
        latency: float = 0.0,
        faults: FaultInjector | None = None,
        member_add_limit: int | None = 500,
        *,
        bulk_routes: bool = True,
        licensed: bool = False,
        port: int = 0,
        state: LiteLLMState | None = None,
        cost: CostModel | None = None,
    ) -> None:
        self.master_key = master_key
        self.state = state or LiteLLMState()
        self.state.licensed = licensed
        self.server = EmulatorServer(
            self.handle, latency=latency, faults=faults, port=port, fault_response=litellm_fault_response
        )
        self.router = Router()
        self.costs = costs = TeamLocks(cost) if cost is not None else None  # its ledger: what it charged
        self.bulk = BulkRoutes(self.state, costs)  # its row_fault fails chosen rows (chaos tests)
        for resource in (
            HealthRoutes(self.state),
            ModelRoutes(),
            TeamRoutes(self.state),
            MemberRoutes(self.state, member_add_limit, costs),
            UserRoutes(self.state),
            KeyRoutes(self.state),
            KeyInfoRoutes(self.state),
            *([self.bulk] if bulk_routes else []),
        ):
            for route in resource.routes():
                self.router.add(route)

    def write_calls(self) -> list[LoggedRequest]:
        """Logged POST requests (every LiteLLM admin write is a POST)."""
        return self.server.requests(["POST"])

    def handle(self, request: Request) -> Response:
        found = self.router.resolve(request)
        if isinstance(found, Response):
            return found
        route, request = found
        try:
            caller = authenticate(request, self.master_key, self.state) if route.auth else None
            return route.handler(request, caller)
        except Reply as reply:
            return reply.response

"""A fault-injecting front for a real service: forwards every request to ``target`` unless a fault
says otherwise (a malformed page, an HTML 200, a dropped connection), as a misrouted ingress or a
flaky network would. Tests put it between the sync and a real LiteLLM proxy."""

from __future__ import annotations

import httpx

from emulators.http_base import Emulator, EmulatorServer, FaultInjector, Request, Response

# Hop-by-hop and length headers are the front's own business.
_DROPPED = frozenset({"host", "content-length", "connection", "transfer-encoding", "keep-alive"})


class Front(Emulator):
    def __init__(self, target: str, *, faults: FaultInjector | None = None, timeout: float = 300.0) -> None:
        self._http = httpx.Client(base_url=target, timeout=timeout)
        self.server = EmulatorServer(self._forward, faults=faults)

    def _forward(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k not in _DROPPED}
        answer = self._http.request(request.method, request.raw_target, headers=headers, content=request.body)
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _DROPPED | {"content-encoding"}}
        return Response(answer.status_code, answer.content, kept)

    def stop(self) -> None:
        super().stop()
        self._http.close()

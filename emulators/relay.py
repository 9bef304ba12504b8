"""A relay in front of a real server: every request is passed on as is and its answer passed back.

It serves through the emulators' EmulatorServer, so the same fault injectors (a status instead of
the answer, a dropped connection, a write that went through and whose answer was lost, a run
killed after so many writes) work in front of a real LiteLLM proxy as in front of the emulator.
"""

from __future__ import annotations

import httpx

from emulators.http_base import Emulator, EmulatorServer, Request, Response
from sync_core.tls import shared_tls_context

# Hop-by-hop and framing headers are the relay's own on each side.
_DROPPED = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive"})


class Relay(Emulator):
    def __init__(self, target: str, *, timeout: float = 600.0) -> None:  # longer than any client's
        self._http = httpx.Client(base_url=target.rstrip("/"), timeout=timeout, verify=shared_tls_context())
        self.server = EmulatorServer(self._forward)

    def _forward(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k not in _DROPPED}
        answer = self._http.request(request.method, request.raw_target, headers=headers, content=request.body)
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _DROPPED | {"content-encoding"}}
        return Response(answer.status_code, answer.content, kept)

    def stop(self) -> None:
        super().stop()
        self._http.close()

"""A small threaded HTTP server shared by the emulators.

Each emulator supplies a handler ``Request -> Response``; this module owns the socket, the
per-request latency, the fault injection and the request log, so both emulators inject
faults the same way. It binds to 127.0.0.1 only: msgraph-sdk refuses plain http anywhere
else, and nothing here should be reachable from outside the machine.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, unquote, urlsplit


@dataclass
class Request:
    method: str
    path: str  # percent-decoded path, no query string
    query: dict[str, str]  # names and values percent-decoded (`%24top` -> `$top`)
    headers: dict[str, str]  # lower-cased names
    body: bytes
    raw_target: str  # the request target exactly as sent
    path_params: dict[str, str] = field(default_factory=dict)  # filled in by a router's path template

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON, bytes/str -> as is, None -> empty
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if self.body is None:
            payload = b""
        elif isinstance(self.body, bytes):
            payload = self.body
        elif isinstance(self.body, str):
            payload = self.body.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            payload = json.dumps(self.body).encode()
            headers.setdefault("Content-Type", "application/json")
        return payload, headers


FaultKind = Literal["status", "delay", "drop", "hang"]


@dataclass(frozen=True)
class Fault:
    """What to do to one request instead of (or before) serving it.

    status: answer with ``status`` (and ``Retry-After`` when given) without serving.
    delay:  sleep ``seconds`` and then serve normally (a slow response).
    drop:   close the connection without any response (a reset).
    hang:   sleep ``seconds`` and then close without a response (a client timeout).

    committed: serve the request first (its writes happen), then fail as ``kind`` says, so the
    client never learns that it went through (status, drop and hang only).
    body: answer a status fault with these bytes (a malformed page, an HTML login page) rather
    than the service's error shape, as ``content_type``.
    """

    kind: FaultKind
    status: int = 503
    retry_after: str | None = None
    seconds: float = 0.0
    committed: bool = False
    body: bytes | None = None
    content_type: str = "application/json"


class FaultInjector:
    """Decides, per request, whether a fault replaces normal service."""

    def decide(self, request: Request) -> Fault | None:  # pragma: no cover - interface
        raise NotImplementedError


class NoFaults(FaultInjector):
    def decide(self, request: Request) -> Fault | None:
        return None


@dataclass
class ScriptedFaults(FaultInjector):
    """Faults for requests whose method and path match, the next ``times`` times each."""

    rules: list[tuple[str, str, Fault, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, method: str, path_regex: str, fault: Fault, times: int = 1) -> ScriptedFaults:
        with self._lock:
            self.rules.append((method.upper(), path_regex, fault, times))
        return self

    def decide(self, request: Request) -> Fault | None:
        with self._lock:
            for i, (method, pattern, fault, times) in enumerate(self.rules):
                if times > 0 and method in ("*", request.method) and re.search(pattern, request.path):
                    self.rules[i] = (method, pattern, fault, times - 1)
                    return fault
        return None


@dataclass
class RandomFaults(FaultInjector):
    """Seeded random faults: each matching request fails with probability ``rate``."""

    seed: int
    rate: float
    faults: tuple[Fault, ...]
    methods: frozenset[str] = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
    path_regex: str = ""
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def decide(self, request: Request) -> Fault | None:
        if request.method not in self.methods or not re.search(self.path_regex, request.path):
            return None
        with self._lock:
            if self._rng.random() >= self.rate:
                return None
            return self._rng.choice(self.faults)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    status: int  # 0 when the connection was dropped


class EmulatorServer:
    """Serve ``handler`` on 127.0.0.1 in a background thread.

    ``latency`` seconds are added to every request (a network round trip); ``faults`` may
    replace a request's answer. Every request is logged in ``log`` for tests and the benchmark.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        latency: float = 0.0,
        faults: FaultInjector | None = None,
        port: int = 0,
        fault_response: Callable[[Fault], Response] | None = None,
    ) -> None:
        self.handler = handler
        # each emulator renders injected errors in its own service's error shape
        self.fault_response = fault_response or default_fault_response
        self.latency = latency
        self.faults: FaultInjector = faults or NoFaults()
        self.log: list[LoggedRequest] = []
        self._log_lock = threading.Lock()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> str:
        server = _QuietServer(("127.0.0.1", self._port), _make_handler_class(self))
        server.daemon_threads = True
        server.request_queue_size = 128
        self._server = server
        # a short poll interval keeps stop() (and so every test's teardown) from waiting 0.5 s
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator", daemon=True
        )
        self._thread.start()
        return self.origin

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record(self, method: str, path: str, status: int) -> None:
        with self._log_lock:
            self.log.append(LoggedRequest(method, path, status))

    def requests(self, methods: Iterable[str] | None = None) -> list[LoggedRequest]:
        with self._log_lock:
            entries = list(self.log)
        if methods is None:
            return entries
        wanted = {m.upper() for m in methods}
        return [e for e in entries if e.method in wanted]

    def clear_log(self) -> None:
        with self._log_lock:
            self.log.clear()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (timeouts, cancelled runs, injected drops) is expected here;
        # anything else is still reported.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Emulator:
    """Lifecycle shared by the emulators: each has a ``server`` and says where it is served."""

    server: EmulatorServer

    @property
    def base_url(self) -> str:
        return self.server.origin

    def start(self) -> str:
        self.server.start()
        return self.base_url

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _parse(method: str, target: str, headers: dict[str, str], body: bytes) -> Request:
    parts = urlsplit(target)
    query = {unquote(k): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
    return Request(method, unquote(parts.path), query, headers, body, target)


def _make_handler_class(owner: EmulatorServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in separate writes; with Nagle on, keep-alive clients stall ~40 ms
        # per request waiting for a delayed ACK
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            return  # the emulator keeps its own structured log

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = _parse(self.command, self.path, headers, body)
            if owner.latency:
                time.sleep(owner.latency)
            fault = owner.faults.decide(request)
            if fault is not None and fault.committed and fault.kind != "delay":
                with contextlib.suppress(Exception):  # the answer is lost either way
                    owner.handler(request)
            if fault is not None and fault.kind in ("drop", "hang"):
                time.sleep(fault.seconds if fault.kind == "hang" else 0)
                owner.record(request.method, request.path, 0)
                self._abort()
                return
            if fault is not None and fault.kind == "delay":
                time.sleep(fault.seconds)
                fault = None
            if fault is not None and fault.body is not None:
                response = Response(fault.status, fault.body, {"Content-Type": fault.content_type})
            elif fault is not None:
                response = owner.fault_response(fault)
            else:
                try:
                    response = owner.handler(request)
                except Exception as exc:  # an emulator bug must surface as a 500, not a hang
                    response = Response(500, {"error": {"message": f"emulator error: {exc!r}"}})
            owner.record(request.method, request.path, response.status)
            payload, out_headers = response.encode()
            self.send_response(response.status)
            for name, value in out_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _abort(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return _Handler


def default_fault_response(fault: Fault) -> Response:
    """The answer for a ``status`` fault: a JSON error body and Retry-After when set."""
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    body = {"error": {"code": "InjectedFault", "message": f"injected fault {fault.status}"}}
    return Response(fault.status, body, headers)

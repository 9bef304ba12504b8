"""LiteLLM's error bodies, and ``Reply``, the exception that answers a request early.

The real proxy (FastAPI) answers errors in two shapes, and which one depends on the endpoint
and the code path, so each handler renders its errors the way the real proxy was seen to:

- ``{"error": {"message", "type", "param", "code"}}`` (``code`` a string such as "400"), and
- FastAPI's ``{"detail": {"error": "..."}}``, or ``{"detail": [...]}`` for 422 validation errors.
"""

from __future__ import annotations

from emulators.http_base import Fault, Response


class Reply(Exception):
    """Stop handling and answer with ``response``."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def proxy_error(
    status: int, message: str, type_: str = "internal_server_error", param: str | None = None
) -> Response:
    return Response(
        status, {"error": {"message": message, "type": type_, "param": param, "code": str(status)}}
    )


def auth_error(status: int, message: str) -> Response:
    # LiteLLM's auth failures carry the string "None" as param, not null
    return proxy_error(status, message, "auth_error", "None")


def detail_error(status: int, error: str) -> Response:
    return Response(status, {"detail": {"error": error}})


def py_dict(key: str, message: str) -> str:
    """The real proxy stringifies ``{'error': ...}`` dicts into messages; repr keeps Python's quoting."""
    return repr({key: message})


def litellm_fault_response(fault: Fault) -> Response:
    """An injected ``status`` fault in LiteLLM's error shape (and Retry-After when set)."""
    response = proxy_error(fault.status, f"injected fault {fault.status}")
    if fault.retry_after is not None:
        response.headers["Retry-After"] = fault.retry_after
    return response

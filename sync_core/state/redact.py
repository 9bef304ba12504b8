"""Short, secret-free descriptions of storage errors for StateStoreError messages and logs."""

from __future__ import annotations

from azure.core.exceptions import HttpResponseError

from sync_core.redact import redact


def describe(exc: BaseException) -> str:
    """``ErrorType [status code]: first line of the message``, redacted (connection errors quote the
    request URL; with a SAS credential its query string holds the signature)."""
    # Only the first line: storage errors continue with request ids, timestamps and an XML body.
    lines = str(exc).strip().splitlines()
    message = redact(lines[0]) if lines else ""
    head = type(exc).__name__
    if isinstance(exc, HttpResponseError):
        code = f" {exc.error_code}" if exc.error_code else ""
        head = f"{head} [{exc.status_code}{code}]"
    return f"{head}: {message}" if message else head


"""Plain HTTP to a real LiteLLM proxy for tests, retrying what the proxy itself calls transient.

Under the suite's parallel load the proxy answers now and then, for a moment, `503` with
`no_db_connection` ("the authentication database is temporarily unreachable") or `500`
"Transaction already closed" (an interactive transaction that outlived its timeout, e.g. a
200-member member_add; it was rolled back). The sync retries both (sync_core/litellm/client.py);
a test's own calls do the same, so that a moment's load is not a failed test. Anything else is
answered as is.
"""

from __future__ import annotations

import time

import httpx

from sync_core.tls import shared_tls_context

ATTEMPTS = 5


def transient(response: httpx.Response) -> bool:
    if response.status_code not in (500, 503):
        return False
    text = response.read().decode("utf-8", "replace")
    return "no_db_connection" in text or "Transaction already closed" in text


class TransientRetries(httpx.HTTPTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(1, ATTEMPTS + 1):
            response = super().handle_request(request)
            if attempt == ATTEMPTS or not transient(response):
                return response
            response.close()
            time.sleep(0.25 * 2 ** attempt)
        raise AssertionError("unreachable")  # pragma: no cover


def proxy_client(base_url: str, key: str | None = None, *, timeout: float = 60.0) -> httpx.Client:
    """A client for ``base_url``, sending ``key`` as a Bearer token when given."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=timeout,
                        transport=TransientRetries(verify=shared_tls_context()))

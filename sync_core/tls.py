"""One TLS context for every HTTP client the process builds.

httpx makes a fresh SSLContext for each client, loading the whole CA bundle again (about 20 ms of
CPU each time), and every run builds a Graph and a LiteLLM client. Made once, with httpx's own
defaults (SSL_CERT_FILE / SSL_CERT_DIR, else certifi), the context is only read afterwards, so
the clients can share it.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()

"""Credentials for Graph: Entra app secret, managed identity, or a static token for emulators."""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken


class StaticTokenCredential:
    """An azure-identity style credential that always returns one bearer token.

    Only for emulators (the settings refuse it unless GRAPH_BASE_URL is on loopback).
    msgraph-sdk calls ``get_token`` with extra keyword arguments (claims, enable_cae).
    """

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

"""Whether a proxy accepts team admins, read without writing, against the REAL proxies (no licence):
1.108.7 answers GET /health/license {"has_license": false, ...}; 1.80.0 has no such route (404) and
carries {"license": {"has_license": false, ...}} in /health/readiness. Observed 2026-12-03."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from sync_core.litellm.capabilities import team_admins_allowed
from sync_core.litellm.client import LiteLLMClient
from tests.contract.test_team_fields import proxy  # noqa: F401  (both real proxies, by version)
from tests.real_proxies import KEY_VAR

pytestmark = pytest.mark.litellm_real


def test_an_unlicensed_proxy_says_it_takes_no_team_admins(proxy: tuple[str, httpx.Client]) -> None:  # noqa: F811
    _, http = proxy

    async def ask() -> bool | None:
        async with LiteLLMClient(str(http.base_url), os.environ[KEY_VAR], timeout=120) as client:
            return await team_admins_allowed(client)

    assert asyncio.run(ask()) is False

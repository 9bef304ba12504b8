"""One contract suite, two targets: the LiteLLM emulator (always) and a real LiteLLM proxy.

The real target runs when LITELLM_CONTRACT_URL and LITELLM_CONTRACT_KEY are set; otherwise it is
skipped, except under CI (env CI set), where a missing target is a failure rather than a silent
skip (tests/real_proxies.py). The real proxy's database persists between runs, so every test uses fresh uuid-suffixed
ids, never depends on global counts, and deletes what it created.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from emulators.litellm import LiteLLMEmulator
from tests.proxy_http import proxy_client
from tests.real_proxies import real_proxy

EMULATOR_KEY = "sk-test-master"


@dataclass
class Target:
    name: str
    base_url: str
    key: str
    client: httpx.Client  # sends the master key as a Bearer token

    def unauthenticated(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30.0)

    def roster(self, team_id: str) -> list[dict[str, Any]]:
        """The team's members_with_roles as /team/info shows them, minus the user_alias it adds."""
        response = self.client.get("/team/info", params={"team_id": team_id})
        assert response.status_code == 200, response.text
        return [{k: v for k, v in m.items() if k != "user_alias"}
                for m in response.json()["team_info"]["members_with_roles"]]

    def user_row(self, user_id: str) -> dict[str, Any] | None:
        """/user/info's user_info, or None when the user does not exist (404)."""
        response = self.client.get("/user/info", params={"user_id": user_id})
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return response.json()["user_info"]


@pytest.fixture(scope="session")
def _emulator() -> Iterator[LiteLLMEmulator]:
    with LiteLLMEmulator(master_key=EMULATOR_KEY) as emulator:
        yield emulator


@pytest.fixture(scope="session", params=["emulator", pytest.param("real", marks=pytest.mark.litellm_real)])
def litellm(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "emulator":
        emulator: LiteLLMEmulator = request.getfixturevalue("_emulator")
        base_url, key = emulator.base_url, EMULATOR_KEY
    else:
        base_url, key = real_proxy()
    client = proxy_client(base_url, key)  # retries what the proxy calls transient (tests/proxy_http.py)
    try:
        yield Target(request.param, base_url, key, client)
    finally:
        client.close()


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:10]


@dataclass
class Factory:
    """Creates teams and users through the API and deletes them after the test."""

    api: Target
    teams: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)

    def team(self, **body: Any) -> dict[str, Any]:
        response = self.api.client.post("/team/new", json=body)
        assert response.status_code == 200, response.text
        team = response.json()
        self.teams.append(team["team_id"])
        return team

    def user(self, **body: Any) -> dict[str, Any]:
        response = self.api.client.post("/user/new", json={"auto_create_key": False, **body})
        assert response.status_code == 200, response.text
        user = response.json()
        self.users.append(user["user_id"])
        return user

    def track_users(self, *user_ids: str) -> None:
        self.users.extend(user_ids)

    def cleanup(self) -> None:
        client = self.api.client
        if self.teams and client.post("/team/delete", json={"team_ids": self.teams}).status_code != 200:
            for team_id in self.teams:  # all-or-nothing: one already gone fails the batch
                client.post("/team/delete", json={"team_ids": [team_id]})
        users = list(dict.fromkeys(self.users))
        if users and client.post("/user/delete", json={"user_ids": users}).status_code != 200:
            for user_id in users:
                client.post("/user/delete", json={"user_ids": [user_id]})


@pytest.fixture
def make(litellm: Target) -> Iterator[Factory]:
    factory = Factory(litellm)
    try:
        yield factory
    finally:
        factory.cleanup()

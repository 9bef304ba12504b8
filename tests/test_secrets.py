"""Secrets never leak: not in logs (at any level), output, reports, errors or HTTP responses."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import azure.functions as func
import pytest

from emulators.graph import GraphEmulator
from emulators.http_base import Fault, RandomFaults
from emulators.litellm import LiteLLMEmulator
from tests.conftest import run_cli, sync_env
from tests.functions import FUNCTIONS

MASTER = "sk-Zq7-master-do-not-leak"
TOKEN = "graph-token-do-not-leak"
CLIENT_SECRET = "client-secret-do-not-leak"


@pytest.fixture
def leaky_world(tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    faults = (Fault("status", 500), Fault("status", 503), Fault("drop"), Fault("status", 429, retry_after="0"))
    with GraphEmulator(tenant, token=TOKEN, faults=RandomFaults(seed=3, rate=0.2, faults=faults[:2])) as graph, \
            LiteLLMEmulator(master_key=MASTER, faults=RandomFaults(seed=5, rate=0.3, faults=faults)) as lite:
        env = {**sync_env(graph.base_url, lite.base_url), "LITELLM_MASTER_KEY": MASTER, "GRAPH_ACCESS_TOKEN": TOKEN,
               "SYNC_RETRY_BUDGET_SECONDS": "2"}
        yield env, tmp_path


def assert_clean(text: str) -> None:
    for secret in (MASTER, TOKEN, CLIENT_SECRET):
        assert secret not in text


def test_runs_with_failures_leak_no_secret(leaky_world, caplog: pytest.LogCaptureFixture) -> None:
    env, cwd = leaky_world
    outputs = []
    with caplog.at_level(logging.DEBUG):
        for args in (("plan",), ("apply",), ("apply", "--json"), ("apply", "--json")):
            result = run_cli(env, *args)
            outputs += [result.out, result.err]
    failed = [o for o in outputs if '"outcome": "failed"' in o or "failed=" in o or "sync failed:" in o]
    assert failed, "the faults must have made some actions fail, or this test proves nothing"
    stored = "".join(p.read_text() for p in (cwd / ".sync-state").rglob("*.json"))
    assert stored
    assert_clean("\n".join(outputs) + caplog.text + stored)


def test_configuration_errors_never_echo_secrets() -> None:
    base = sync_env("http://127.0.0.1:1/v1.0", "http://127.0.0.1:2")
    cases = [
        {**base, "LITELLM_MASTER_KEY": MASTER, "GRAPH_ACCESS_TOKEN": TOKEN, "GRAPH_BASE_URL": "https://graph.microsoft.com/v1.0"},
        {**base, "LITELLM_MASTER_KEY": MASTER, "ENTRA_CLIENT_SECRET": CLIENT_SECRET, "GRAPH_ACCESS_TOKEN": ""},
        {**base, "LITELLM_MASTER_KEY": MASTER, "LITELLM_BASE_URL": "http://litellm.internal"},
    ]
    for env in cases:
        result = run_cli(env, "plan")
        assert result.code == 2
        assert_clean(result.out + result.err)


def test_http_responses_leak_no_secret(leaky_world, monkeypatch: pytest.MonkeyPatch) -> None:
    env, _ = leaky_world
    secrets = {"ENTRA_CLIENT_SECRET": CLIENT_SECRET, "ENTRA_CLIENT_ID": "22223333-bbbb-3333-cccc-4444dddd5555"}
    for name, value in {**env, **secrets}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    handler = FUNCTIONS["sync_http"].get_user_function()
    bodies = []
    for body in (b"", b'{"dry_run": true}', b"{bad"):
        response = asyncio.run(handler(func.HttpRequest(method="POST", url="/api/sync", body=body)))
        bodies.append(response.get_body().decode())
    assert any(json.loads(b).get("summary") for b in bodies if b.startswith("{") and "summary" in b)
    assert_clean("".join(bodies))

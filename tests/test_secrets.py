"""Secrets never leak: not in logs (at any level), output, reports, errors or HTTP responses."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from emulators.graph import GraphEmulator
from emulators.http_base import EmulatorServer, Fault, RandomFaults, Response
from emulators.litellm import LiteLLMEmulator
from sync_core.litellm.client import LiteLLMClient
from sync_core.redact import error_line, redact, remember
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


# Secrets an HTTP header cannot carry: the settings refuse them (exit 2), and nothing quotes them.
UNSAFE = {
    "LITELLM_MASTER_KEY": "sk-Leak-ABCDEF\nGHIJKL-mnopqr",
    "ENTRA_CLIENT_SECRET": "cs-Secret-\u00c4\u00d6\u00dc-tail-value",
    "GRAPH_ACCESS_TOKEN": "tok-Graph-\x07-bell-123456",
}
URL_PASSWORD = "url-Password-987654"


def fragments(secret: str, width: int = 8) -> set[str]:
    """Every ``width``-character piece of the secret's printable runs: none may appear anywhere."""
    runs = [run for run in re.split(r"[^\x20-\x7e]+", secret) if run]
    return {run[i:i + width] for run in runs for i in range(max(1, len(run) - width + 1))}


def assert_no_fragment(text: str) -> None:
    for secret in (*UNSAFE.values(), URL_PASSWORD):
        leaked = [piece for piece in fragments(secret) if piece in text]
        assert not leaked, f"{leaked} of a secret in: {text[:2000]}"


def unsafe_envs(graph_url: str) -> list[dict[str, str]]:
    """One env per unsafe secret (each alone makes the settings invalid), and one with a URL's credentials."""
    base = {**sync_env(graph_url, "http://127.0.0.1:9"), "ENTRA_CLIENT_ID": "22223333-bbbb-3333-cccc-4444dddd5555"}
    envs = [{**base, name: value} for name, value in UNSAFE.items()]
    envs.append({**base, "LITELLM_BASE_URL": f"https://admin:{URL_PASSWORD}@litellm.example.com"})
    return envs


def test_unsafe_secrets_are_refused_and_leak_on_no_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for env in unsafe_envs("http://127.0.0.1:9/v1.0"):
            for args in (("plan",), ("apply", "--json"), ("doctor",)):
                result = run_cli(env, *args)
                assert result.code in (1, 2) and "Traceback" not in result.err, result.err
                texts += [result.out, result.err]
            assert "configuration error: " in texts[-5]  # apply's stderr names the setting
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            response = asyncio.run(FUNCTIONS["sync_http"].get_user_function()(
                func.HttpRequest(method="POST", url="/api/sync", body=b"")))
            assert response.status_code == 500
            texts.append(response.get_body().decode())
            with pytest.raises(Exception) as timer_error:
                asyncio.run(FUNCTIONS["sync_timer"].get_user_function()(TimerRequest(past_due=False)))
            texts.append(str(timer_error.value))
    assert_no_fragment("\n".join(texts) + caplog.text)


def test_a_secret_quoted_by_any_error_is_redacted_whole_and_in_pieces() -> None:
    # Past the settings (a client built by hand): httpx refuses the header, quoting it in its error.
    remember(UNSAFE.values())

    async def call(url: str) -> None:
        async with LiteLLMClient(url, UNSAFE["LITELLM_MASTER_KEY"], retry_budget=0) as client:
            await client.list_teams()

    with EmulatorServer(lambda request: Response(200, {"teams": []})) as server, \
            pytest.raises(Exception) as caught:
        asyncio.run(call(server.origin))
    logging.getLogger("test").error("failed: %s", caught.value)
    record = logging.makeLogRecord({"msg": "%s", "args": (caught.value,)})
    assert any(piece in str(caught.value) for piece in fragments(UNSAFE["LITELLM_MASTER_KEY"])), \
        "the raw error quotes the key, or this test proves nothing"
    assert_no_fragment(error_line(caught.value) + redact(repr(caught.value)) + redact(record.getMessage()))
    assert "\n" not in error_line(caught.value)

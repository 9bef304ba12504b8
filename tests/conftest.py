"""Shared fixtures: both emulators on 127.0.0.1 and the settings that point the sync at them."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from emulators.graph import GraphEmulator, Tenant
from sync_core import cli
from tests.azurite import azurite_connection_string  # noqa: F401 - a session fixture for all tests
from tests.parallel import slot
from tests.real_proxies import lane_url
from tests.tenants import APP_ID, small_tenant

MASTER_KEY = "sk-test-master"
GRAPH_TOKEN = "emulator-token"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked slow first, so that under xdist (`make test`) they start at once rather than
    last, keeping the run waiting. A slow test that stands alone goes before the chunks of one split
    up (the chaos scenarios): it cannot be spread, the chunks fill in around it."""
    def family(item: pytest.Item) -> tuple[Path, str]:
        return item.path, getattr(item, "originalname", item.name)

    chunks = Counter(family(item) for item in items if item.get_closest_marker("slow"))
    # stable: in file order within each rank
    items.sort(key=lambda item: chunks[family(item)] if item.get_closest_marker("slow") else float("inf"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Lines tests published with ``record_property("summary", line)``: what xdist workers print is
    never shown, but their reports reach the main process."""
    lines = [value for reports in terminalreporter.stats.values() for report in reports
             if getattr(report, "when", None) == "call"
             for name, value in getattr(report, "user_properties", ()) if name == "summary"]
    if lines:
        terminalreporter.write_sep("-", "summaries")
        for line in lines:
            terminalreporter.write_line(line)


# Real-proxy tests at once on one proxy, whatever the number of xdist workers. The proxy (one
# worker, Prisma) queues what it cannot serve, and under a pile of concurrent writes its interactive
# transactions outlive their 5 s timeout ("Transaction already closed") and its database pool runs
# dry (503 no_db_connection): three at a time keep it busy without piling up. REAL_PROXY_SLOTS
# changes it. A test names its proxy by lane (`@pytest.mark.litellm_real(lane="volume")`, default
# "contract"); lanes served by one proxy share its slots (tests/real_proxies.py).
REAL_PROXY_SLOTS = int(os.environ.get("REAL_PROXY_SLOTS", "3"))


@pytest.fixture(autouse=True)
def _real_proxy_slot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    marker = request.node.get_closest_marker("litellm_real")
    if marker is None:
        yield
        return
    url = lane_url(marker.kwargs.get("lane", "contract")) or "unset"
    with slot(tmp_path_factory, f"real-proxy-{hashlib.sha256(url.encode()).hexdigest()[:12]}", REAL_PROXY_SLOTS):
        yield


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.from_dict(small_tenant())


@pytest.fixture
def graph(tenant: Tenant) -> Iterator[GraphEmulator]:
    with GraphEmulator(tenant, token=GRAPH_TOKEN) as emulator:
        yield emulator


@pytest.fixture
def lite() -> Iterator[object]:
    from emulators.litellm import LiteLLMEmulator
    with LiteLLMEmulator(master_key=MASTER_KEY) as emulator:
        yield emulator


def sync_env(graph_url: str, litellm_url: str, **extra: str) -> dict[str, str]:
    return {
        "LITELLM_BASE_URL": litellm_url,
        "LITELLM_MASTER_KEY": MASTER_KEY,
        "ENTRA_APP_ID": APP_ID,
        "GRAPH_BASE_URL": graph_url,
        "GRAPH_ACCESS_TOKEN": GRAPH_TOKEN,
        **extra,
    }


@pytest.fixture
def env(graph: GraphEmulator, lite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.chdir(tmp_path)  # the CLI's local lock and report live in ./.sync-state
    return sync_env(graph.base_url, lite.base_url)


@dataclass
class CliRun:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        return json.loads(self.out)


def run_cli(env: dict[str, str], *args: str) -> CliRun:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args), env)
    return CliRun(code, out.getvalue(), err.getvalue())

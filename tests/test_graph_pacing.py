"""Resource-unit pacing of Graph reads, with the real msgraph-sdk against the throttling Graph emulator."""

from __future__ import annotations

import threading
import time

import pytest

from emulators.graph import GraphEmulator
from emulators.graph.tenant import Tenant
from emulators.graph.throttle import ResourceUnitBudget
from emulators.http_base import Fault, FaultInjector, Request
from sync_core.graph.pacing import ResourceUnitPacer
from tests.conftest import GRAPH_TOKEN
from tests.graph_reads import read
from tests.tenants import oid, small_tenant


@pytest.fixture
def throttled_graph() -> GraphEmulator:
    # 60 RU per second; the reads below cost about 130 RU (30 member pages at 4 RU, and the rest).
    with GraphEmulator(Tenant.from_dict(small_tenant()), token=GRAPH_TOKEN,
                       throttle=ResourceUnitBudget(quota=60, window_seconds=1.0)) as graph:
        graph.page_size_cap = 5
        yield graph


def test_paced_reads_stay_under_the_budget(throttled_graph: GraphEmulator) -> None:
    pacer = ResourceUnitPacer(40, window=1.0)
    directory, reader = read(throttled_graph, pacer=pacer)
    assert [r for r in throttled_graph.server.requests() if r.status == 429] == []
    assert reader.throttled == 0 and pacer.waited > 0
    assert all(g.known for g in directory.groups.values())
    assert len(directory.groups[oid("Everyone")].member_ids or ()) == 150
    assert throttled_graph.resource_units_used > 60, "the read must cost more than the emulator's bucket holds"


def test_unpaced_reads_of_the_same_tenant_are_throttled_and_counted(throttled_graph: GraphEmulator) -> None:
    # The control for the test above: without a budget the same reads bounce off the emulator's.
    pacer = ResourceUnitPacer(0)
    directory, reader = read(throttled_graph, pacer=pacer)
    throttled = [r for r in throttled_graph.server.requests() if r.status == 429]
    assert throttled and reader.throttled == len(throttled)
    assert all(g.known for g in directory.groups.values())  # the SDK's retries still got everything


class ThrottleOnce(FaultInjector):
    """A 429 (Retry-After: 2) for the first read of ``path_part``; records when each request came."""

    def __init__(self, path_part: str) -> None:
        self.path_part = path_part
        self.arrivals: list[tuple[float, str]] = []
        self.throttled_at: float | None = None
        self._lock = threading.Lock()

    def decide(self, request: Request) -> Fault | None:
        with self._lock:
            now = time.monotonic()
            self.arrivals.append((now, request.path))
            if self.throttled_at is None and self.path_part in request.path:
                self.throttled_at = now
                return Fault("status", 429, retry_after="2")
        return None


def test_a_429_pauses_every_read_for_its_retry_after(graph: GraphEmulator) -> None:
    # Everyone's 30 pages are read one after another while Engineering's first read is throttled:
    # the SDK retries only Engineering's, the pacer must hold Everyone's next pages back too.
    graph.page_size_cap = 5
    graph.server.latency = 0.03
    faults = ThrottleOnce(f"/groups/{oid('Engineering')}/")
    graph.server.faults = faults
    directory, reader = read(graph, pacer=ResourceUnitPacer(0))
    assert reader.throttled == 1 and all(g.known for g in directory.groups.values())
    assert faults.throttled_at is not None
    # Requests already on their way when the 429 was sent may still arrive just after it.
    during_pause = [path for at, path in faults.arrivals if faults.throttled_at + 0.5 < at < faults.throttled_at + 1.9]
    assert during_pause == []
    assert any(f"/groups/{oid('Everyone')}/" in path for at, path in faults.arrivals if at > faults.throttled_at + 1.9)

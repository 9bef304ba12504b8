"""Telemetry: the counters and spans of CLI runs against both emulators, read back from the
OpenTelemetry SDK's in-memory readers; nothing is configured without a connection string."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from emulators.graph import GraphEmulator
from emulators.http_base import Fault, ScriptedFaults
from sync_core import telemetry
from sync_core.state import open_state
from tests.conftest import run_cli
from tests.tenants import oid


@dataclass
class Readers:
    metrics: InMemoryMetricReader
    spans: InMemorySpanExporter

    def points(self, name: str) -> list:
        data = self.metrics.get_metrics_data()
        if data is None:  # nothing was ever recorded
            return []
        return [point for resource in data.resource_metrics for scope in resource.scope_metrics
                for metric in scope.metrics if metric.name == name for point in metric.data.data_points]

    def sums(self, name: str, *keys: str) -> Counter:
        """The counter ``name`` by the values of the attributes ``keys``."""
        return Counter({tuple(p.attributes[k] for k in keys): p.value for p in self.points(name) if p.value})


@pytest.fixture
def readers() -> Iterator[Readers]:
    reader, exporter = InMemoryMetricReader(), InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use(meter_provider=MeterProvider(metric_readers=[reader]), tracer_provider=tracer_provider)
    yield Readers(reader, exporter)
    telemetry.use()


def test_the_counters_and_spans_of_a_known_plan(env: dict, graph: GraphEmulator, readers: Readers) -> None:
    graph.server.faults = ScriptedFaults().add("GET", "/groups", Fault("status", 429, retry_after="0"), 1)
    report = run_cli(env, "apply", "--json").json()

    by_kind = Counter((a["type"], a["outcome"]) for a in report["actions"])
    assert by_kind[("create_team", "applied")] == 3
    assert readers.sums("sync.actions", "type", "outcome") == by_kind
    assert {p.attributes["trigger"] for p in readers.points("sync.actions")} == {"cli"}
    assert readers.sums("sync.runs", "trigger", "exit_code") == {("cli", "0"): 1}
    assert readers.sums("sync.graph_throttles", "trigger") == {("cli",): report["stats"]["graph_throttled"]}
    assert report["stats"]["graph_throttled"] == 1
    assert readers.sums("sync.litellm_write_calls", "trigger") == {("cli",): report["stats"]["litellm_write_calls"]}
    (duration,) = readers.points("sync.run.duration")
    assert duration.count == 1 and duration.sum > 0

    spans = {span.name: span for span in readers.spans.get_finished_spans()}
    run = spans["sync run"]
    assert run.attributes["trigger"] == "cli" and run.attributes["run_id"] == report["run_id"]
    for phase in ("read", "read leavers", "plan", "apply", "record"):
        assert spans[phase].parent.span_id == run.context.span_id, phase
    assert spans["read"].end_time <= spans["plan"].start_time <= spans["apply"].start_time


def test_held_removals_are_counted(env: dict, graph: GraphEmulator, readers: Readers) -> None:
    assert run_cli(env, "apply").code == 0
    graph.tenant.remove_member(oid("Engineering"), oid("eng0"))
    held = run_cli({**env, "SYNC_MAX_REMOVALS": "0"}, "apply", "--json")
    assert held.code == 3 and held.json()["summary"]["held"] >= 1
    assert readers.sums("sync.removals_held", "trigger") == {("cli",): held.json()["summary"]["held"]}
    assert readers.sums("sync.runs", "exit_code") == {("0",): 1, ("3",): 1}


def test_a_run_that_stops_outright_counts_as_an_error(env: dict, readers: Readers) -> None:
    assert run_cli({**env, "LITELLM_MASTER_KEY": "sk-wrong"}, "plan").code == 1
    assert readers.sums("sync.runs", "exit_code") == {("error",): 1}
    (run,) = [s for s in readers.spans.get_finished_spans() if s.name == "sync run"]
    assert run.status.is_ok is False


def test_nothing_is_configured_without_a_connection_string() -> None:
    assert telemetry.start({}) is False and telemetry.start({"APPLICATIONINSIGHTS_CONNECTION_STRING": " "}) is False
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert not isinstance(metrics.get_meter_provider(), MeterProvider)


def test_a_run_that_finds_the_lock_taken_is_not_counted(env: dict, readers: Readers) -> None:
    taken, release = threading.Event(), threading.Event()

    async def hold() -> None:
        async with open_state(env).run_lock("timer"):
            taken.set()
            await asyncio.to_thread(release.wait)

    holder = threading.Thread(target=asyncio.run, args=(hold(),))
    holder.start()
    try:
        assert taken.wait(10)
        assert run_cli(env, "apply").code == 1
    finally:
        release.set()
        holder.join()
    assert readers.points("sync.runs") == [] and readers.points("sync.run.duration") == []

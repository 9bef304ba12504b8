"""Telemetry: a run's numbers as OpenTelemetry metrics and its phases as spans.

With APPLICATIONINSIGHTS_CONNECTION_STRING set, start() hands OpenTelemetry to Azure Monitor's
distro (azure-monitor-opentelemetry), which exports to Application Insights; without it nothing is
configured and the OpenTelemetry API's default providers drop everything.

Metrics (every one has the run's ``trigger`` as a dimension):

    sync.runs                   runs, by ``exit_code`` ("error" for a run that stopped outright)
    sync.actions                actions, by ``type`` and ``outcome`` (applied, failed, held, ...)
    sync.removals_held          removals the circuit breaker held back
    sync.graph_throttles        429s Microsoft Graph answered
    sync.litellm_write_calls    write calls made to LiteLLM
    sync.run.duration           seconds from the start of the run to its report

Spans: "sync run" with one child per phase: "read", "plan", "apply", "record".
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import metrics, trace

from sync_core.errors import LockBusy, RequestError
from sync_core.report import Report

log = logging.getLogger("sync_core.telemetry")
NAME = "entra_litellm_sync"
CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
_started = False
T = TypeVar("T")


def start(env: Mapping[str, str]) -> bool:
    """Export to Application Insights if its connection string is set (once per process)."""
    global _started
    connection_string = env.get(CONNECTION_STRING, "").strip()
    if not connection_string or _started:
        return _started
    # Imported here: the distro is a heavy import, and most CLI runs have no use for it.
    from azure.monitor.opentelemetry import configure_azure_monitor

    # The Functions host already sends the app's logs to Application Insights: the distro exporting
    # them as well would store every line twice. OTEL_LOGS_EXPORTER is the distro's one switch.
    os.environ.setdefault("OTEL_LOGS_EXPORTER", "none")
    configure_azure_monitor(connection_string=connection_string, enable_live_metrics=False,
                            enable_performance_counters=False)
    _started = True
    return True


@dataclass(frozen=True)
class _Instruments:
    runs: metrics.Counter
    actions: metrics.Counter
    held: metrics.Counter
    throttles: metrics.Counter
    writes: metrics.Counter
    duration: metrics.Histogram

    @classmethod
    def on(cls, meter: metrics.Meter) -> _Instruments:
        return cls(
            runs=meter.create_counter("sync.runs", "{run}", "sync runs, by exit code"),
            actions=meter.create_counter("sync.actions", "{action}", "actions, by type and outcome"),
            held=meter.create_counter("sync.removals_held", "{action}", "removals the breaker held"),
            throttles=meter.create_counter("sync.graph_throttles", "{response}", "429s from Microsoft Graph"),
            writes=meter.create_counter("sync.litellm_write_calls", "{call}", "write calls made to LiteLLM"),
            duration=meter.create_histogram("sync.run.duration", "s", "run duration"),
        )


# The providers the telemetry goes to: the global ones (the distro's) unless use() says otherwise.
_providers: dict[str, Any] = {}
_instruments: dict[int, _Instruments] = {}


def use(*, meter_provider: Any = None, tracer_provider: Any = None) -> None:
    """Send telemetry to these providers (tests read them back); None: the global ones."""
    _providers.update(meter=meter_provider, tracer=tracer_provider)


def _tracer() -> trace.Tracer:
    return trace.get_tracer(NAME, tracer_provider=_providers.get("tracer"))


def _record() -> _Instruments:
    provider = _providers.get("meter") or metrics.get_meter_provider()
    if id(provider) not in _instruments:
        _instruments[id(provider)] = _Instruments.on(provider.get_meter(NAME))
    return _instruments[id(provider)]


@contextmanager
def run_span(trigger: str, dry_run: bool) -> Iterator[None]:
    """The span of a whole run, and its duration; a run that raises counts as exit code "error"."""
    started = time.monotonic()
    where = {"trigger": trigger}
    with _tracer().start_as_current_span("sync run", attributes={**where, "dry_run": dry_run}):
        try:
            yield
        except (LockBusy, RequestError):
            raise  # not a run: another one holds the lock, or the request was refused
        except Exception:
            _record().runs.add(1, {**where, "exit_code": "error"})
            _record().duration.record(time.monotonic() - started, where)
            raise
        _record().duration.record(time.monotonic() - started, where)


@contextmanager
def span(name: str) -> Iterator[None]:
    """A span for one phase of a run."""
    with _tracer().start_as_current_span(name):
        yield


async def phase(name: str, work: Awaitable[T]) -> T:
    """``await work`` in a span of its own."""
    with span(name):
        return await work


def record_run(report: Report) -> None:
    """The numbers of a finished run (inside its run_span)."""
    where = {"trigger": report.trigger}
    instruments = _record()
    instruments.runs.add(1, {**where, "exit_code": str(report.exit_code)})
    for action, outcome in zip(report.plan.actions, report.outcomes, strict=True):
        instruments.actions.add(1, {**where, "type": action.kind, "outcome": outcome.status})
        if outcome.status == "held":
            instruments.held.add(1, where)
    instruments.throttles.add(int(report.stats.get("graph_throttled") or 0), where)
    instruments.writes.add(int(report.stats.get("litellm_write_calls") or 0), where)
    current = trace.get_current_span()
    current.set_attribute("exit_code", report.exit_code)
    current.set_attribute("run_id", report.run_id)

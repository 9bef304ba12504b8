"""One sync run in a fresh process: ``python -m bench.sync_child < config.json``.

Reads ``{"env": {...}, "profile": path or null, "tracemalloc": bool}`` on stdin, runs the
product's own code path

    asyncio.run(run_sync(Settings.from_env(env), RunRequest(dry_run=False, trigger="bench")))

and prints one JSON object on stdout: wall time of that call, its phases, the process's peak RSS
and CPU time, the report's summary and stats. A process of its own per run, so the peak RSS is
the sync's alone and the run starts cold, as a Functions invocation on a new worker would.

With ``"state_dir"``, the run is ``run_recorded(settings, request, LocalStateBackend(state_dir))``
instead: what the timer and the CLI do (run lock, incremental Graph reads, the report saved).

Phases are timed by wrapping (not changing) product functions in this process only: the read of
the reader runner.build_reader returns, runner._read_both (both reads), planner.plan, Executor.apply.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

STARTED = time.time()


def _timed_async(phases: dict[str, float], name: str, fn: Any) -> Any:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - start

    return wrapper


def _timed(phases: dict[str, float], name: str, fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - start

    return wrapper


def main() -> int:
    config = json.loads(sys.stdin.read())
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    imports_start = time.perf_counter()
    import sync_core.graph.reader  # noqa: F401  msgraph-sdk: run_sync would import it lazily
    from sync_core import planner
    from sync_core.executor import Executor
    from sync_core.runner import RunRequest, run_recorded, run_sync
    from sync_core.settings import Settings

    imports = time.perf_counter() - imports_start

    phases: dict[str, float] = {}
    planner.plan = _timed(phases, "plan", planner.plan)
    Executor.apply = _timed_async(phases, "apply", Executor.apply)  # type: ignore[method-assign]
    from sync_core import runner

    runner._read_both = _timed_async(phases, "reads", runner._read_both)  # Graph and LiteLLM

    build_reader = runner.build_reader

    def timed_reader(*args: Any, **kwargs: Any) -> Any:  # full (GraphReader) or incremental (DeltaReader)
        reader = build_reader(*args, **kwargs)
        reader.read = _timed_async(phases, "graph_read", reader.read)
        return reader

    runner.build_reader = timed_reader

    settings = Settings.from_env(config["env"])
    request = RunRequest(dry_run=False, trigger="bench")
    profiler = None
    if config.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
    if config.get("tracemalloc"):
        import tracemalloc

        tracemalloc.start(1)
    start = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    if config.get("state_dir"):  # as the timer runs: run lock, incremental Graph reads, report saved
        from sync_core.state import LocalStateBackend

        report = asyncio.run(run_recorded(settings, request, LocalStateBackend(Path(config["state_dir"]))))
    else:
        report = asyncio.run(run_sync(settings, request))
    if profiler is not None:
        profiler.disable()
    wall = time.perf_counter() - start
    memory: dict[str, Any] = {}
    if config.get("tracemalloc"):
        # what the finished run still holds (the report: plan, outcomes) by source line, and the peak
        current, peak = tracemalloc.get_traced_memory()
        top = tracemalloc.take_snapshot().statistics("lineno")[:8]
        import gc

        gc.collect()  # what is left only by reference cycles goes now
        after_gc = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        report_json = json.dumps(report.to_dict())  # what saving the report costs (run_recorded does)
        report_peak = tracemalloc.get_traced_memory()[1] - after_gc
        memory = {"traced_peak_mb": peak / 2**20, "traced_end_mb": current / 2**20,
                  "after_gc_mb": after_gc / 2**20, "report_json_mb": len(report_json) / 2**20,
                  "report_peak_mb": report_peak / 2**20,
                  "top": [f"{s.size / 2**20:.1f} MB {s.traceback[0].filename.split('/')[-1]}:"
                          f"{s.traceback[0].lineno}" for s in top]}
        tracemalloc.stop()
    if profiler is not None:
        profiler.dump_stats(config["profile"])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "wall_s": wall,
        "phases": phases,
        "imports_s": imports,
        "process_started": STARTED,
        "max_rss_mb": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "summary": report.summary(),
        "stats": report.stats,
        "exit_code": report.exit_code,
        "errors": sorted({o.error for o in report.outcomes if o.error})[:5],
        "notes": list(report.plan.notes)[:5],
        "memory": memory,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

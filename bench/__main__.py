"""``python -m bench [--size small|large|all] [--latency 0.02] [--scenarios initial,noop,churn]``

The "fast at enterprise scale" benchmark. For each size: generate a synthetic tenant (seeded, in
memory), serve it from the Graph emulator (``latency`` per request, 8,000 RU / 10 s throttle) and
an empty LiteLLM emulator, each in a child process, then run the sync once per scenario in a fresh
process (bench/sync_child.py) through run_sync, and print one row per scenario. See
bench/README.md for the columns and bench/bounds.py for the lower bounds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import bounds, startup, tenantgen
from bench.hosts import GRAPH_TOKEN, MASTER_KEY, Host
from bench.real_proxy import RealProxy

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = ("initial", "noop", "churn")
WINDOW = 10.0  # graph.md section 1.9: quotas are per 10 s; a large tenant's is 8,000 RU per app and tenant
MEMBER_ADD_CHUNK = 200  # the product's default SYNC_MEMBER_ADD_CHUNK, used by the lower bound
BULK_CHUNK = 500  # the product's default SYNC_USER_CREATE_CHUNK and SYNC_MEMBER_DELETE_CHUNK
UPDATE_CHUNK = 100  # the product's default SYNC_USER_UPDATE_CHUNK


@dataclass
class Row:
    size: str
    scenario: str
    status: str
    values: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ running


def run_child(env: dict[str, str], cap: float, profile: Path | None, *, trace: bool = False,
              state_dir: str | None = None) -> tuple[str, dict[str, Any], float]:
    """One sync run in a fresh process; (status, result, spawn time). status: ok | timeout | crash."""
    config = json.dumps({"env": env, "profile": str(profile) if profile else None, "tracemalloc": trace,
                         "state_dir": state_dir})
    spawned = time.time()
    try:
        done = subprocess.run([sys.executable, "-m", "bench.sync_child"], input=config, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                              timeout=cap)
    except subprocess.TimeoutExpired:  # subprocess.run has killed the child (ours) already
        return "timeout", {}, spawned
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        return "crash", {"stderr": tail}, spawned
    result = json.loads(lines[-1])
    result["stderr_tail"] = done.stderr.strip().splitlines()[-5:]
    return "ok", result, spawned


def litellm_members(lite: Host) -> tuple[dict[str, frozenset[str]], dict[str, str | None]]:
    raw = lite.call("members")
    return {t: frozenset(ms) for t, ms in raw["members"].items()}, raw["aliases"]


def litellm_host(args: argparse.Namespace, common: dict[str, Any],
                 model: tenantgen.Model) -> Host | RealProxy:
    if args.litellm_url:
        return RealProxy(args.litellm_url, args.litellm_key, model.assigned)
    return Host("litellm", common)


def calls_by_method(result: dict[str, Any]) -> dict[str, int]:
    """GETs and POSTs as the sync counted them (a real proxy has no request log to ask)."""
    calls = (result.get("stats") or {}).get("litellm_calls", {})
    return {method: sum(n for call, n in calls.items() if call.startswith(method + " "))
            for method in ("GET", "POST")}


def used_bulk(result: dict[str, Any]) -> bool:
    bulk = (result.get("stats") or {}).get("litellm_bulk") or {}
    return bulk.get("offered") is True or bulk.get("setting") == "on"


def run_size(size: tenantgen.Size, args: argparse.Namespace, out: list[Row]) -> None:
    started = time.perf_counter()
    # A real proxy keeps what earlier runs wrote: fresh ids (another seed) and e-mails (a tag).
    seed, tag = (args.seed, "")
    if args.litellm_url:
        seed, tag = random.randrange(2**32), f".{random.randrange(16**6):06x}"
    document, model = tenantgen.generate(size, seed, tag)
    # --signed-in: everyone enabled signed in by SSO before the first run, which adopts them
    signed_in = [(u["id"], u["mail"].lower()) for u in document["users"] if u["accountEnabled"]] \
        if args.signed_in else []
    generated = time.perf_counter() - started
    shape = tenantgen.describe(model)
    print(f"\n## {size.name}: {shape['users']:,} users ({shape['disabled']} disabled), "
          f"{shape['groups']:,} groups, "
          f"{shape['direct_memberships']:,} direct memberships, {shape['nested_edges']} nested-group edges, "
          f"{shape['team_memberships']:,} team memberships expected (largest team {shape['largest_team']:,}, "
          f"median group {shape['median_group']}); generated in {generated:.2f} s", flush=True)
    print_header()

    common = {"latency": args.latency, "quota": args.graph_quota, "window": WINDOW,
              "proxy_cost": not args.no_proxy_cost}
    with Host("graph", {**common, "tenant": document}) as graph, litellm_host(args, common, model) as lite, \
            tempfile.TemporaryDirectory(prefix="bench-state-") as state_dir:
        del document
        env = {
            "GRAPH_BASE_URL": graph.url,  # GraphEmulator.start() answers the base URL with /v1.0
            "GRAPH_ACCESS_TOKEN": GRAPH_TOKEN,
            "LITELLM_BASE_URL": lite.url,
            "LITELLM_MASTER_KEY": args.litellm_key if args.litellm_url else MASTER_KEY,
            "ENTRA_APP_ID": model_app_id(graph),
            # churn removes hundreds of members: far past the breaker's defaults (100 / 20 %)
            "SYNC_MAX_REMOVALS": "1000000",
            "SYNC_MAX_REMOVAL_PERCENT": "100",
            # a real proxy still holds the teams of earlier runs: they are not this run's business
            **({"SYNC_ORPHANED_TEAM_ACTION": "keep"} if args.litellm_url else {}),
            **dict(kv.split("=", 1) for kv in args.set),
        }
        chunks = bounds.Chunks(
            member_add=int(env.get("SYNC_MEMBER_ADD_CHUNK", MEMBER_ADD_CHUNK)),
            user_create=int(env.get("SYNC_USER_CREATE_CHUNK", BULK_CHUNK)),
            member_delete=int(env.get("SYNC_MEMBER_DELETE_CHUNK", BULK_CHUNK)),
            user_update=None if env.get("SYNC_LITELLM_BULK") == "off"
            else int(env.get("SYNC_USER_UPDATE_CHUNK", UPDATE_CHUNK)))
        if signed_in:
            print(f"   {lite.call('sign_in', signed_in):,} users signed in by SSO before the first run",
                  flush=True)
        blocked = None
        for scenario in args.scenarios:
            if blocked:
                out.append(Row(size.name, scenario, f"not run ({blocked})"))
                print_row(out[-1], header=False)
                continue
            if scenario == "churn":
                ops = tenantgen.churn(model, 0.01, seed=args.seed)
                graph.call("churn", ops)
            before, aliases = litellm_members(lite)
            renamed = {g for g in model.assigned if g in aliases and aliases[g] != model.names[g]}
            renames = len(renamed)
            present = lite.call("stats")
            bound_for = {bulk: bounds.scenario_bound(model, before or None, teams_present=present["teams"],
                                                     users_present=present["users"], chunks=chunks,
                                                     renames=renames, bulk=bulk,
                                                     signed_in=frozenset(u for u, _ in signed_in))
                         for bulk in (False, True)}
            changed = {g for g, want in model.desired().items() if before.get(g) != want}
            changed_groups = len(changed | renamed)
            graph.call("reset")
            lite.call("reset")
            profile = Path(args.profile) / f"{size.name}-{scenario}.prof" if args.profile else None
            status, result, spawned = run_child(env, args.cap, profile, trace=args.tracemalloc,
                                                state_dir=state_dir if args.recorded else None)
            g_stats, l_stats = graph.call("stats"), lite.call("stats")
            if args.litellm_url:
                l_stats["by_method"] = calls_by_method(result)
            bound = bound_for[used_bulk(result)]
            after, after_aliases = litellm_members(lite)
            if args.recorded and scenario == "initial":  # a full read that also takes delta baselines
                requests, ru = bounds.graph_bound_snapshot(model)
                bound = dataclasses.replace(bound, graph_requests=requests, graph_ru=ru)
            elif args.recorded:  # Graph delta (the steady-state minimum) and a targeted LiteLLM read
                requests, ru = bounds.graph_bound_delta(model)
                reads = bounds.targeted_litellm_reads(model, before, present["teams"])
                bound = dataclasses.replace(bound, graph_requests=requests, graph_ru=ru, litellm_reads=reads)
            row = make_row(size.name, scenario, status, result, spawned, g_stats, l_stats, bound, model,
                           after, after_aliases, changed_groups)
            out.append(row)
            print_row(row, header=False)
            if profile is not None and profile.exists():
                summarize_profile(profile)
            if status != "ok" and scenario == "initial":
                blocked = f"initial {status}"
        rss = {"graph emulator": g_stats["max_rss_mb"], "litellm emulator": l_stats["max_rss_mb"]}
        print("   emulator processes' peak RSS: " + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items()
                                                           if v is not None))


def model_app_id(graph: Host) -> str:
    return graph.call("app_id")


def make_row(size: str, scenario: str, status: str, result: dict[str, Any], spawned: float,
             g: dict[str, Any], lite: dict[str, Any], bound: bounds.Bound, model: tenantgen.Model,
             after: dict[str, frozenset[str]], after_aliases: dict[str, str | None],
             changed_groups: int) -> Row:
    desired = model.desired()
    converged = all(after.get(gid) == want for gid, want in desired.items()) and all(
        after_aliases.get(gid) == model.names[gid] for gid in desired)
    if status == "ok":
        problems = result["summary"]["failed"] + result["summary"]["skipped"] + result["summary"]["held"]
        if problems:
            status = f"{problems} failed/skipped/held"
        elif not converged:
            status = "not converged"
    reads, writes = lite["by_method"].get("GET", 0), lite["by_method"].get("POST", 0)
    phases = result.get("phases", {})
    values = {
        "wall": result.get("wall_s"),
        "graph_read": phases.get("graph_read"),
        "apply": phases.get("apply"),
        "graph_req": g["requests"],
        "graph_lb": bound.graph_requests,
        "ru": g.get("ru"),
        "ru_lb": bound.graph_ru,
        "throttled": g["statuses"].get(429, 0),
        "llm_reads": reads,
        "llm_writes": writes,
        "llm_lb_reads": bound.litellm_reads,
        "llm_lb_writes": bound.litellm_writes,
        "rss": result.get("max_rss_mb"),
        "first_graph": (g["first"] - spawned) if g.get("first") else None,
        "cpu_sync": result.get("cpu_s"),
        "cpu_graph": g["cpu_s"],
        "cpu_llm": lite["cpu_s"],
        "delta_est": bounds.delta_graph_estimate(changed_groups),
        "lb_detail": bound.detail,
        "plan_s": phases.get("plan"),
        "graph_mode": (result.get("stats") or {}).get("graph_read", "full"),
        "reads": phases.get("reads"),
        "summary": result.get("summary"),
        "litellm_calls": (result.get("stats") or {}).get("litellm_calls"),
        "litellm_lost": (result.get("stats") or {}).get("litellm_lost"),
        "errors": {**g.get("errors", {}), **lite.get("errors", {})},
        "child_errors": result.get("errors"),
        "memory": result.get("memory"),
        "stderr": result.get("stderr"),
    }
    return Row(size, scenario, status, values)


# ------------------------------------------------------------------------------------------ output

COLUMNS = (
    # (title, width, formatter)
    ("size", 5), ("scenario", 8), ("wall s", 7), ("graph s", 7), ("apply s", 7),
    ("G req", 6), ("G LB", 6), ("G x", 5), ("G RU", 7), ("G 429", 5),
    ("L read", 6), ("L write", 7), ("L LB r/w", 11), ("L x", 5),
    ("RSS MB", 6), ("1st G s", 7), ("CPU s sync/G/L", 17), ("status", 6),
)


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _ratio(actual: int | None, bound: int | None) -> str:
    if actual is None or bound is None:
        return "-"
    if bound == 0:
        return "1.00" if actual == 0 else "inf"
    return f"{actual / bound:.2f}"


def print_header() -> None:
    print("  ".join(title.rjust(width) if i > 1 else title.ljust(width)
                    for i, (title, width) in enumerate(COLUMNS)))


def print_row(row: Row, header: bool) -> None:
    if header:
        print_header()
    v = row.values
    if not v:
        cells = [row.size, row.scenario] + ["-"] * (len(COLUMNS) - 3) + [row.status]
    else:
        cpu = f"{_num(v['cpu_sync'])}/{_num(v['cpu_graph'])}/{_num(v['cpu_llm'])}"
        llm_total = v["llm_reads"] + v["llm_writes"]
        cells = [
            row.size, row.scenario, _num(v["wall"]), _num(v["graph_read"]), _num(v["apply"]),
            _num(v["graph_req"]), _num(v["graph_lb"]), _ratio(v["graph_req"], v["graph_lb"]),
            _num(v["ru"]), _num(v["throttled"]),
            _num(v["llm_reads"]), _num(v["llm_writes"]), f"{v['llm_lb_reads']:,}/{v['llm_lb_writes']:,}",
            _ratio(llm_total, v["llm_lb_reads"] + v["llm_lb_writes"]),
            _num(v["rss"], 0), _num(v["first_graph"], 2), cpu, row.status,
        ]
    print("  ".join(cell.rjust(width) if i > 1 else cell.ljust(width)
                    for i, (cell, (_, width)) in enumerate(zip(cells, COLUMNS, strict=True))), flush=True)
    if v:
        detail = v["lb_detail"]
        routes = "bulk" if detail["bulk"] else "per-call"
        extra = (f"      lower bound ({routes} writes): {detail['teams_created']:,} teams + "
                 f"{detail['user_calls']:,} calls for {detail['users_created']:,} users + "
                 f"{detail['update_calls']:,} updates for {detail['users_adopted']:,} adopted + "
                 f"{detail['member_add_calls']:,} member_add ({detail['adds']:,} adds) + "
                 f"{detail['removal_calls']:,} calls for {detail['removals']:,} removals + "
                 f"{detail['renames']:,} renames; "
                 f"RU lower bound {v['ru_lb']:,}; with Graph delta about {v['delta_est']:,} requests; "
                 f"plan {_num(v['plan_s'], 2)} s, both reads {_num(v['reads'])} s, "
                 f"Graph read {v['graph_mode']}")
        print(extra, flush=True)
        if v.get("litellm_calls"):
            print(f"      LiteLLM calls (the sync's count): {v['litellm_calls']}; "
                  f"answers lost (timed out, reset): {v.get('litellm_lost') or 'none'}")
        if v["errors"]:
            print(f"      error responses: {dict(list(v['errors'].items())[:6])}")
        if v.get("memory"):
            m = v["memory"]
            print(f"      tracemalloc: peak {m['traced_peak_mb']:.0f} MB, held at the end "
                  f"{m['traced_end_mb']:.0f} MB ({m['after_gc_mb']:.0f} MB after gc.collect()): "
                  f"{'; '.join(m['top'])}; the report as JSON {m['report_json_mb']:.0f} MB, "
                  f"{m['report_peak_mb']:.0f} MB more at the peak of to_dict + json.dumps")
        if v["child_errors"]:
            print(f"      action errors: {v['child_errors']}")
    if row.status not in ("ok",) and v.get("stderr"):
        print("      " + v["stderr"].replace("\n", "\n      "))


def summarize_profile(path: Path, top: int = 30) -> None:
    text = path.with_suffix(".txt")
    with text.open("w") as handle:
        stats = pstats.Stats(str(path), stream=handle)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
    print(f"      profile: {path} (top functions in {text})")


def print_startup() -> None:
    median, samples = startup.import_seconds("function_app")
    heavy = ", ".join(f"{name} {secs:.2f}" for name, secs in startup.heaviest_imports("function_app"))
    print(f"\nimport function_app in a fresh process: {median:.2f} s (median of "
          f"{', '.join(f'{s:.2f}' for s in samples)}); heaviest direct imports (s): {heavy}")
    g_median, _ = startup.import_seconds("sync_core.graph.reader")
    print(f"import sync_core.graph.reader (msgraph-sdk, imported lazily by the first run): {g_median:.2f} s")


def provenance() -> str:
    """Which code is measured: the commit, and uncommitted changes to the product or emulators."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "sync_core", "emulators",
                                "function_app.py"], cwd=REPO, capture_output=True, text=True,
                               check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return f"code in {REPO} (not a git checkout)"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"code at commit {commit} in {REPO}" + (
        f" PLUS uncommitted changes to {', '.join(changed)}" if changed else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=(*tenantgen.SIZES, "all"), default="all",
                        help="all: small and large")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request, both emulators")
    parser.add_argument("--graph-quota", type=int, default=8000,
                        help="the Graph emulator's RU per 10 s (Entra: 3,500 / 5,000 / 8,000 for S / M / L)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated, run in this order: initial,noop,churn")
    parser.add_argument("--cap", type=float, default=900.0,
                        help="seconds a scenario may take (then: timeout)")
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument("--profile", metavar="DIR",
                        help="cProfile each sync run into DIR/<size>-<scenario>.prof")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="extra setting for the sync, e.g. SYNC_LITELLM_CONCURRENCY=16 (repeatable)")
    parser.add_argument("--recorded", action="store_true",
                        help="run as the timer does: run_recorded with a local state directory kept "
                             "across the scenarios (run lock, incremental Graph reads, report saved)")
    parser.add_argument("--signed-in", action="store_true",
                        help="every enabled user is in LiteLLM before the first run, as SSO makes them: "
                             "the initial run adopts them (one user update each) instead of creating them")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="trace the sync's Python allocations (slower): peak and top lines")
    parser.add_argument("--no-startup", action="store_true", help="skip the import-time measurement")
    parser.add_argument("--no-proxy-cost", action="store_true",
                        help="the LiteLLM emulator answers at once instead of taking as long as the real "
                             "proxy's team writes (emulators/litellm/cost.py)")
    parser.add_argument("--litellm-url", metavar="URL",
                        help="sync into this real LiteLLM proxy instead of the emulator (fresh ids and "
                             "e-mails every run; nothing is deleted)")
    parser.add_argument("--litellm-key", default=os.environ.get("LITELLM_CONTRACT_KEY", "sk-test-master"),
                        help="its master key (default: LITELLM_CONTRACT_KEY, else sk-test-master)")
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    if args.scenarios and args.scenarios[0] != "initial":
        args.scenarios.insert(0, "initial")  # noop and churn start from a synced LiteLLM
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    sizes = ["small", "large"] if args.size == "all" else [args.size]

    print(f"bench: latency {args.latency * 1000:.0f} ms per request, "
          f"Graph throttle {args.graph_quota:,} RU / {WINDOW:.0f} s, "
          f"cap {args.cap:.0f} s per scenario, seed {args.seed}, "
          f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
          + ("" if args.litellm_url else "; LiteLLM emulator " + (
              "answers at once" if args.no_proxy_cost else "with the real proxy's write costs"))
          + ("; runs recorded (run lock, Graph delta, report saved)" if args.recorded else
             "; run_sync without state (a full Graph read every run)"))
    print(provenance())
    if not args.no_startup:
        print_startup()
    rows: list[Row] = []
    for name in sizes:
        size = tenantgen.SIZES[name]
        run_size(size, args, rows)
    print("\n## summary")
    print_header()
    for row in rows:
        print_row(row, header=False)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nbench orchestrator peak RSS (generator and bounds, not the sync): {own:.0f} MB")
    return 0 if all(r.status == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

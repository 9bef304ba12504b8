"""``python -m bench.app_roles [--size small|large] [--role-groups 10] [--latency 0.02]``

What reading LiteLLM roles from the app's app roles costs in Graph requests. The bench tenant
(tenantgen) is served twice from the Graph emulator in a child process: once as is, once with
``--role-groups`` of its assigned groups (the very large ones and the umbrellas first: the worst
case) assigned a LiteLLM app role. Five users are assigned directly in both, one of them with a
role. Each Graph read the sync can make is run against both and its requests, resource units
and time printed: the full reader with transitive and with direct members, and the incremental
reader's first (full) read and a quiet incremental read after it.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import tenantgen
from bench.hosts import GRAPH_TOKEN, Host
from sync_core.graph.client import build_graph_client
from sync_core.graph.delta import DeltaReader
from sync_core.graph.reader import GraphReader, GraphSource
from sync_core.model import Directory
from sync_core.settings import Settings
from sync_core.state import LocalStateBackend

ROLES = ("proxy_admin", "proxy_admin_viewer", "internal_user")
DIRECT_USERS = 5


def with_roles(document: dict[str, Any], role_groups: int) -> dict[str, Any]:
    """The tenant with app roles, five direct users, and ``role_groups`` groups given a role."""
    app_id = document["service_principal"]["appId"]
    roles = [{"id": str(uuid.uuid5(uuid.UUID(app_id), value)), "value": value} for value in ROLES]
    groups = [row["principalId"] for row in document["assignments"]]
    given = {gid: roles[i % len(roles)]["id"] for i, gid in enumerate(groups[:role_groups])}
    users = [u["id"] for u in document["users"][:DIRECT_USERS]]
    if role_groups:
        given[users[0]] = roles[0]["id"]
    assignments = [*document["assignments"], *({"principalId": u, "principalType": "User"} for u in users)]
    assignments = [{**row, "appRoleId": given[row["principalId"]]} if row["principalId"] in given else row
                   for row in assignments]
    return {**document, "service_principal": {**document["service_principal"], "appRoles": roles},
            "assignments": assignments}


Read = Callable[[GraphSource, Settings, str], Awaitable[Directory]]


async def full(source: GraphSource, settings: Settings, state_dir: str) -> Directory:
    return await GraphReader(build_graph_client(settings), source).read()


async def delta(source: GraphSource, settings: Settings, state_dir: str) -> Directory:
    """The incremental reader: its first read is a full one, the next (nothing changed) incremental."""
    graph = GraphReader(build_graph_client(settings), source)
    reader = DeltaReader(graph, LocalStateBackend(Path(state_dir)), full_every=timedelta(hours=24))
    return await reader.read()


READS: list[tuple[str, bool, Read]] = [
    ("full, transitive members", True, full),
    ("full, direct members", False, full),
    ("delta, first (full) read", True, delta),
    ("delta, quiet incremental", True, delta),  # the same state directory: after the first
]


def measure(graph: Host, label: str) -> None:
    settings = Settings.from_env({"LITELLM_BASE_URL": "http://127.0.0.1:9", "LITELLM_MASTER_KEY": "sk-unused",
                                  "ENTRA_APP_ID": graph.call("app_id"), "GRAPH_BASE_URL": graph.url,
                                  "GRAPH_ACCESS_TOKEN": GRAPH_TOKEN})
    with tempfile.TemporaryDirectory(prefix="bench-roles-") as state_dir:
        for name, nested, read in READS:
            source = GraphSource(base_url=graph.url, app_id=settings.entra_app_id, nested_groups=nested)
            graph.call("reset")
            started = time.perf_counter()
            directory = asyncio.run(read(source, settings, state_dir))
            seconds = time.perf_counter() - started
            stats = graph.call("stats")
            complete = "yes" if directory.app_roles_complete else "NO"
            print(f"| {label:<10} | {name:<26} | {stats['requests']:>6,} | {stats['ru']:>7,} "
                  f"| {seconds:>6.2f} | {len(directory.app_roles):>6,} | {complete:>8} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.app_roles", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(tenantgen.SIZES), default="small")
    parser.add_argument("--role-groups", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=20240501)
    args = parser.parse_args()
    document, _ = tenantgen.generate(tenantgen.SIZES[args.size], args.seed)
    print(f"{args.size} tenant, {args.role_groups} groups with a LiteLLM app role, latency {args.latency} s")
    print("| tenant     | read                       | G req  | G RU    | s      | roles  | complete |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    common = {"latency": args.latency, "quota": 1_000_000, "window": 10.0}  # no throttling: count requests
    for label, roles in (("no roles", 0), ("roles", args.role_groups)):
        with Host("graph", {**common, "tenant": with_roles(document, roles)}) as graph:
            measure(graph, label)


if __name__ == "__main__":
    main()

"""The two emulators, each in its own child process, driven over a pipe.

Separate processes keep the emulators' CPU time and memory out of the sync's figures (and off
its GIL). The Graph emulator's CLI has no throttle flag and neither CLI can apply churn or report
its request log, hence this small host instead of ``python -m emulators.graph``.

Commands (a tuple sent over the pipe, answered with one object):
  ("reset",)        clear the request log, restart the CPU clock, refill the RU bucket; -> None
  ("stats",)        figures since the last reset; -> dict
  ("churn", ops)    apply tenantgen churn ops through the Tenant mutation API (Graph only); -> int
  ("app_id",)       the enterprise app's appId (Graph only); -> str
  ("members",)      LiteLLM's teams: role-"user" member ids and aliases (LiteLLM only); -> dict
  ("sign_in", users) (id, e-mail) pairs become LiteLLM users as SSO makes them (LiteLLM only); -> int
  ("stop",)         stop serving and exit; -> None
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import resource
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

GRAPH_TOKEN = "bench-graph-token"
MASTER_KEY = "sk-bench-master"
SSO_METADATA = {"auth_provider": "microsoft"}  # what LiteLLM's SSO writes into a user it creates


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Clock:
    """Wall-clock stamps of the first request, the first POST and the last answer (seconds since
    the epoch, comparable across processes on this machine)."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.first: float | None = None
        self.first_post: float | None = None
        self.last: float | None = None

    def wrap(self, handler: Any) -> Any:
        def timed(request: Any) -> Any:
            arrived = time.time() - self.latency  # the server sleeps `latency` before the handler
            with self.lock:
                if self.first is None:
                    self.first = arrived
                if request.method == "POST" and self.first_post is None:
                    self.first_post = arrived
            response = handler(request)
            with self.lock:
                self.last = time.time()
            return response

        return timed


def _serve(kind: str, conn: Connection, config: dict[str, Any]) -> None:
    from emulators.graph import GraphEmulator, ResourceUnitBudget, Tenant
    from emulators.litellm import LiteLLMEmulator
    from emulators.litellm.cost import CostModel

    latency = float(config["latency"])
    clock = _Clock(latency)
    graph: GraphEmulator | None = None
    lite: LiteLLMEmulator | None = None

    def fresh_budget() -> ResourceUnitBudget:
        return ResourceUnitBudget(quota=int(config["quota"]), window_seconds=float(config["window"]))

    if kind == "graph":
        tenant = Tenant.from_dict(config["tenant"])
        del config["tenant"]
        graph = GraphEmulator(tenant, token=GRAPH_TOKEN, latency=latency, throttle=fresh_budget())
        server = graph.server
        url = graph.start()
    else:
        cost = CostModel.calibrated() if config.get("proxy_cost") else None
        lite = LiteLLMEmulator(master_key=MASTER_KEY, latency=latency, cost=cost)
        server = lite.server
        url = lite.start()
    server.handler = clock.wrap(server.handler)
    ru_base = 0
    cpu_base = _cpu()
    conn.send(url)
    while True:
        command = conn.recv()
        name = command[0]
        if name == "stop":
            server.stop()
            conn.send(None)
            return
        if name == "reset":
            server.clear_log()
            clock.reset()
            cpu_base = _cpu()
            if graph is not None:
                graph.throttle = fresh_budget()
                ru_base = graph.resource_units_used
            conn.send(None)
        elif name == "app_id":
            assert graph is not None
            conn.send(graph.tenant.app.get("appId"))
        elif name == "members":
            assert lite is not None
            conn.send(_litellm_members(lite.state))
        elif name == "sign_in":
            assert lite is not None
            for user_id, email in command[1]:
                lite.state.seed_user(user_id, email, metadata=dict(SSO_METADATA))
            conn.send(len(command[1]))
        elif name == "churn":
            assert graph is not None
            conn.send(_apply_churn(graph.tenant, command[1]))
        elif name == "stats":
            log = server.requests()
            stats: dict[str, Any] = {
                "requests": len(log),
                "by_method": dict(Counter(e.method for e in log)),
                "statuses": dict(Counter(e.status for e in log)),
                "errors": dict(Counter(f"{e.status} {e.method} {e.path}" for e in log
                                       if e.status >= 400 and e.status != 429)),
                "cpu_s": _cpu() - cpu_base,
                "max_rss_mb": _max_rss_mb(),
                "first": clock.first,
                "first_post": clock.first_post,
                "last": clock.last,
            }
            if graph is not None:
                stats["ru"] = graph.resource_units_used - ru_base
            if lite is not None:
                with lite.state.lock:
                    stats["teams"] = len(lite.state.teams)
                    stats["users"] = len(lite.state.users)
            conn.send(stats)
        else:
            conn.send(ValueError(f"unknown command {name!r}"))


def _litellm_members(state: Any) -> dict[str, Any]:
    """Team id -> role-"user" member ids, and team id -> alias."""
    with state.lock:
        members = {tid: [m["user_id"] for m in team["members_with_roles"] if m.get("role") == "user"]
                   for tid, team in state.teams.items()}
        aliases = {tid: team.get("team_alias") for tid, team in state.teams.items()}
    return {"members": members, "aliases": aliases}


def _apply_churn(tenant: Any, ops: list[tuple[str, str, str]]) -> int:
    for kind, group_id, arg in ops:
        if kind == "leave":
            tenant.remove_member(group_id, arg)
        elif kind == "join":
            tenant.add_member(group_id, arg)
        elif kind == "rename":
            tenant.rename_group(group_id, arg)
    return len(ops)


class Host:
    """One emulator in a child process (spawned: nothing of the parent's memory is inherited)."""

    def __init__(self, kind: str, config: dict[str, Any]) -> None:
        context = mp.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(kind, child, config), name=f"bench-{kind}",
                                       daemon=True)
        self.process.start()
        child.close()
        self.url: str = self._conn.recv()

    def call(self, *command: Any) -> Any:
        self._conn.send(command)
        answer = self._conn.recv()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(EOFError, OSError):
                self.call("stop")
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()  # only the process this object started
            self.process.join(5)

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

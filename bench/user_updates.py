"""User updates alone: how long the executor takes to adopt N users who signed in by SSO (one
UpdateUser each: the sync's marker written into their metadata), through /user/bulk_update
(SYNC_LITELLM_BULK=auto) and through one /user/update each (=off), against a real proxy or the
LiteLLM emulator. The users are fresh per mode; nothing else is in the plan, so the figures are the
update phase's own (the full initial sync around it: ``python -m bench --signed-in``).

    .venv/bin/python -m bench.user_updates --litellm-url http://127.0.0.1:4000 --users 2000
    .venv/bin/python -m bench.user_updates --users 20000              # the emulator, 20 ms a request
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Iterator

import httpx

from bench.hosts import SSO_METADATA
from bench.real_proxy import sign_in
from emulators.litellm import LiteLLMEmulator
from sync_core.actions import Plan, UpdateUser
from sync_core.executor import ExecutionOptions, Executor
from sync_core.litellm.client import LiteLLMClient
from sync_core.model import user_marker


@contextlib.contextmanager
def target(url: str | None, key: str, latency: float) -> Iterator[str]:
    if url:
        yield url
        return
    with LiteLLMEmulator(master_key=key, latency=latency) as emulator:
        yield emulator.base_url


async def adopt(url: str, key: str, user_ids: list[str], bulk: str, options: argparse.Namespace,
                ) -> tuple[float, dict[str, int], int]:
    """(seconds, calls by route, failed actions) of applying one UpdateUser per user."""
    plan = Plan(tuple(UpdateUser(user_id=u, email=f"{u}@bench.example", adopt=True, reason="bench",
                                 metadata={**SSO_METADATA, **user_marker(u, app="bench")}) for u in user_ids))
    async with LiteLLMClient(url, key, timeout=300) as client:
        started = time.perf_counter()
        executor = Executor(client, ExecutionOptions(bulk=bulk, concurrency=options.concurrency,
                                                     user_update_chunk=options.chunk))
        outcomes = await executor.apply(plan)
        seconds = time.perf_counter() - started
        return seconds, dict(client.calls), sum(1 for o in outcomes if o.status != "applied")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--litellm-url", help="a real proxy; default: the LiteLLM emulator")
    parser.add_argument("--litellm-key", default=os.environ.get("LITELLM_CONTRACT_KEY", "sk-test-master"))
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16,
                        help="SYNC_LITELLM_CONCURRENCY: updates (per call) or bulk updates in flight")
    parser.add_argument("--chunk", type=int, default=100, help="SYNC_USER_UPDATE_CHUNK")
    parser.add_argument("--modes", default="auto,off", help="SYNC_LITELLM_BULK values to run")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request (emulator only)")
    args = parser.parse_args()
    with target(args.litellm_url, args.litellm_key, args.latency) as url:
        for bulk in args.modes.split(","):
            tag = uuid.uuid4().hex[:6]
            user_ids = [f"bench-adopt-{tag}-{i:06d}" for i in range(args.users)]
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {args.litellm_key}"},
                              timeout=300) as http:
                sign_in(http, [(u, f"{u}@bench.example") for u in user_ids])
            seconds, calls, failed = asyncio.run(adopt(url, args.litellm_key, user_ids, bulk, args))
            print(f"SYNC_LITELLM_BULK={bulk}: {args.users:,} adoptions in {seconds:.1f} s, "
                  f"{sum(calls.values()):,} requests {calls}, {failed} failed", flush=True)


if __name__ == "__main__":
    main()

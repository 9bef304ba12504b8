"""Command line: `python -m sync_core plan|apply`.

Exit codes: 0 all went well, 1 the run needs attention (failed actions, part of Entra unread),
2 configuration error, 3 the circuit breaker held removals back (apply --force lets them through once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from sync_core.errors import ConfigError, LockBusy, RequestError, SyncError
from sync_core.report import EXIT_CONFIG, EXIT_FAILED
from sync_core.runner import RunRequest, run_recorded
from sync_core.settings import Settings, load_local_settings


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sync_core", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["plan", "apply"], help="plan shows, apply changes LiteLLM")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--settings", type=Path, help="read the Values of a local.settings.json")
    parser.add_argument("--force", action="store_true", help="apply removals held by the circuit breaker")
    parser.add_argument("--limit", type=int, metavar="N", help="show at most N action lines (text output)")
    parser.add_argument("--group", action="append", dest="groups", metavar="GROUP_ID",
                        help="sync only this assigned group (repeatable)")
    return parser.parse_args(argv)


def environment(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, str]:
    """The process environment, overlaid by --settings (what `func start` would export)."""
    merged = dict(env)
    if args.settings is not None:
        merged.update(load_local_settings(args.settings))
    return merged


async def _run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    settings = Settings.from_env(env)
    request = RunRequest(dry_run=args.command == "plan", force=args.force, trigger="cli",
                         group_ids=frozenset(g.lower() for g in args.groups) if args.groups else None)
    from sync_core.state import open_state

    state = open_state(env)
    report = await run_recorded(settings, request, state)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.render_text(args.limit))
    return report.exit_code


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(_run(args, environment(args, os.environ if env is None else env)))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (LockBusy, RequestError) as exc:
        print(f"not run: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except SyncError as exc:
        print(f"sync failed: {exc}", file=sys.stderr)
        return EXIT_FAILED

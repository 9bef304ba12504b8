"""Command line: `python -m sync_core plan|apply|log|doctor|grant-permissions|policy check`.

Exit codes: 0 all went well, 1 the run needs attention (failed actions, part of Entra unread) or a
doctor check failed, 2 configuration error, 3 the circuit breaker held removals back (apply --force
lets them through once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from sync_core import progress, telemetry
from sync_core.errors import ConfigError, LockBusy, RequestError
from sync_core.redact import error_line, install_log_redaction, redact
from sync_core.report import EXIT_CONFIG, EXIT_FAILED
from sync_core.runner import RunRequest, run_recorded
from sync_core.settings import GUID_RE, GraphSettings, Settings, load_local_settings


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sync_core", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--settings", type=Path, help="read the Values of a local.settings.json")
    run = argparse.ArgumentParser(add_help=False, parents=[common])
    run.add_argument("--json", action="store_true", help="print the report as JSON")
    run.add_argument("--force", action="store_true", help="apply removals held by the circuit breaker")
    run.add_argument("--limit", type=int, metavar="N", help="show at most N action lines (text output)")
    run.add_argument("--group", action="append", dest="groups", metavar="GROUP_ID", type=_guid,
                     help="sync only this assigned group (repeatable)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("plan", parents=[run], help="show what would change; changes nothing")
    commands.add_parser("apply", parents=[run], help="change LiteLLM to match Entra")
    history = commands.add_parser("log", parents=[common],
                                  help="what the sync did to whom, and why (the provisioning log)")
    history.add_argument("--user", metavar="EMAIL|ID", help="only this user's entries")
    history.add_argument("--team", metavar="ALIAS|ID", help="only this team's entries")
    history.add_argument("--since", type=_since, metavar="AGE", help="e.g. 7d, 12h, 30m (default: all kept)")
    history.add_argument("--json", action="store_true", help="print the entries as a JSON list")
    commands.add_parser("doctor", parents=[common], help="check every prerequisite; changes nothing")
    grant = commands.add_parser("grant-permissions", parents=[common],
                                help="grant the sync's identity its Microsoft Graph permissions")
    policy = commands.add_parser("policy", help="work with the team policy file (SYNC_TEAM_POLICY_FILE)")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True)
    check = policy_commands.add_parser("check", parents=[common], help="validate a team policy file offline")
    check.add_argument("file", nargs="?", type=Path, metavar="FILE",
                       help="the file to check (default: SYNC_TEAM_POLICY_FILE)")
    grant.add_argument("--principal-id", required=True, type=_guid, metavar="OBJECT_ID",
                       help="object id of the identity's service principal (a managed identity's "
                       "principalId)")
    grant.add_argument("--wait-for-identity", type=float, default=0, metavar="SECONDS",
                       help="while Microsoft Graph does not know the principal yet (a new identity), "
                       "look again for up to SECONDS (the post-provision hook waits 180)")
    return parser.parse_args(argv)


def _guid(value: str) -> str:
    if not GUID_RE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an object id (a GUID)")
    return value.lower()


def _since(value: str) -> timedelta:
    from sync_core.provisioning_log import parse_since

    try:
        return parse_since(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def environment(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, str]:
    """The process environment, overlaid by --settings (what `func start` would export)."""
    merged = dict(env)
    if args.settings is not None:
        merged.update(load_local_settings(args.settings))
    return merged


async def _command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if args.command == "doctor":
        return await _doctor(env)
    if args.command == "grant-permissions":
        return await _grant(args.principal_id, env, args.wait_for_identity)
    if args.command == "log":
        return await _log(args, env)
    if args.command == "policy":
        return _policy_check(args.file, env)
    return await _run(args, env)


async def _run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    settings = Settings.from_env(env)
    request = RunRequest(dry_run=args.command == "plan", force=args.force, trigger="cli",
                         group_ids=frozenset(args.groups) if args.groups else None)
    from sync_core.state import open_state

    state = open_state(env)
    async with progress.shown(sys.stderr, enabled=not args.json):
        report = await run_recorded(settings, request, state)
    print(redact(json.dumps(report.to_dict(), indent=2) if args.json else report.render_text(args.limit)))
    return report.exit_code


async def _log(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from sync_core import provisioning_log
    from sync_core.state import open_state

    state = open_state(env)
    try:
        found = await provisioning_log.read(state, provisioning_log.Query(args.user, args.team, args.since))
    finally:
        await state.aclose()
    print(json.dumps(found, indent=2) if args.json else provisioning_log.render_text(found))
    return 0


async def _doctor(env: Mapping[str, str]) -> int:
    from sync_core.doctor import run_checks

    checks = await run_checks(env, emit=lambda check: print(redact(check.line()), flush=True))
    failed = sum(1 for check in checks if check.status != "ok")
    print(f"{len(checks) - failed} of {len(checks)} checks passed" if failed
          else f"all {len(checks)} checks passed")
    return EXIT_FAILED if failed else 0


async def _grant(principal_id: str, env: Mapping[str, str], wait_seconds: float) -> int:
    from sync_core.grant import grant_permissions, operator_credential
    from sync_core.graph.client import build_graph_client

    settings = GraphSettings.from_env(env)
    client = build_graph_client(settings, credential=operator_credential(settings))
    print(f"Microsoft Graph application permissions for {principal_id} ({settings.graph_base_url}):")
    result = await grant_permissions(client, principal_id, wait_seconds=wait_seconds,
                                     progress=lambda line: print(f"  {line}", flush=True))
    print(f"granted {len(result.granted)}, already there {len(result.present)}")
    return 0


def _policy_check(file: Path | None, env: Mapping[str, str]) -> int:
    from sync_core.team_policy_file import SETTING, check_file, resolve_path

    if file is None and not env.get(SETTING, "").strip():
        raise ConfigError(SETTING, "is not set; name the file: policy check FILE")
    path = file if file is not None else resolve_path(env[SETTING].strip())
    policy, problems = check_file(path)
    for problem in problems:
        print(f"{path}:{problem.line}: {problem.message}")
    if policy is None:
        print(f"{len(problems)} problem(s); the sync refuses to run with this file")
        return EXIT_CONFIG
    print(f"{path}: valid, {len(policy.rules)} rule(s)")
    return 0


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    install_log_redaction()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        merged = environment(args, os.environ if env is None else env)
        telemetry.start(merged)
        return asyncio.run(_command(args, merged))
    except ConfigError as exc:
        print(f"configuration error: {redact(exc)}", file=sys.stderr)  # one line per problem
        return EXIT_CONFIG
    except (LockBusy, RequestError) as exc:
        print(f"not run: {error_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # one redacted line: a traceback may quote a secret
        what = "sync" if args.command in ("plan", "apply") else args.command
        print(f"{what} failed: {error_line(exc)}", file=sys.stderr)
        return EXIT_FAILED

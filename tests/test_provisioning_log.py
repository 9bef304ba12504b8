"""The provisioning log end to end: the CLI's runs against both emulators append to .sync-state/log,
and `log` answers what the sync did to a person and why, across runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emulators.graph import GraphEmulator
from emulators.litellm import LiteLLMEmulator
from sync_core.provisioning_log import parse_since
from tests.conftest import MASTER_KEY, run_cli
from tests.expectations import LiteLLMReadback
from tests.tenants import oid

LOG = Path(".sync-state/log")


def test_two_runs_then_log_user_shows_both_actions_with_reasons(env, graph: GraphEmulator) -> None:
    first = run_cli(env, "apply", "--json").json()
    graph.tenant.remove_member(oid("Engineering"), oid("eng0"))
    second = run_cli(env, "apply", "--json").json()

    shown = run_cli(env, "log", "--user", "ENG0@contoso.com", "--json")
    assert shown.code == 0, shown.err
    entries = shown.json()
    by_run = {(e["run_id"], e["type"]) for e in entries if e.get("team_id") == oid("Engineering")}
    assert (first["run_id"], "add_member") in by_run and (second["run_id"], "remove_member") in by_run
    removal = next(e for e in entries if e["type"] == "remove_member")
    # the report's action keys, plus who and which team by name, and when, which run, which trigger
    row = next(a for a in second["actions"] if a["type"] == "remove_member" and a.get("user_id") == oid("eng0"))
    assert removal.items() >= row.items()
    assert removal["user_email"] == "eng0@contoso.com" and removal["team_alias"] == "Engineering"
    assert removal["trigger"] == "cli" and removal["outcome"] == "applied" and removal["reason"]
    assert datetime.fromisoformat(removal["time"]) > datetime.now(UTC) - timedelta(minutes=5)
    assert all(e.get("user_id") == oid("eng0") or e.get("user_email") == "eng0@contoso.com" for e in entries)

    text = run_cli(env, "log", "--user", oid("eng0"), "--team", "engineering", "--since", "1h")
    lines = text.out.splitlines()
    assert len(lines) == 2 and "applied: add_member eng0@contoso.com team 'Engineering'" in lines[0]
    assert lines[1].endswith(f"({removal['reason']})")
    assert run_cli(env, "log", "--team", oid("Operations"), "--user", "eng0@contoso.com").out == "no entries\n"


def test_a_dry_run_writes_nothing_and_old_days_are_pruned(env) -> None:
    assert run_cli(env, "plan").code == 0
    assert not LOG.exists()
    LOG.mkdir(parents=True)
    old, kept = (datetime.now(UTC).date() - timedelta(days=n) for n in (8, 7))
    for day in (old, kept):
        (LOG / f"{day}.jsonl").write_text(json.dumps({"time": f"{day}T00:00:00+00:00", "type": "x"}) + "\n")
    assert run_cli({**env, "SYNC_LOG_RETENTION_DAYS": "7"}, "apply").code == 0
    assert sorted(p.name for p in LOG.iterdir()) == [f"{kept}.jsonl", f"{datetime.now(UTC).date()}.jsonl"]
    assert len(run_cli(env, "log", "--json").json()) > 1
    assert run_cli(env, "log", "--since", "2d", "--json").json()[0]["type"] != "x"


def test_a_log_that_cannot_be_written_does_not_stop_the_writes_and_needs_attention(
        env, lite: LiteLLMEmulator) -> None:
    Path(".sync-state").mkdir()
    LOG.write_text("a file where the log directory belongs")  # every append fails
    result = run_cli(env, "apply", "--json")
    report = result.json()
    assert result.code == 1 and report["summary"]["teams_created"] == 3 and report["summary"]["failed"] == 0
    assert len(LiteLLMReadback(lite.base_url, MASTER_KEY).teams()) == 3  # the writes happened
    reason = report["attention"][0]  # pruning it fails as well
    assert reason.startswith("the provisioning log could not be written") and "in its report only" in reason
    assert reason in json.loads(Path(".sync-state/last-report.json").read_text())["attention"]


@pytest.mark.parametrize(("text", "expected"), [("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)),
                                                ("7d", timedelta(days=7)), ("2w", timedelta(weeks=2))])
def test_since(text: str, expected: timedelta) -> None:
    assert parse_since(text) == expected


def test_a_bad_since_is_refused_naming_the_form(env) -> None:
    for bad in ("7", "7 days", "-1d", "d"):
        with pytest.raises(ValueError, match="such as 7d"):
            parse_since(bad)
    with pytest.raises(SystemExit) as exited:
        run_cli(env, "log", "--since", "week")
    assert exited.value.code == 2

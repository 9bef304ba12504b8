"""The deletion circuit breaker: table tests of the rule, and its effect on a real run."""

from __future__ import annotations

import pytest

from sync_core.actions import Plan, RemoveMember
from sync_core.executor import Outcome
from sync_core.report import Report
from sync_core.safety import check
from tests.conftest import run_cli
from tests.tenants import oid


def plan_with(removals: int, memberships: int) -> Plan:
    actions = tuple(RemoveMember(team_id="t", user_id=f"u{i}", reason="left") for i in range(removals))
    return Plan(actions, managed_memberships=memberships)


@pytest.mark.parametrize(("removals", "memberships", "max_removals", "max_percent", "tripped"), [
    (0, 0, 100, 20, False),
    (100, 10_000, 100, 20, False),  # exactly at the count limit
    (101, 10_000, 100, 20, True),  # over the count limit
    (20, 100, 100, 20, False),  # exactly 20 %
    (21, 100, 100, 20, True),  # over 20 %
    (5, 10, 100, 20, False),  # 50 %, but under 20 memberships the percentage does not apply
    (10, 20, 100, 20, True),  # 50 % of 20: applies
    (1, 1000, 0, 100, True),  # SYNC_MAX_REMOVALS=0: every removal needs --force
])
def test_breaker_rule(removals, memberships, max_removals, max_percent, tripped) -> None:
    assert check(plan_with(removals, memberships), max_removals=max_removals, max_percent=max_percent).tripped is tripped


def test_a_tripped_breaker_holds_removals_applies_the_rest_and_exits_3(env, graph, lite) -> None:
    assert run_cli(env, "apply").code == 0
    for i in range(6):
        graph.tenant.remove_member(oid("Engineering"), oid(f"eng{i}"))
    graph.tenant.add_member(oid("Operations"), oid("eng0"))
    strict = {**env, "SYNC_MAX_REMOVALS": "3"}

    plan = run_cli(strict, "plan", "--json")
    assert plan.code == 3 and plan.json()["breaker"]["tripped"] is True
    assert plan.json()["summary"]["held"] == 11  # 6 member removals, 5 leavers (eng0 moved to Operations)

    held = run_cli(strict, "apply", "--json")
    report = held.json()
    assert held.code == 3
    assert report["summary"]["members_added"] == 1 and report["summary"]["held"] == 11
    assert report["summary"]["members_removed"] == 0 and report["summary"]["users_blocked"] == 0
    assert {a["outcome"] for a in report["actions"] if a["type"] in ("remove_member", "block_user")} == {"held"}

    forced = run_cli(strict, "apply", "--force", "--json")
    assert forced.code == 0 and forced.json()["summary"]["members_removed"] == 6
    assert forced.json()["summary"]["users_blocked"] == 5


def test_the_stored_report_keeps_every_unusual_action_and_caps_the_rest() -> None:
    plan = plan_with(10, 100)
    outcomes = [Outcome("applied")] * 7 + [Outcome("failed", "boom"), Outcome("held"), Outcome("applied")]
    report = Report(False, "test", plan, outcomes, check(plan, max_removals=100, max_percent=100))
    stored = report.to_dict(max_actions=4)
    assert [a["outcome"] for a in stored["actions"]] == ["failed", "held", "applied", "applied"]
    assert stored["actions_omitted"] == 6 and stored["summary"]["members_removed"] == 8
    assert report.to_dict()["actions_omitted"] == 0 and len(report.to_dict()["actions"]) == 10

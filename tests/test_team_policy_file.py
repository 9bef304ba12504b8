"""The team policy file: checked offline with line numbers (`policy check`), and a bad file stops a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync_core.cli import main
from sync_core.errors import ConfigError
from sync_core.settings import Settings
from sync_core.team_policy import FIELDS, Mode
from sync_core.team_policy_file import APP_DIR, TeamFields, check_text, resolve_path

GOOD = """\
rules:
  - name: everyone                # unique; shown in the plan
    groups: "*"
    set: {models: [gpt-4o-mini], max_budget: 20, budget_duration: 30d}
  - name: engineering
    groups: ["Eng *", "2f0c1e4a-0000-4000-8000-000000000000"]
    set: {models: [gpt-4o, gpt-4o-mini], max_budget: 500, team_member_budget: 50}
  - name: sales-start
    groups: "Sales*"
    mode: create
    set: {tpm_limit: 10000, metadata: {cost_center: "42"}}
"""


def test_the_file_takes_exactly_the_fields_the_planner_compares() -> None:
    assert list(TeamFields.model_fields) == list(FIELDS)


def test_the_documented_example_parses() -> None:
    policy, problems = check_text(GOOD)
    assert problems == [] and policy is not None
    assert [(r.name, r.groups, r.mode, r.line) for r in policy.rules] == [
        ("everyone", ("*",), Mode.ENFORCE, 2),
        ("engineering", ("Eng *", "2f0c1e4a-0000-4000-8000-000000000000"), Mode.ENFORCE, 5),
        ("sales-start", ("Sales*",), Mode.CREATE, 8)]
    assert policy.rules[1].fields == {"models": ["gpt-4o", "gpt-4o-mini"], "max_budget": 500.0,
                                      "team_member_budget": 50.0}


BAD = [
    ("not yaml", "rules: [", 1, "not valid YAML"),
    ("empty", "", 1, "empty"),
    ("unknown top-level key", "rules: []\nextra: 1\n", 2, "unknown key 'extra'"),
    ("rules not a list", "rules: {a: 1}\n", 1, "must be a list"),
    ("unknown rule key", "rules:\n  - name: a\n    groups: x\n    set: {tpm_limit: 1}\n    colour: red\n", 5,
     "unknown rule key 'colour'"),
    ("missing set", "rules:\n  - name: a\n    groups: x\n", 2, "a rule needs 'set'"),
    ("unknown field", "rules:\n  - name: a\n    groups: x\n    set:\n      modles: [m]\n", 5,
     "set.modles: not a team field"),
    ("mistyped field", "rules:\n  - name: a\n    groups: x\n    set:\n      tpm_limit: 1.5\n", 5,
     "set.tpm_limit: Input should be a valid integer"),
    ("null is no value", "rules:\n  - name: a\n    groups: x\n    set:\n      max_budget: null\n", 5,
     "set.max_budget"),
    ("a list item", "rules:\n  - name: a\n    groups: x\n    set:\n      models:\n        - ok\n        - 3\n", 7,
     "set.models.1"),
    ("bad duration", "rules:\n  - name: a\n    groups: x\n    set: {budget_duration: 30x}\n", 4,
     "expected a duration"),
    ("duplicate names", "rules:\n  - {name: a, groups: x, set: {tpm_limit: 1}}\n"
                        "  - {name: a, groups: y, set: {tpm_limit: 2}}\n", 3, "'a' is used twice (first at line 2)"),
    ("duplicate key", "rules:\n  - name: a\n    name: b\n    groups: x\n    set: {tpm_limit: 1}\n", 3,
     "appears twice"),
    ("bad mode", "rules:\n  - {name: a, groups: x, mode: always, set: {tpm_limit: 1}}\n", 2,
     "mode must be enforce or create"),
    ("glob with spaces", "rules:\n  - name: a\n    groups: [ok, ' Eng']\n    set: {tpm_limit: 1}\n", 3,
     "can never match"),
    ("empty range", "rules:\n  - name: a\n    groups: '[z-a]*'\n    set: {tpm_limit: 1}\n", 3, "range z-a is empty"),
    ("no groups", "rules:\n  - name: a\n    groups: []\n    set: {tpm_limit: 1}\n", 3, "groups is empty"),
    ("the marker", "rules:\n  - name: a\n    groups: x\n    set:\n      metadata: {entra_sync: {}}\n", 5,
     "the sync's own marker"),
    ("a field the update ignores", "rules:\n  - name: a\n    groups: x\n    set: {max_parallel_requests: 2}\n", 4,
     "/team/update ignores it"),
    ("owners_as_admins not a bool", "rules:\n  - name: a\n    groups: x\n    owners_as_admins: yes please\n", 4,
     "owners_as_admins must be true or false"),
    ("neither set nor owners_as_admins", "rules:\n  - name: a\n    groups: x\n", 2, "a rule needs 'set'"),
]


def test_owners_as_admins_is_a_rule_of_its_own_or_beside_set() -> None:
    policy, problems = check_text("rules:\n  - {name: a, groups: 'Eng*', owners_as_admins: true}\n"
                                  "  - {name: b, groups: 'Eng Ops', set: {tpm_limit: 1}, owners_as_admins: false}\n")
    assert problems == [] and policy is not None
    assert policy.reads_owners
    assert policy.owners_as_admins("g1", "Eng Web") and not policy.owners_as_admins("g2", "Eng Ops")
    assert not policy.owners_as_admins("g3", "Sales")


@pytest.mark.parametrize(("text", "line", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_problems_name_their_line(text: str, line: int, expected: str) -> None:
    policy, problems = check_text(text)
    assert policy is None
    assert any(p.line == line and expected in p.message for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    text = "rules:\n  - name: a\n    groups: ' x'\n    set: {tpm_limit: -1, budget_duration: 1y}\n    colour: 1\n"
    _, problems = check_text(text)
    assert [p.line for p in problems] == [3, 4, 4, 5]


def test_policy_check_exits_0_when_valid_and_2_when_not(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(GOOD.replace("tpm_limit: 10000", "tpm_limit: lots"))
    assert main(["policy", "check", str(good)], env={}) == 0
    assert "valid, 3 rule(s)" in capsys.readouterr().out
    assert main(["policy", "check", str(bad)], env={}) == 2
    assert f"{bad}:11: set.tpm_limit: Input should be a valid integer (got 'lots')" in capsys.readouterr().out
    assert main(["policy", "check"], env={"SYNC_TEAM_POLICY_FILE": str(bad)}) == 2
    assert main(["policy", "check"], env={}) == 2
    assert "SYNC_TEAM_POLICY_FILE: is not set" in capsys.readouterr().err


def test_a_relative_path_is_the_app_folders() -> None:
    assert resolve_path("team-policy.yaml") == APP_DIR / "team-policy.yaml"
    assert (APP_DIR / "function_app.py").is_file()
    assert resolve_path("/etc/x.yaml") == Path("/etc/x.yaml")


def test_a_bad_file_is_a_settings_error_before_any_call(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {name: a, groups: x, set: {modles: [m]}}\n")
    env = {"LITELLM_BASE_URL": "http://127.0.0.1:9", "LITELLM_MASTER_KEY": "k", "ENTRA_APP_ID": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
           "ENTRA_TENANT_ID": "1" * 8 + "-0000-0000-0000-" + "0" * 12}
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({**env, "SYNC_TEAM_POLICY_FILE": str(bad)})
    assert raised.value.setting == "SYNC_TEAM_POLICY_FILE" and "line 2: set.modles" in raised.value.problem
    (tmp_path / "good.yaml").write_text(GOOD)
    settings = Settings.from_env({**env, "SYNC_TEAM_POLICY_FILE": str(tmp_path / "good.yaml")})
    assert len(settings.policy().team_policy.rules) == 3
    assert main(["plan"], env={**env, "SYNC_TEAM_POLICY_FILE": str(bad)}) == 2  # port 9: never called


def test_the_deployment_package_keeps_a_policy_file_at_the_app_root() -> None:
    ignored = (APP_DIR / ".funcignore").read_text().split()
    assert "team-policy.yaml" not in ignored and "*.yaml" not in ignored and "*.yml" not in ignored

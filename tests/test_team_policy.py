"""The team policy in the pure planner: table tests (rule order, precedence, enforce vs create, drift,
a changed file, a team no longer matched, narrowing held by the breaker) and sequences of runs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_core.actions import CreateTeam, UpdateTeam
from sync_core.model import LiteLLMState, LiteLLMTeam
from sync_core.planner import Policy, plan
from sync_core.safety import check
from sync_core.team_policy import Mode, Rule, TeamPolicy, unserved_models
from tests.planning import apply_plan, directory, gid, group, litellm, team, user

G1, G2 = gid(1), gid(2)
# What a team the sync created reads back as when nothing was set: the proxy's own defaults.
UNSET = {"models": [], "max_budget": None, "soft_budget": None, "budget_duration": None, "tpm_limit": None,
         "rpm_limit": None, "model_aliases": {}, "tags": None, "guardrails": None,
         "team_member_key_duration": None, "team_member_budget": None, "team_member_budget_duration": None,
         "team_member_rpm_limit": None, "team_member_tpm_limit": None}


def rule(name: str, groups: str | tuple[str, ...], mode: Mode = Mode.ENFORCE, **fields: Any) -> Rule:
    return Rule(name, (groups,) if isinstance(groups, str) else groups, fields, mode)


def policy(*rules: Rule) -> Policy:
    return Policy(team_policy=TeamPolicy(rules))


def sales(members: tuple[int, ...] = (1,)) -> object:
    return directory([group(1, members, name="Sales EMEA")], [user(n) for n in members])


def sales_team(metadata: dict | None = None, **fields: Any) -> LiteLLMTeam:
    return replace(team(G1, "Sales EMEA", [1], metadata=metadata), fields={**UNSET, **fields})


def lines(p) -> list[str]:
    return [a.describe() for a in p.actions]


@dataclass
class Case:
    name: str
    rules: tuple[Rule, ...]
    state: LiteLLMState
    expected: list[str]
    notes: tuple[str, ...] = ()
    entra: object = field(default_factory=sales)


CASES = [
    Case("no rule: a team keeps what it has", (), litellm([sales_team(models=["gpt-4o"])], [1]), []),
    Case("drift by hand is put back, naming the rule",
         (rule("sales", "Sales*", models=["gpt-4o-mini"]),),
         litellm([sales_team(models=["gpt-4o"])], [1]),
         ["update team 'Sales EMEA': models ['gpt-4o'] -> ['gpt-4o-mini'] (rule 'sales')"]),
    Case("in line with the policy: nothing to do; list order is no drift",
         (rule("sales", "Sales*", models=["b", "a"], max_budget=20.0),),
         litellm([sales_team(models=["a", "b"], max_budget=20)], [1]), []),
    Case("later rules win field by field",
         (rule("everyone", "*", models=["small"], max_budget=20.0),
          rule("sales", "sales*", max_budget=50.0)),
         litellm([sales_team()], [1]),
         ["update team 'Sales EMEA': models [] -> ['small'] (rule 'everyone'); "
          "max_budget None -> 50.0 (rule 'sales')"]),
    Case("a group object id matches like a glob",
         (rule("by-id", G1, tpm_limit=10),), litellm([sales_team(tpm_limit=99)], [1]),
         ["update team 'Sales EMEA': tpm_limit 99 -> 10 (rule 'by-id')"]),
    Case("a create rule never touches an existing team",
         (rule("start", "*", Mode.CREATE, tpm_limit=10),), litellm([sales_team(tpm_limit=99)], [1]), []),
    Case("fields no rule names are never touched",
         (rule("sales", "*", rpm_limit=5),), litellm([sales_team(rpm_limit=5, max_budget=999, tpm_limit=1)], [1]),
         []),
    Case("a team the policy stops matching keeps its fields",
         (rule("eng", "Eng*", models=["big"]),), litellm([sales_team(models=["big"], max_budget=500)], [1]), [],
         notes=("rule 'eng' matches no assigned group",)),
    Case("metadata: the policy's keys only, other keys and the marker kept",
         (rule("sales", "*", metadata={"cost_center": "42"}),),
         litellm([sales_team(metadata={"cost_center": "7", "owner": "ann"})], [1]),
         ["update team 'Sales EMEA': metadata.cost_center '7' -> '42' (rule 'sales')"]),
    Case("a field the proxy does not report is not compared, and said once",
         (rule("sales", "*", soft_budget=5.0),),
         litellm([replace(team(G1, "Sales EMEA", [1]), fields={"models": []})], [1]), [],
         notes=("does not report soft_budget",)),
    Case("a new team gets policy fields over the defaults, with their rules",
         (rule("everyone", "*", max_budget=20.0), rule("start", "Sales*", Mode.CREATE, tpm_limit=10)),
         litellm(users=[1]),
         [f"create team 'Sales EMEA' ({G1}) with tpm_limit (rule 'start'); max_budget (rule 'everyone')",
          "add user1@contoso.com to team 'Sales EMEA'"]),
    Case("the proxy lists no models: a note",
         (rule("sales", "*", models=["gpt-4o"]),),
         replace(litellm([sales_team(models=["gpt-4o"])], [1]), models=frozenset()), [],
         notes=("lists no models",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_policy_plans(case: Case) -> None:
    result = plan(case.entra, case.state, policy(*case.rules))
    assert lines(result) == case.expected
    for expected in case.notes:
        assert any(expected in note for note in result.notes), result.notes


def test_creation_merges_the_policy_over_default_team_params() -> None:
    rules = TeamPolicy((rule("all", "*", max_budget=20.0, metadata={"tier": "gold"}),
                        rule("start", "*", Mode.CREATE, models=["m"])))
    defaults = {"max_budget": 5.0, "budget_duration": "30d", "metadata": {"tier": "bronze", "owner": "it"}}
    (create, _) = plan(sales(), litellm(users=[1]), Policy(default_team_params=defaults, team_policy=rules)).actions
    assert isinstance(create, CreateTeam)
    assert create.params == {"max_budget": 20.0, "budget_duration": "30d", "models": ["m"],
                             "metadata": {"tier": "gold", "owner": "it"}}
    assert create.rules == {"max_budget": "all", "metadata.tier": "all", "models": "start"}
    assert create.to_dict()["policy"] == {"max_budget": "all", "metadata.tier": "all", "models": "start"}


def test_the_update_writes_full_metadata_with_the_marker_and_json_has_before_and_after() -> None:
    state = litellm([sales_team(metadata={"owner": "ann"})], [1])
    (update,) = plan(sales(), state, policy(rule("s", "*", metadata={"tier": "gold"}), rule("m", "*",
                                                                                             max_budget=3.0))).actions
    assert isinstance(update, UpdateTeam)
    assert update.body == {"max_budget": 3.0,
                           "metadata": {"owner": "ann", "tier": "gold", **state.teams[G1].metadata}}
    assert update.to_dict()["changes"] == [
        {"field": "metadata.tier", "before": None, "after": "gold", "rule": "s"},
        {"field": "max_budget", "before": None, "after": 3.0, "rule": "m"}]


def test_a_member_budget_update_carries_the_metadata_1_80_would_drop() -> None:
    state = litellm([sales_team()], [1])
    (update,) = plan(sales(), state, policy(rule("s", "*", team_member_budget=5.0))).actions
    assert update.body == {"team_member_budget": 5.0, "metadata": dict(state.teams[G1].metadata)}  # type: ignore


def test_an_adopted_team_keeps_the_marker_the_adoption_writes() -> None:
    state = litellm([replace(team(G1, "Sales EMEA", [1], managed=False), fields=UNSET)], [1])
    adopt, update = plan(sales(), state, policy(rule("s", "*", metadata={"tier": "gold"}))).actions
    assert update.body["metadata"] == {**adopt.metadata, "tier": "gold"}  # type: ignore[attr-defined]


@pytest.mark.parametrize(("field_name", "before", "after", "narrows"), [
    ("models", ["a", "b"], ["a"], True),  # a model removed
    ("models", ["a"], ["a", "b"], False),
    ("models", [], ["a"], True),  # an empty list is every model
    ("models", ["a"], [], False),
    ("max_budget", 10.0, 5.0, True),
    ("max_budget", None, 5.0, True),  # unlimited -> limited
    ("max_budget", 5.0, 10.0, False),
    ("tpm_limit", 100, 10, True),
    ("team_member_budget", 5.0, 1.0, True),
    ("soft_budget", 5.0, 1.0, False),  # an alert threshold grants nothing
    ("budget_duration", "30d", "1d", False),
])
def test_what_narrows_a_teams_access(field_name: str, before: Any, after: Any, narrows: bool) -> None:
    state = litellm([sales_team(**{field_name: before})], [1])
    (update,) = plan(sales(), state, policy(rule("r", "*", **{field_name: after}))).actions
    assert update.removal is narrows


def test_narrowing_counts_one_removal_per_team_and_trips_the_breaker() -> None:
    entra = directory([group(1, [1], name="Sales 1"), group(2, [1], name="Sales 2")], [user(1)])
    state = litellm([replace(team(G1, "Sales 1", [1]), fields={**UNSET, "models": ["a", "b"], "max_budget": 9}),
                     replace(team(G2, "Sales 2", [1]), fields={**UNSET, "models": ["a"]})], [1])
    result = plan(entra, state, policy(rule("bad edit", "Sales*", models=["a"], max_budget=1.0)))
    assert [len(a.changes) for a in result.removals] == [2, 1]  # type: ignore[attr-defined]
    assert check(result, max_removals=1, max_percent=100).tripped
    assert not check(result, max_removals=2, max_percent=100).tripped


def _after(p, state: LiteLLMState) -> LiteLLMState:
    """Apply, including the policy's field writes the shared model does not know."""
    applied = apply_plan(p, state)
    teams = dict(applied.teams)
    for action in p.actions:
        if isinstance(action, UpdateTeam):
            fields = {k: v for k, v in action.body.items() if k != "metadata"}
            metadata = action.body.get("metadata", teams[action.team_id].metadata)
            teams[action.team_id] = replace(teams[action.team_id], metadata=metadata,
                                            fields={**teams[action.team_id].fields, **fields})
        elif isinstance(action, CreateTeam):  # as the executor sends it: the marker over the metadata
            fields = {k: v for k, v in action.params.items() if k != "metadata"}
            created = teams[action.team_id]
            teams[action.team_id] = replace(created, fields={**UNSET, **fields},
                                            metadata={**action.params.get("metadata", {}), **created.metadata})
    return replace(applied, teams=teams)


def test_runs_in_sequence_drift_put_back_file_changed_then_nothing_to_do() -> None:
    first = policy(rule("everyone", "*", models=["small"], max_budget=20.0),
                   rule("start", "Sales*", Mode.CREATE, tpm_limit=100))
    state = _after(plan(sales(), litellm(), first), litellm())
    assert plan(sales(), state, first).actions == ()  # converged in one run
    drifted = replace(state, teams={G1: replace(state.teams[G1], fields={**state.teams[G1].fields,
                                                                            "models": ["small", "big"],
                                                                            "tpm_limit": 5})})
    (back,) = plan(sales(), drifted, first).actions  # the create rule's field stays as the admin left it
    assert [c.field for c in back.changes] == ["models"]  # type: ignore[attr-defined]
    state = _after(plan(sales(), drifted, first), drifted)
    changed = policy(rule("everyone", "*", models=["small"], max_budget=40.0))
    (update,) = plan(sales(), state, changed).actions
    assert lines(plan(sales(), state, changed)) == [
        "update team 'Sales EMEA': max_budget 20.0 -> 40.0 (rule 'everyone')"]
    assert not update.removal
    assert plan(sales(), _after(plan(sales(), state, changed), state), changed).actions == ()


def test_at_creation_an_enforce_rule_wins_over_a_later_create_rule() -> None:
    rules = policy(rule("huge", "*", rpm_limit=600), rule("start", "*", Mode.CREATE, rpm_limit=60, tpm_limit=5))
    first = plan(sales(), litellm(), rules)
    create = first.actions[0]
    assert create.params == {"rpm_limit": 600, "tpm_limit": 5}  # type: ignore[attr-defined]
    assert plan(sales(), _after(first, litellm()), rules).actions == ()  # no second write


@pytest.mark.parametrize(("models", "served", "refused"), [
    (["gpt-4o"], {"gpt-4o", "o1"}, []),
    (["gpt-4o", "gpt-5"], {"gpt-4o"}, [("r", "gpt-5")]),
    (["openai/gpt-4o"], {"openai/*"}, []),  # a served wildcard route serves what it matches
    (["openai/*"], {"openai/gpt-4o"}, []),  # a wildcard in the policy needs one served model it matches
    (["anthropic/*"], {"openai/gpt-4o"}, [("r", "anthropic/*")]),
    (["all-proxy-models"], {"gpt-4o"}, []),  # LiteLLM's keywords are no model names
])
def test_a_model_the_proxy_does_not_serve_is_named_with_its_rule(models, served, refused) -> None:
    assert unserved_models(TeamPolicy((rule("r", "*", models=models),)), served) == refused


FIELD_VALUES = {
    "models": st.lists(st.sampled_from(["a", "b", "c"]), unique=True),
    "max_budget": st.sampled_from([1.0, 5.0, 20.0]),
    "tpm_limit": st.sampled_from([10, 100]),
    "budget_duration": st.sampled_from(["1d", "30d"]),
    "metadata": st.dictionaries(st.sampled_from(["k1", "k2"]), st.sampled_from(["x", "y"]), min_size=1),
}
rules_strategy = st.lists(st.builds(
    lambda i, groups, mode, fields: rule(f"r{i}", groups, mode, **fields),
    st.integers(0, 10**6), st.sampled_from(["*", "Sales*", "Eng*", G2, "sales emea"]),
    st.sampled_from(list(Mode)),
    st.dictionaries(st.sampled_from(list(FIELD_VALUES)), st.none(), min_size=1).flatmap(
        lambda names: st.fixed_dictionaries({n: FIELD_VALUES[n] for n in names}))),
    max_size=4, unique_by=lambda r: r.name)


@settings(max_examples=100, deadline=None)
@given(rules_strategy, st.fixed_dictionaries({n: FIELD_VALUES[n] for n in FIELD_VALUES if n != "metadata"}),
       st.booleans())
def test_any_policy_converges_in_one_run_and_touches_only_what_it_names(rules, start, exists) -> None:
    state = litellm([sales_team(metadata={"k1": "admin", "other": 1}, **start)] if exists else [], [1])
    p = policy(*rules)
    after = _after(plan(sales(), state, p), state)
    assert [a for a in plan(sales(), after, p).actions if isinstance(a, UpdateTeam)] == []
    if exists:
        named = {name for r in rules if r.mode is Mode.ENFORCE for name in r.fields}
        before, now = state.teams[G1], after.teams[G1]
        assert {k: v for k, v in now.fields.items() if k not in named} == \
            {k: v for k, v in before.fields.items() if k not in named}
        assert now.metadata["entra_sync"] == before.metadata["entra_sync"] and now.metadata["other"] == 1

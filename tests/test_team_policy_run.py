"""A team policy through the whole CLI against the emulators: created with the policy, a drift put back,
and a narrowing held by the circuit breaker until --force (the executor's held path, over HTTP)."""

from __future__ import annotations

from pathlib import Path

from emulators.litellm import LiteLLMEmulator
from tests.conftest import MASTER_KEY, run_cli
from tests.expectations import LiteLLMReadback
from tests.tenants import oid

POLICY = """\
rules:
  - name: everyone
    groups: "*"
    set: {models: [small], max_budget: 20, metadata: {tier: standard}}
  - name: engineering
    groups: "Eng*"
    set: {models: [small, big], max_budget: 500}
"""


def test_a_policy_run_holds_a_narrowing_until_forced(env, lite: LiteLLMEmulator, tmp_path: Path) -> None:
    policy = tmp_path / "team-policy.yaml"
    policy.write_text(POLICY)
    env = {**env, "SYNC_TEAM_POLICY_FILE": str(policy), "SYNC_MAX_REMOVALS": "0"}
    readback = LiteLLMReadback(lite.base_url, MASTER_KEY)
    eng, ops = oid("Engineering"), oid("Operations")

    assert run_cli(env, "apply").code == 0  # creations remove nothing
    teams = readback.teams()
    assert (set(teams[eng]["models"]), teams[eng]["max_budget"]) == ({"small", "big"}, 500)
    assert (teams[ops]["models"], teams[ops]["max_budget"], teams[ops]["metadata"]["tier"]) == (["small"], 20,
                                                                                              "standard")

    # By hand: Operations gets a bigger budget (the policy lowers it back: a narrowing), and
    # Engineering loses a model (the policy adds it back: a widening).
    lite.state.update_team(ops, {"max_budget": 1000})
    lite.state.update_team(eng, {"models": ["small"]})
    held = run_cli(env, "apply", "--json")
    assert held.code == 3, held.out
    outcomes = {a["team_id"]: (a["narrows"], a["outcome"]) for a in held.json()["actions"]}
    assert outcomes == {ops: (True, "held"), eng: (False, "applied")}
    teams = readback.teams()
    assert teams[ops]["max_budget"] == 1000 and set(teams[eng]["models"]) == {"small", "big"}

    forced = run_cli(env, "apply", "--force", "--json")
    assert forced.code == 0 and forced.json()["summary"]["teams_updated"] == 1
    assert readback.teams()[ops]["max_budget"] == 20
    assert run_cli(env, "apply", "--json").json()["actions"] == []

"""A team policy end to end: the CLI from a Graph emulator tenant into the REAL LiteLLM proxy (1.108.7).

Three rules; the teams are created with them; a drift by hand is put back; a change to the file is
seen in `plan` (held by the breaker when it narrows), then applied; and a run after each converged
one writes nothing. Runs when LITELLM_CONTRACT_URL and LITELLM_CONTRACT_KEY are set (a failure in CI).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from emulators.graph import GraphEmulator, Tenant
from tests.conftest import GRAPH_TOKEN, run_cli
from tests.real_proxies import real_proxy
from tests.tenants import oid, small_tenant

pytestmark = pytest.mark.litellm_real

POLICY = """\
rules:
  - name: everyone
    groups: "*"
    set: {models: [gpt-4o-mini], max_budget: 20, budget_duration: 30d, metadata: {cost_center: shared}}
  - name: engineering
    groups: ["Eng*"]
    set:
      models: [gpt-4o, gpt-4o-mini]
      max_budget: 500
      team_member_budget: 50
      model_aliases: {big: gpt-4o}
  - name: ops-start
    groups: Operations
    mode: create
    set: {tpm_limit: 10000}
"""


@pytest.fixture
def proxy() -> tuple[str, str]:
    return real_proxy()


def _info(http: httpx.Client, team_id: str) -> dict:
    return http.get("/team/info", params={"team_id": team_id}).raise_for_status().json()["team_info"]


def _ours(report: dict, team_ids: set[str]) -> list[dict]:
    return [a for a in report["actions"] if a.get("team_id") in team_ids]


def test_a_policy_is_applied_kept_in_force_and_changed(proxy, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    salt = uuid.uuid4().hex[:8]
    document = small_tenant(big_group_size=3, salt=salt)
    document["service_principal"]["appId"] = app_id = oid("app", salt)
    eng, ops, everyone = oid("Engineering", salt), oid("Operations", salt), oid("Everyone", salt)
    ours = {eng, ops, everyone}
    policy_file = tmp_path / "team-policy.yaml"
    policy_file.write_text(POLICY)
    monkeypatch.chdir(tmp_path)  # the run's local state (.sync-state) goes here
    http = httpx.Client(base_url=proxy[0], headers={"Authorization": f"Bearer {proxy[1]}"}, timeout=60)
    with GraphEmulator(Tenant.from_dict(document), token=GRAPH_TOKEN) as graph, http:
        env = {"LITELLM_BASE_URL": proxy[0], "LITELLM_MASTER_KEY": proxy[1], "ENTRA_APP_ID": app_id,
               "GRAPH_BASE_URL": graph.base_url, "GRAPH_ACCESS_TOKEN": GRAPH_TOKEN,
               "SYNC_TEAM_POLICY_FILE": str(policy_file), "SYNC_MAX_REMOVALS": "1000",
               "SYNC_MAX_REMOVAL_PERCENT": "100"}

        first = run_cli(env, "apply", "--json")
        assert first.code == 0, first.out[-3000:] + first.err
        created = {a["team_id"]: a["policy"] for a in _ours(first.json(), ours) if a["type"] == "create_team"}
        assert created[ops] == {"models": "everyone", "max_budget": "everyone", "budget_duration": "everyone",
                                "metadata.cost_center": "everyone", "tpm_limit": "ops-start"}
        assert any("lists no models" in note for note in first.json()["notes"])  # the proxy serves none
        info = _info(http, eng)
        assert (set(info["models"]), info["max_budget"], info["budget_duration"]) == (
            {"gpt-4o", "gpt-4o-mini"}, 500, "30d")
        assert info["team_member_budget_table"]["max_budget"] == 50
        assert info["litellm_model_table"]["model_aliases"] == {"big": "gpt-4o"}
        assert info["metadata"]["cost_center"] == "shared" and info["metadata"]["entra_sync"]["group_id"] == eng
        assert (_info(http, ops)["tpm_limit"], _info(http, everyone)["tpm_limit"]) == (10000, None)

        settled = run_cli(env, "apply", "--json")
        assert settled.code == 0 and _ours(settled.json(), ours) == []
        assert settled.json()["stats"]["litellm_write_calls"] == 0

        # By hand: Engineering gets another model and a bigger budget; Operations a new tpm limit (a
        # create rule's field: the admin's to change).
        http.post("/team/update", json={"team_id": eng, "models": ["gpt-4o", "o1"], "max_budget": 9999,
                                        "team_member_budget": 80}).raise_for_status()
        http.post("/team/update", json={"team_id": ops, "tpm_limit": 5}).raise_for_status()
        back = run_cli(env, "apply", "--json")
        assert back.code == 0, back.out[-3000:]
        (update,) = _ours(back.json(), ours)
        assert (update["type"], update["team_id"], update["narrows"]) == ("update_team", eng, True)
        assert {(c["field"], c["rule"]) for c in update["changes"]} == {
            ("models", "engineering"), ("max_budget", "engineering"), ("team_member_budget", "engineering")}
        assert back.json()["summary"]["teams_updated"] == 1
        info = _info(http, eng)
        assert (set(info["models"]), info["max_budget"]) == ({"gpt-4o", "gpt-4o-mini"}, 500)
        assert info["team_member_budget_table"]["max_budget"] == 50
        assert info["metadata"]["entra_sync"]["group_id"] == eng  # the marker survives the update
        assert _info(http, ops)["tpm_limit"] == 5

        # The file changes: Engineering's budget goes down (narrowing), everyone's cost center moves.
        policy_file.write_text(POLICY.replace("max_budget: 500", "max_budget: 300")
                               .replace("cost_center: shared", "cost_center: it"))
        held = run_cli({**env, "SYNC_MAX_REMOVALS": "0"}, "plan")
        assert held.code == 3, held.out
        assert ("update team 'Engineering': max_budget 500.0 -> 300.0 (rule 'engineering'); "
                "metadata.cost_center 'shared' -> 'it' (rule 'everyone')") in held.out
        planned = run_cli(env, "plan", "--json")
        changes = {a["team_id"]: a["changes"] for a in _ours(planned.json(), ours)}
        assert changes[eng] == [
            {"field": "max_budget", "before": 500.0, "after": 300.0, "rule": "engineering"},
            {"field": "metadata.cost_center", "before": "shared", "after": "it", "rule": "everyone"}]
        assert set(changes) == ours
        applied = run_cli(env, "apply", "--json")
        assert applied.code == 0 and applied.json()["summary"]["teams_updated"] == 3
        assert _info(http, eng)["max_budget"] == 300
        assert {_info(http, t)["metadata"]["cost_center"] for t in ours} == {"it"}

        last = run_cli(env, "apply", "--json")
        assert last.code == 0 and _ours(last.json(), ours) == []
        assert last.json()["stats"]["litellm_write_calls"] == 0

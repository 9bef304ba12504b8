"""Every team field a team policy can set, against the REAL proxies: what /team/update answers, what
/team/info reads back, and what the sync's own read (the team list row, the member budget) sees.

LiteLLM 1.108.7 (LITELLM_CONTRACT_URL) and 1.80.0 (LITELLM_OLDER_URL), no licence. The emulator does
not model these fields; the sync's behaviour on them rests on this file. Observed (2026-12-03):
- tags, guardrails and team_member_key_duration need a licence: 403 (1.108.7 wraps the message in
  {"error": ...}, 1.80.0 in {"detail": ...}); nothing is changed.
- 1.80.0 accepts soft_budget and team_member_budget_duration but keeps neither, keeps no model table
  a list row or /team/info shows (model_aliases), and a team_member_* update without metadata REPLACES
  the team's metadata with {team_member_budget_id}: the sync's marker would go (the sync always sends
  the full metadata with those fields).
- max_parallel_requests is not a /team/update field on either: accepted, ignored (a rule cannot set it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sync_core.litellm.wire import BudgetList, TeamWire
from sync_core.team_policy import FIELDS, MEMBER_BUDGET_FIELDS, MEMBER_BUDGET_ID
from tests.real_proxies import real_proxy

PROXIES = [("1.108.7", "contract"), ("1.80.0", "older")]  # (version, lane)
LICENCE = "This feature is only available for LiteLLM Enterprise users"
pytestmark = pytest.mark.litellm_real


@dataclass(frozen=True)
class FieldCase:
    field: str
    value: Any
    licence: bool = False  # 403 without LITELLM_LICENSE, on both proxies
    kept_by_1_80: bool = True  # False: 1.80.0 answers 200 but neither /team/info nor the list shows it


CASES = [
    FieldCase("models", ["gpt-4o", "gpt-4o-mini"]),
    FieldCase("max_budget", 12.5),
    FieldCase("soft_budget", 3.0, kept_by_1_80=False),
    FieldCase("budget_duration", "30d"),
    FieldCase("tpm_limit", 1000),
    FieldCase("rpm_limit", 10),
    FieldCase("team_member_budget", 2.5),
    FieldCase("team_member_budget_duration", "7d", kept_by_1_80=False),
    FieldCase("team_member_rpm_limit", 5),
    FieldCase("team_member_tpm_limit", 50),
    FieldCase("team_member_key_duration", "30d", licence=True),
    FieldCase("tags", ["prod"], licence=True),
    FieldCase("guardrails", ["pii"], licence=True),
    FieldCase("model_aliases", {"small": "gpt-4o-mini"}, kept_by_1_80=False),
    FieldCase("metadata", {"cost_center": "42"}),
]


def test_the_cases_cover_every_field_a_rule_can_set() -> None:
    assert [c.field for c in CASES] == list(FIELDS)


@pytest.fixture(scope="module", params=PROXIES, ids=[p[0] for p in PROXIES])
def proxy(request: pytest.FixtureRequest) -> Iterator[tuple[str, httpx.Client]]:
    version, lane = request.param
    url, key = real_proxy(lane)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60.0) as client:
        yield version, client


@pytest.fixture
def team_id(proxy: tuple[str, httpx.Client]) -> Iterator[str]:
    _, client = proxy
    team_id = f"ct-fields-{uuid.uuid4().hex[:10]}"
    made = client.post("/team/new", json={"team_id": team_id, "metadata": {"entra_sync": {"group_id": team_id}}})
    assert made.status_code == 200, made.text
    yield team_id
    client.post("/team/delete", json={"team_ids": [team_id]})


def _info(client: httpx.Client, team_id: str) -> dict[str, Any]:
    response = client.get("/team/info", params={"team_id": team_id})
    assert response.status_code == 200, response.text
    return response.json()["team_info"]


def _sync_read(client: httpx.Client, team_id: str) -> dict[str, Any]:
    """The fields as the sync reads them: the /v2/team/list row, and the member budget by its id."""
    (row,) = client.get("/v2/team/list", params={"team_id": team_id}).json()["teams"]
    team = TeamWire.model_validate(row).to_model()
    budget_id = team.metadata.get(MEMBER_BUDGET_ID)
    if budget_id is None:
        return {**team.fields, "metadata": team.metadata}
    answer = client.post("/budget/info", json={"budgets": [budget_id]})
    assert answer.status_code == 200, answer.text
    (budget,) = BudgetList.validate_python(answer.json())
    member = {name: getattr(budget, column) for name, column in MEMBER_BUDGET_FIELDS.items()}
    return {**team.fields, **member, "metadata": team.metadata}


def _info_value(info: dict[str, Any], field: str) -> Any:
    """Where /team/info shows a field."""
    if field in MEMBER_BUDGET_FIELDS:
        return (info["team_member_budget_table"] or {}).get(MEMBER_BUDGET_FIELDS[field])
    if field == "model_aliases":
        return (info.get("litellm_model_table") or {}).get("model_aliases")
    return info.get(field)


@pytest.mark.parametrize("case", CASES, ids=[c.field for c in CASES])
def test_team_update_sets_the_field_and_the_sync_reads_it_back(proxy, team_id: str, case: FieldCase) -> None:
    version, client = proxy
    marker = {"entra_sync": {"group_id": team_id}}
    value = {**case.value, **marker} if case.field == "metadata" else case.value
    body = {"team_id": team_id, case.field: value}
    if case.field in MEMBER_BUDGET_FIELDS:
        body["metadata"] = marker  # as the sync sends it (see below)
    response = client.post("/team/update", json=body)
    info = _info(client, team_id)
    if case.licence:
        assert response.status_code == 403, response.text
        assert LICENCE in response.text
        assert info["metadata"] == marker  # nothing changed
        return
    assert response.status_code == 200, response.text
    read = _sync_read(client, team_id)
    if case.field == "metadata":
        assert {k: v for k, v in info["metadata"].items() if k != MEMBER_BUDGET_ID} == value
        return
    assert read["metadata"].get("entra_sync") == marker["entra_sync"]  # the marker survives
    if version == "1.80.0" and not case.kept_by_1_80:
        assert _info_value(info, case.field) is None
        assert case.field not in read or read[case.field] in (None, {})
        return
    assert _info_value(info, case.field) == case.value
    assert read[case.field] == case.value


def test_a_member_budget_update_without_metadata(proxy, team_id: str) -> None:
    """1.80.0 replaces the metadata with the budget's id, so the sync sends the full metadata along."""
    version, client = proxy
    response = client.post("/team/update", json={"team_id": team_id, "team_member_budget": 4.0})
    assert response.status_code == 200, response.text
    metadata = _info(client, team_id)["metadata"]
    assert set(metadata) == ({MEMBER_BUDGET_ID} if version == "1.80.0" else {"entra_sync", MEMBER_BUDGET_ID})


def test_max_parallel_requests_is_not_an_update_field(proxy, team_id: str) -> None:
    _, client = proxy
    response = client.post("/team/update", json={"team_id": team_id, "max_parallel_requests": 3})
    assert response.status_code == 200, response.text
    assert _info(client, team_id)["max_parallel_requests"] is None


def test_served_models_and_budget_reads(proxy) -> None:
    """/v1/models lists what the proxy serves (none by default); /budget/info skips unknown ids."""
    _, client = proxy
    models = client.get("/v1/models", params={"include_model_access_groups": "true",
                                              "return_wildcard_routes": "true"})
    assert models.status_code == 200 and models.json() == {"data": [], "object": "list"}
    unknown = client.post("/budget/info", json={"budgets": [f"ct-nope-{uuid.uuid4().hex}"]})
    assert (unknown.status_code, unknown.json()) == (200, [])

"""owners_as_admins against the REAL, unlicensed LiteLLM proxy (1.108.7): the CLI from a Graph
emulator tenant whose Engineering group has owners. Nothing fails, no admin write is attempted, the
plan says once that team admins need a licence, and the owner who is no member is not added."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from emulators.graph import GraphEmulator, Tenant
from sync_core.owners import NO_LICENCE
from tests.conftest import GRAPH_TOKEN, run_cli
from tests.tenants import oid, small_tenant
from tests.test_real_proxy_policy import proxy  # noqa: F401  (the real proxy, or skip/fail as in CI)

pytestmark = pytest.mark.litellm_real

POLICY = "rules:\n  - name: eng-owners\n    groups: Engineering\n    owners_as_admins: true\n"


def test_an_unlicensed_proxy_gets_a_note_and_no_failure(proxy, tmp_path: Path,  # noqa: F811
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    salt = uuid.uuid4().hex[:8]
    document = small_tenant(big_group_size=1, salt=salt)
    document["service_principal"]["appId"] = app_id = oid("app", salt)
    eng = oid("Engineering", salt)
    tenant = Tenant.from_dict(document)
    tenant.add_owner(eng, oid("eng0", salt))
    tenant.add_owner(eng, oid("ops0", salt))  # not a member of Engineering
    (tmp_path / "p.yaml").write_text(POLICY)
    monkeypatch.chdir(tmp_path)
    http = httpx.Client(base_url=proxy[0], headers={"Authorization": f"Bearer {proxy[1]}"}, timeout=120)
    with GraphEmulator(tenant, token=GRAPH_TOKEN) as graph, http:
        env = {"LITELLM_BASE_URL": proxy[0], "LITELLM_MASTER_KEY": proxy[1], "ENTRA_APP_ID": app_id,
               "GRAPH_BASE_URL": graph.base_url, "GRAPH_ACCESS_TOKEN": GRAPH_TOKEN,
               "SYNC_TEAM_POLICY_FILE": str(tmp_path / "p.yaml")}
        run = run_cli(env, "apply", "--json")
        assert run.code == 0, run.out[-3000:] + run.err
        report = run.json()
        assert report["notes"].count(NO_LICENCE) == 1
        assert not [a for a in report["actions"] if a["type"] == "set_team_admins"]
        assert not [r for r in graph.server.requests() if "/owners" in r.path]  # owners read only when usable
        roster = http.get("/team/info", params={"team_id": eng}).raise_for_status().json()["team_info"]
        roles = {m["user_id"]: m["role"] for m in roster["members_with_roles"]}
        assert roles[oid("eng0", salt)] == "user" and oid("ops0", salt) not in roles

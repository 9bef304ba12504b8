"""Group owners as team admins through the whole CLI against the emulators: Graph serves the owners
over its wire protocol, the LiteLLM emulator takes /team/member_update as a licensed proxy does."""

from __future__ import annotations

from pathlib import Path

from emulators.graph.tenant import Tenant
from emulators.litellm import LiteLLMEmulator
from sync_core.owners import NO_LICENCE
from tests.conftest import MASTER_KEY, run_cli
from tests.expectations import LiteLLMReadback
from tests.tenants import oid

POLICY = "rules:\n  - name: eng-owners\n    groups: Engineering\n    owners_as_admins: true\n"


def roles(readback: LiteLLMReadback, team_id: str) -> dict[str, str]:
    return {m["user_id"]: m["role"] for m in readback.teams()[team_id]["members_with_roles"]
            if m["user_id"] != "default_user_id"}


def test_owners_become_admins_and_stop_when_they_stop_owning(env, lite: LiteLLMEmulator, tenant: Tenant,
                                                             tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    env = {**env, "SYNC_TEAM_POLICY_FILE": str(tmp_path / "p.yaml"), "SYNC_MAX_REMOVALS": "0"}
    lite.state.licensed = True
    eng, eng0, eng1, ops0 = oid("Engineering"), oid("eng0"), oid("eng1"), oid("ops0")
    for owner in (eng0, ops0, oid("robot")):  # a member, a non-member, a service principal
        tenant.add_owner(eng, owner)
    readback = LiteLLMReadback(lite.base_url, MASTER_KEY)

    assert run_cli(env, "apply").code == 0
    team_roles = roles(readback, eng)
    assert (team_roles[eng0], team_roles[ops0], team_roles[eng1]) == ("admin", "admin", "user")
    assert readback.teams()[eng]["metadata"]["entra_sync"]["admins"] == sorted([eng0, ops0])
    lite.state.update_member_role(eng, eng1, "admin")  # by hand: never the sync's to undo

    tenant.remove_owner(eng, eng0)
    tenant.remove_owner(eng, ops0)
    held = run_cli(env, "apply", "--json")  # an incremental read: owners are read all the same
    assert held.code == 3, held.out
    assert [a["outcome"] for a in held.json()["actions"]] == ["held"]
    assert roles(readback, eng)[eng0] == "admin"

    assert run_cli(env, "apply", "--force").code == 0
    team_roles = roles(readback, eng)
    assert (team_roles[eng0], team_roles[eng1], ops0 in team_roles) == ("user", "admin", False)
    assert readback.teams()[eng]["metadata"]["entra_sync"]["admins"] == []
    assert run_cli(env, "apply", "--json").json()["actions"] == []


def test_without_a_licence_nothing_fails_and_the_plan_says_so_once(env, lite: LiteLLMEmulator, tenant: Tenant,
                                                                    graph, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    env = {**env, "SYNC_TEAM_POLICY_FILE": str(tmp_path / "p.yaml")}
    tenant.add_owner(oid("Engineering"), oid("ops0"))
    run = run_cli(env, "apply", "--json")
    assert run.code == 0, run.out
    assert run.json()["notes"].count(NO_LICENCE) == 1
    assert not [a for a in run.json()["actions"] if a["type"] == "set_team_admins"]
    assert oid("ops0") not in roles(LiteLLMReadback(lite.base_url, MASTER_KEY), oid("Engineering"))

"""`python -m sync_core doctor` end to end: the real msgraph-sdk and httpx clients against the Graph
and LiteLLM emulators, Azurite and the real proxy; every check passing, and each one failing with
its fix. Doctor never writes to LiteLLM or Graph: every test checks that nothing was POSTed."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from emulators.graph import GraphEmulator, Tenant
from emulators.graph.grants import unsigned_token
from emulators.http_base import Fault, ScriptedFaults
from emulators.litellm import LiteLLMEmulator
from sync_core.doctor import PROBES
from sync_core.grant import REQUIRED_PERMISSIONS
from sync_core.owners import NO_LICENCE
from sync_core.state import open_state
from tests.conftest import MASTER_KEY, CliRun, run_cli
from tests.real_proxies import real_proxy
from tests.tenants import APP_ID, small_tenant

FULL_TOKEN = unsigned_token(roles=REQUIRED_PERMISSIONS)
KEY_VAULT_REFERENCE = "@Microsoft.KeyVault(SecretUri=https://vault.vault.azure.net/secrets/litellm-key)"


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.from_dict(small_tenant(big_group_size=3))


def graph_with(tenant: Tenant, token: str) -> GraphEmulator:
    return GraphEmulator(tenant, token=token)


@pytest.fixture
def graph(tenant: Tenant) -> Iterator[GraphEmulator]:
    with graph_with(tenant, FULL_TOKEN) as emulator:
        yield emulator


@pytest.fixture
def doctor_env(graph: GraphEmulator, lite: LiteLLMEmulator, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # the local lock lives in ./.sync-state
    return {"LITELLM_BASE_URL": lite.base_url, "LITELLM_MASTER_KEY": MASTER_KEY, "ENTRA_APP_ID": APP_ID,
            "GRAPH_BASE_URL": graph.base_url, "GRAPH_ACCESS_TOKEN": FULL_TOKEN}


def doctor(env: dict[str, str], graph: GraphEmulator | None = None, lite: LiteLLMEmulator | None = None) -> CliRun:
    result = run_cli(env, "doctor")
    if graph is not None:
        assert graph.server.requests(["POST"]) == [], "doctor wrote to Graph"
    if lite is not None:
        assert lite.server.requests(["POST"]) == [], "doctor wrote to LiteLLM"
    return result


def lines(result: CliRun) -> dict[str, str]:
    """Check name -> its output line."""
    found = {}
    for line in result.out.splitlines():
        status, _, rest = line.partition(" ")
        if status in ("ok", "FAIL", "skip"):
            found[rest.strip().split(":", 1)[0]] = line
    return found


def failed(result: CliRun) -> dict[str, str]:
    return {name: line for name, line in lines(result).items() if line.startswith("FAIL")}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_check_passes_against_the_emulators(doctor_env, graph, lite) -> None:
    result = doctor(doctor_env, graph, lite)
    assert result.code == 0, result.out
    checks = lines(result)
    assert len(checks) == 13 and all(line.startswith("ok") for line in checks.values()), result.out
    assert "version 1.108.7" in checks["litellm"]
    assert "the master key" in checks["litellm key"]
    assert "3 group(s) and 1 user(s)" in checks["app assignments"]
    assert result.out.rstrip().endswith("all 13 checks passed")


def test_an_unresolved_key_vault_reference_fails_without_printing_it(doctor_env, graph, lite) -> None:
    result = doctor({**doctor_env, "LITELLM_MASTER_KEY": KEY_VAULT_REFERENCE}, graph, lite)
    assert result.code == 1
    bad = failed(result)
    # not in Azure (no WEBSITE_SITE_NAME): nothing would resolve it, so the value itself is asked for
    assert "LITELLM_MASTER_KEY" in bad["key vault references"] and "local.settings.json" in bad["key vault references"]
    assert "settings" in bad and "vault.vault.azure.net" not in result.out
    assert lines(result)["litellm"].startswith("skip")  # nothing is called with a bad setting
    assert lite.server.requests() == [] and graph.server.requests() == []


def test_an_invalid_setting_names_it(doctor_env, graph, lite) -> None:
    result = doctor({**doctor_env, "SYNC_MAX_REMOVALS": "-1"}, graph, lite)
    assert result.code == 1
    assert "SYNC_MAX_REMOVALS" in failed(result)["settings"] and "fix: set SYNC_MAX_REMOVALS" in result.out
    assert lines(result)["run lock"].startswith("ok")  # the storage is checked on its own settings


def test_an_opaque_token_passes_every_check(tenant, lite, tmp_path, monkeypatch) -> None:
    """The emulators' static token is not a JWT: permissions are judged by what it can read."""
    monkeypatch.chdir(tmp_path)
    with graph_with(tenant, "emulator-token") as graph:
        env = {"LITELLM_BASE_URL": lite.base_url, "LITELLM_MASTER_KEY": MASTER_KEY, "ENTRA_APP_ID": APP_ID,
               "GRAPH_BASE_URL": graph.base_url, "GRAPH_ACCESS_TOKEN": "emulator-token"}
        result = doctor(env, graph, lite)
    assert result.code == 0, result.out
    assert "opaque" in lines(result)["graph token"]
    assert all(lines(result)[f"graph permission {p}"].startswith("ok") for p in REQUIRED_PERMISSIONS)


@pytest.mark.parametrize("permission", REQUIRED_PERMISSIONS)
def test_each_permission_probe_fails_alone_when_graph_refuses_its_read(
        permission: str, tenant, lite, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    granted = tuple(p for p in REQUIRED_PERMISSIONS if p != permission)
    token = unsigned_token(roles=granted)
    collection = PROBES[permission].split("?")[0]
    with graph_with(tenant, token) as graph:
        graph.server.faults = ScriptedFaults().add("GET", f"/v1.0/{collection}$", Fault("status", 403))
        env = {"LITELLM_BASE_URL": lite.base_url, "LITELLM_MASTER_KEY": MASTER_KEY, "ENTRA_APP_ID": APP_ID,
               "GRAPH_BASE_URL": graph.base_url, "GRAPH_ACCESS_TOKEN": token}
        result = doctor(env, graph, lite)
    assert result.code == 1
    name = f"graph permission {permission}"
    assert list(failed(result)) == [name], result.out
    line = failed(result)[name]
    assert f"GET /{PROBES[permission]} refused: 403" in line
    assert f"the token's application permissions: {', '.join(sorted(granted))}" in line  # the hint
    assert "python -m sync_core grant-permissions --principal-id" in line


def test_an_unknown_enterprise_app_is_reported_with_where_to_find_its_id(doctor_env, graph, lite) -> None:
    wrong = str(uuid.uuid4())
    result = doctor({**doctor_env, "ENTRA_APP_ID": wrong}, graph, lite)
    assert result.code == 1
    app = failed(result)["enterprise app"]
    assert f"ENTRA_APP_ID {wrong}" in app and "404" in app and "application (client) id" in app
    assert lines(result)["app assignments"].startswith("skip")


def test_assignments_that_cannot_be_read_point_at_the_permission(doctor_env, graph, lite) -> None:
    graph.server.faults = ScriptedFaults().add("GET", "/appRoleAssignedTo$", Fault("status", 403))
    result = doctor(doctor_env, graph, lite)
    assert result.code == 1
    assert list(failed(result)) == ["app assignments"]
    assert "403" in failed(result)["app assignments"] and "Application.Read.All" in failed(result)["app assignments"]


def test_an_app_with_nothing_assigned_fails(doctor_env, graph, lite, tenant) -> None:
    for row in list(tenant.assignments):
        tenant.unassign(row.principal_id)
    result = doctor(doctor_env, graph, lite)
    assert list(failed(result)) == ["app assignments"] and "fix: assign the groups" in result.out


def test_litellm_that_does_not_answer(doctor_env, graph, lite) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = doctor({**doctor_env, "LITELLM_BASE_URL": url}, graph, lite)
    assert result.code == 1
    assert f"no answer from {url}" in failed(result)["litellm"] and "fix: check LITELLM_BASE_URL" in result.out
    assert lines(result)["litellm key"].startswith("skip") and lines(result)["litellm bulk routes"].startswith("skip")


def test_a_rejected_key_and_a_key_that_is_not_a_proxy_admin(doctor_env, graph, lite) -> None:
    rejected = doctor({**doctor_env, "LITELLM_MASTER_KEY": "sk-not-a-key"}, graph, lite)
    assert list(failed(rejected)) == ["litellm key"] and "rejected" in failed(rejected)["litellm key"]
    user = httpx.post(f"{lite.base_url}/user/new", headers={"Authorization": f"Bearer {MASTER_KEY}"},
                      json={"user_id": "doctor-viewer", "user_role": "proxy_admin_viewer"}).json()
    lite.server.log.clear()  # the test's own write, not doctor's
    viewer = doctor({**doctor_env, "LITELLM_MASTER_KEY": user["key"]}, graph, lite)
    key = failed(viewer)["litellm key"]
    assert "not a proxy admin" in key and "proxy_admin_viewer" in key and "fix: set LITELLM_MASTER_KEY" in key


def test_bulk_routes_that_cannot_be_probed(doctor_env, graph, lite) -> None:
    lite.server.faults = ScriptedFaults().add("GET", "^/management/", Fault("drop"))
    result = doctor(doctor_env, graph, lite)
    assert list(failed(result)) == ["litellm bulk routes"] and "fix: check the proxy's logs" in result.out


def test_state_storage_on_azurite_and_unreachable(doctor_env, graph, lite, azurite_connection_string) -> None:
    on_azurite = doctor({**doctor_env, "AzureWebJobsStorage": azurite_connection_string}, graph, lite)
    assert on_azurite.code == 0, on_azurite.out
    assert "reachable at http://127.0.0.1" in lines(on_azurite)["state storage"]
    unreachable = azurite_connection_string.replace(
        azurite_connection_string.split("BlobEndpoint=")[1].split("/devstoreaccount1")[0],
        f"http://127.0.0.1:{closed_port()}")
    result = doctor({**doctor_env, "AzureWebJobsStorage": unreachable}, graph, lite)
    assert list(failed(result)) == ["state storage"] and "fix: check AzureWebJobsStorage" in result.out
    assert lines(result)["run lock"].startswith("skip")


def test_a_held_run_lock_names_the_run(doctor_env, graph, lite) -> None:
    taken, release = threading.Event(), threading.Event()

    async def hold() -> None:
        async with open_state(doctor_env).run_lock("timer"):
            taken.set()
            await asyncio.to_thread(release.wait)

    holder = threading.Thread(target=asyncio.run, args=(hold(),))
    holder.start()
    try:
        taken.wait(10)
        result = doctor(doctor_env, graph, lite)
    finally:
        release.set()
        holder.join()
    assert list(failed(result)) == ["run lock"]
    assert "(timer)" in failed(result)["run lock"] and "fix: wait for that run to end" in result.out


# ---------------------------------------------------------------- the real proxy


REAL = [pytest.param(lane, version, marks=pytest.mark.litellm_real(lane=lane), id=name)
        for lane, version, name in [("contract", "1.108.7", "current"), ("older", "1.80.0", "old")]]


@pytest.mark.parametrize(("lane", "version"), REAL)
def test_litellm_checks_against_the_real_proxy(doctor_env, graph, lane: str, version: str, tmp_path) -> None:
    url, key = real_proxy(lane)
    policy = tmp_path / "team-policy.yaml"
    policy.write_text("rules:\n  - {name: eng, groups: Engineering, owners_as_admins: true}\n")
    env = {**doctor_env, "LITELLM_BASE_URL": url, "LITELLM_MASTER_KEY": key, "SYNC_TEAM_POLICY_FILE": str(policy)}
    result = doctor(env, graph)
    assert result.code == 0, result.out
    checks = lines(result)
    assert f"version {version}" in checks["litellm"] and "the master key" in checks["litellm key"]
    assert checks["team admins"] == f"ok   team admins: {NO_LICENCE}"  # said, and nothing fails
    bulk = checks["litellm bulk routes"]
    assert ("/management/v1/users/bulk" in bulk) == (version != "1.80.0"), bulk

    user_id = f"doctor-{uuid.uuid4().hex[:8]}"
    generated = httpx.post(f"{url}/key/generate", headers={"Authorization": f"Bearer {key}"},
                           json={"user_id": user_id, "key_alias": user_id}, timeout=30).json()
    try:
        plain = doctor({**env, "LITELLM_MASTER_KEY": generated["key"]}, graph)
        assert list(failed(plain)) == ["litellm key"], plain.out
        assert f"user {user_id!r}" in failed(plain)["litellm key"] and "fix: set LITELLM_MASTER_KEY" in plain.out
    finally:
        httpx.post(f"{url}/key/delete", headers={"Authorization": f"Bearer {key}"},
                   json={"keys": [generated["key"]]}, timeout=30)


def test_doctor_lists_what_each_team_policy_rule_matches(doctor_env, graph, lite, tmp_path) -> None:
    policy = tmp_path / "team-policy.yaml"
    policy.write_text("rules:\n  - {name: all, groups: '*', set: {max_budget: 20}}\n"
                      "  - {name: eng, groups: 'eng*', mode: create, set: {models: [gpt-4o]}}\n"
                      "  - {name: sales, groups: 'Sales*', set: {tpm_limit: 5}}\n")
    result = doctor({**doctor_env, "SYNC_TEAM_POLICY_FILE": str(policy)}, graph, lite)
    assert result.code == 0, result.out
    assert ("rule 'all' (enforce) matches 3: Engineering, Everyone, Operations; rule 'eng' (create) matches "
            "1: Engineering; rule 'sales' (enforce) matches no assigned group") in lines(result)["team policy"]
    assert "team admins" not in lines(result)  # asked only when a rule makes owners admins
    policy.write_text("rules:\n  - {name: all, groups: '*', set: {max_budgt: 20}}\n")
    bad = doctor({**doctor_env, "SYNC_TEAM_POLICY_FILE": str(policy)}, graph, lite)
    assert bad.code == 1 and "line 2: set.max_budgt: not a team field" in failed(bad)["settings"]

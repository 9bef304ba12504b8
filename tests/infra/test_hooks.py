"""The azd postprovision hook: it grants the identity its Graph permissions, and never stops `azd up`.

azd aborts `azd up` when a hook fails unless the hook sets continueOnError ("continueOnError: When set
will continue to execute even after a script error occurred during a command hook (default false)",
learn.microsoft.com/azure/developer/azure-developer-cli/azd-extensibility; Azure/azure-dev
cli/azd/pkg/ext/hooks_runner.go). The hook runs here for real (sh), from a folder whose .venv/bin/python
is either a fake that echoes how it was called, or the real interpreter running the real CLI against the
Graph emulator. PowerShell cannot run here: the Windows hook is compared, not run.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from emulators.graph import GraphEmulator
from emulators.http_base import Fault, ScriptedFaults
from tests.infra.bicep import INFRA
from tests.infra.test_bicep import SAMPLE, WITH_SECRET, deploy
from tests.test_grant import IDENTITY, NEEDED, OPERATOR_TOKEN, granted_names, identity_tenant

REPO = INFRA.parent
HOOKS = yaml.safe_load((REPO / "azure.yaml").read_text())["hooks"]["postprovision"]
GRANT = "-m sync_core grant-permissions --principal-id"


@pytest.fixture
def graph() -> Iterator[GraphEmulator]:
    with GraphEmulator(identity_tenant(), token=OPERATOR_TOKEN) as emulator:
        yield emulator


def outputs(params: dict) -> dict[str, str]:
    """What azd puts in the hook's environment: the Bicep outputs."""
    t = deploy(**params)
    return {name: str(t.output(name)) for name in t.doc["outputs"]}


def run_hook(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    hook = HOOKS["posix"]
    return subprocess.run([hook["shell"], str(REPO / hook["run"])], cwd=cwd, env={"PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, timeout=120, check=False)


def venv_python(folder: Path, script: str) -> None:
    fake = folder / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)


def real_cli(folder: Path, emulator: GraphEmulator) -> dict[str, str]:
    """.venv/bin/python is this interpreter with this repository; the deployment's Graph is the emulator."""
    venv_python(folder, f'exec "{sys.executable}" "$@"')
    return {**outputs(SAMPLE), "SYNC_IDENTITY_PRINCIPAL_ID": IDENTITY, "SYNC_GRAPH_BASE_URL": emulator.base_url,
            "GRAPH_ACCESS_TOKEN": OPERATOR_TOKEN, "PYTHONPATH": str(REPO)}


def test_both_hooks_continue_on_error_and_say_the_same():
    posix, windows = ((REPO / HOOKS[os]["run"]).read_text() for os in ("posix", "windows"))

    assert HOOKS["posix"]["continueOnError"] is True and HOOKS["windows"]["continueOnError"] is True
    for word in (GRANT, "--wait-for-identity", "SYNC_GRANT_WAIT_SECONDS", "SYNC_GRAPH_IDENTITY",
                 "SYNC_IDENTITY_PRINCIPAL_ID", "managedIdentity", "appRegistration",
                 "import importlib.util as u, sync_core.cli; assert all(u.find_spec(m) for m in ('msgraph', 'azure.identity'))",
                 "did NOT get its Microsoft Graph permissions", "Privileged Role Administrator"):
        assert word in posix and word in windows, word
    assert "exit 1" not in posix and "exit 1" not in windows


def test_the_hook_runs_the_grant_with_the_deployments_tenant_and_graph(tmp_path: Path):
    venv_python(tmp_path, 'echo "python $*"\necho "tenant=$ENTRA_TENANT_ID graph=$GRAPH_BASE_URL"')
    env = outputs(SAMPLE)

    result = run_hook(tmp_path, env)

    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        f"python {GRANT} {env['SYNC_IDENTITY_PRINCIPAL_ID']} --wait-for-identity 180",
        f"tenant={env['AZURE_TENANT_ID']} graph={env['SYNC_GRAPH_BASE_URL']}"]


@pytest.mark.parametrize("variant", ["client-secret", "not-provisioned"])
def test_without_a_managed_identity_to_grant_the_hook_only_advises(variant: str, tmp_path: Path):
    venv_python(tmp_path, 'echo "python $*"')
    result = run_hook(tmp_path, outputs(WITH_SECRET) if variant == "client-secret" else {})

    assert result.returncode == 0
    assert not any(line.startswith("python ") for line in result.stdout.splitlines())
    assert ("grant it the" if variant == "client-secret" else "SYNC_GRAPH_IDENTITY is not set") in result.stdout


def test_without_a_python_that_runs_the_cli_it_says_how_and_what_to_run_later(tmp_path: Path):
    env = outputs(SAMPLE)  # no .venv here, and the system's python3 lacks the sync's requirements

    result = run_hook(tmp_path, env)

    assert result.returncode == 0, result.stderr
    assert "cannot run the sync's CLI" in result.stdout and "make venv" in result.stdout
    assert f"{GRANT} {env['SYNC_IDENTITY_PRINCIPAL_ID']}" in result.stdout
    assert f"ENTRA_TENANT_ID={env['AZURE_TENANT_ID']}" in result.stdout


def test_a_new_identity_graph_does_not_know_yet_is_waited_for(graph: GraphEmulator, tmp_path: Path):
    graph.server.faults = ScriptedFaults().add(
        "GET", f"/servicePrincipals/{IDENTITY}/appRoleAssignments", Fault("status", 404), times=1)

    result = run_hook(tmp_path, {**real_cli(tmp_path, graph), "SYNC_GRANT_WAIT_SECONDS": "30"})

    assert result.returncode == 0, result.stderr
    assert "is not in Microsoft Graph yet" in result.stdout and "granted 3, already there 0" in result.stdout
    assert "did NOT" not in result.stdout
    assert granted_names(graph) == NEEDED


def test_someone_who_may_not_grant_gets_the_command_for_an_administrator(graph: GraphEmulator, tmp_path: Path):
    graph.server.faults = ScriptedFaults().add(
        "POST", f"/servicePrincipals/{IDENTITY}/appRoleAssignments", Fault("status", 403), times=3)

    result = run_hook(tmp_path, real_cli(tmp_path, graph))

    assert result.returncode == 0  # azd goes on to deploy the code
    assert "403" in result.stderr and "Privileged Role Administrator" in result.stderr  # the CLI's own hint
    assert "did NOT get its Microsoft Graph permissions" in result.stdout
    assert f"{GRANT} {IDENTITY}" in result.stdout
    assert granted_names(graph) == set()

"""The README's quick start as a newcomer follows it, against the emulators: the example settings
file copied as is fails with every problem at once; edited as the README says, doctor passes and
plan shows the first plan."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import GRAPH_TOKEN, MASTER_KEY, run_cli
from tests.tenants import APP_ID

EXAMPLE = Path(__file__).resolve().parents[1] / "local.settings.example.json"


def test_the_quick_start_reaches_a_first_plan(graph, lite, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Path("local.settings.json")
    document = json.loads(EXAMPLE.read_text())
    settings.write_text(json.dumps(document))  # cp local.settings.example.json local.settings.json

    copied = run_cli({}, "plan", "--settings", str(settings))
    assert copied.code == 2 and copied.out == ""
    assert copied.err.startswith("configuration error: 2 problems:")
    for name in ("LITELLM_MASTER_KEY", "ENTRA_CLIENT_SECRET"):
        assert f"{name}: is still a Key Vault reference" in copied.err
    assert copied.err.count("put the value itself in local.settings.json") == 2

    values = document["Values"]
    # The edits the README names (the emulators stand in for the tenant and the proxy) ...
    values |= {"LITELLM_BASE_URL": lite.base_url, "LITELLM_MASTER_KEY": MASTER_KEY,
               "ENTRA_TENANT_ID": "aaaabbbb-0000-1111-2222-333344445555", "ENTRA_APP_ID": APP_ID,
               "GRAPH_BASE_URL": graph.base_url, "GRAPH_ACCESS_TOKEN": GRAPH_TOKEN}
    for name in ("ENTRA_CLIENT_SECRET", "ENTRA_CLIENT_ID", "AzureWebJobsStorage"):
        del values[name]
    settings.write_text(json.dumps(document))

    doctor = run_cli({}, "doctor", "--settings", str(settings))
    assert doctor.code == 0, doctor.out
    first = run_cli({}, "plan", "--settings", str(settings))
    assert first.code == 0 and "create team 'Engineering'" in first.out
    assert lite.server.requests(["POST"]) == [] and not Path(".sync-state/log").exists()

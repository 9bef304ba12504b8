"""Hostile input gets a clear error naming what is wrong, before any call, and never a traceback:
each row is one of issue 18's cases (settings, the CLI, the HTTP body, local.settings.json)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from pathlib import Path

import azure.functions as func
import pytest

from sync_core import cli
from sync_core.settings import Settings, load_local_settings
from tests.conftest import run_cli, sync_env
from tests.functions import FUNCTIONS
from tests.test_settings import GOOD, with_changes

SECRET = "sk-Hostile-1234567890"

# (changed settings, what the one error line says); none of them reaches the network.
REFUSED = [
    ({"LITELLM_MASTER_KEY": f"{SECRET}\nX-Injected: 1"}, "LITELLM_MASTER_KEY: contains a control character"),
    ({"LITELLM_MASTER_KEY": f"{SECRET}é"}, "LITELLM_MASTER_KEY: contains a control character"),
    ({"LITELLM_MASTER_KEY": f"{SECRET}\x00"}, "LITELLM_MASTER_KEY: contains a control character"),
    ({"ENTRA_CLIENT_SECRET": f"{SECRET}\x07bell", "ENTRA_CLIENT_ID": GOOD["ENTRA_APP_ID"]},
     "ENTRA_CLIENT_SECRET: contains a control character"),
    ({"GRAPH_ACCESS_TOKEN": f"{SECRET}\u200b", "GRAPH_BASE_URL": "http://127.0.0.1:9/v1.0"},
     "GRAPH_ACCESS_TOKEN: contains a control character"),
    ({"LITELLM_BASE_URL": f"https://admin:{SECRET}@litellm.example.com"},
     "LITELLM_BASE_URL: must be a plain base URL, without user info"),
    ({"LITELLM_BASE_URL": f"https://litellm.example.com/?key={SECRET}"}, "LITELLM_BASE_URL: must be a plain base URL"),
    ({"GRAPH_BASE_URL": "https://graph.microsoft.com/v1.0#top"}, "GRAPH_BASE_URL: must be a plain base URL"),
    ({"LITELLM_BASE_URL": "https://litellm.example.com:70000"}, "LITELLM_BASE_URL: the port must be a number"),
    ({"DEFAULT_TEAM_PARAMS": '{"max_budget": 1e400}'}, "DEFAULT_TEAM_PARAMS.max_budget: Input should be a finite"),
    ({"DEFAULT_TEAM_PARAMS": '{"max_budget": Infinity}'}, "DEFAULT_TEAM_PARAMS.max_budget: Input should be a finite"),
    ({"DEFAULT_INTERNAL_USER_PARAMS": '{"max_budget": NaN}'}, "DEFAULT_INTERNAL_USER_PARAMS.max_budget: Input should"),
    ({"DEFAULT_TEAM_PARAMS": '{"tpm_limit": 1e30}'}, "DEFAULT_TEAM_PARAMS.tpm_limit: Input should be a valid integer"),
    ({"DEFAULT_TEAM_PARAMS": '{"rpm_limit": 99999999999999999999}'}, "DEFAULT_TEAM_PARAMS.rpm_limit: Input should be less"),
    ({"LITELLM_MASTER_KEY": "@microsoft.keyvault(SecretUri=https://v.vault.azure.net/secrets/k)"},
     "LITELLM_MASTER_KEY: is still a Key Vault reference"),
    ({"LITELLM_MASTER_KEY": "@MICROSOFT.KEYVAULT(VaultName=v;SecretName=s)"}, "is still a Key Vault reference"),
]


@pytest.mark.parametrize(("changes", "message"), REFUSED, ids=[m.split(":")[0] + f" {i}" for i, (_, m) in
                                                               enumerate(REFUSED)])
def test_hostile_settings_exit_2_with_one_line_naming_the_setting(changes: dict, message: str) -> None:
    result = run_cli(with_changes(changes), "plan")
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("configuration error: ") and result.err.count("\n") == 1, result.err
    assert message in result.err and SECRET not in result.err and "Traceback" not in result.err


def test_a_group_that_is_no_guid_exits_2_before_any_call(graph, lite, env) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as caught:
        cli.main(["apply", "--group", "not-a-guid"], env)
    assert caught.value.code == 2 and "'not-a-guid' is not an object id (a GUID)" in err.getvalue()
    assert graph.server.requests() == [] and lite.server.requests() == []


def test_null_in_local_settings_is_unset_and_objects_are_their_json(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    values = {**GOOD, "ENTRA_CLIENT_SECRET": None, "SYNC_SCHEDULE": None, "SYNC_NESTED_GROUPS": False,
              "DEFAULT_TEAM_PARAMS": {"max_budget": 5}}
    path.write_text(json.dumps({"Values": values}))
    loaded = load_local_settings(path)
    assert "ENTRA_CLIENT_SECRET" not in loaded and "SYNC_SCHEDULE" not in loaded
    settings = Settings.from_env(loaded)  # "None" would be a client secret needing ENTRA_CLIENT_ID
    assert settings.entra_client_secret is None and settings.schedule is None and settings.nested_groups is False
    assert settings.default_team_params.max_budget == 5


@pytest.mark.parametrize(("body", "message"), [
    (b"[" * 100_000 + b"]" * 100_000, "nested more than 4 levels deep"),
    (b'{"group_ids": [[[[["x"]]]]]}', "nested more than 4 levels deep"),
    (b'{"dry_run": "yes"}', "dry_run: Input should be a valid boolean"),
    (b'{"group_ids": ["x\\ny"]}', "is not a group object id"),
    (b"\xff\xfe", "the body is not valid JSON"),
    (b'{"dry_run": true, "dry_run": 1e400}', "dry_run: Input should be a valid boolean"),
])
def test_hostile_http_bodies_are_400_naming_the_problem(body: bytes, message: str, monkeypatch) -> None:
    for name, value in sync_env("http://127.0.0.1:9/v1.0", "http://127.0.0.1:9").items():
        monkeypatch.setenv(name, value)
    handler = FUNCTIONS["sync_http"].get_user_function()
    response = asyncio.run(handler(func.HttpRequest(method="POST", url="/api/sync", body=body)))
    error = json.loads(response.get_body())["error"]
    assert response.status_code == 400 and message in error and "\n" not in error, error

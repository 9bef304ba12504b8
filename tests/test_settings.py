"""Every bad setting is refused up front, naming the setting and the expected form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sync_core.errors import ConfigError
from sync_core.settings import Settings, check_schedule, load_local_settings
from tests.conftest import run_cli

GOOD = {
    "LITELLM_BASE_URL": "https://litellm.example.com",
    "LITELLM_MASTER_KEY": "sk-master",
    "ENTRA_TENANT_ID": "aaaabbbb-0000-1111-2222-333344445555",
    "ENTRA_APP_ID": "11112222-bbbb-3333-cccc-4444dddd5555",
}

BAD = [
    ({"LITELLM_BASE_URL": None}, "LITELLM_BASE_URL: is required"),
    ({"LITELLM_MASTER_KEY": None}, "LITELLM_MASTER_KEY: is required"),
    ({"LITELLM_MASTER_KEY": "  "}, "LITELLM_MASTER_KEY: is required"),
    ({"LITELLM_BASE_URL": "litellm.example.com"}, "LITELLM_BASE_URL: expected an absolute http(s) URL"),
    ({"LITELLM_BASE_URL": "ftp://litellm.example.com"}, "LITELLM_BASE_URL: expected an absolute http(s) URL"),
    ({"LITELLM_BASE_URL": "http://litellm.example.com"}, "LITELLM_BASE_URL: must use https"),
    ({"GRAPH_BASE_URL": "http://graph.example.com/v1.0"}, "GRAPH_BASE_URL: must use https"),
    ({"ENTRA_TENANT_ID": None}, "ENTRA_TENANT_ID: required"),
    ({"ENTRA_TENANT_ID": "contoso.onmicrosoft.com"}, "ENTRA_TENANT_ID: expected a GUID"),
    ({"ENTRA_APP_ID": None}, "ENTRA_APP_ID or ENTRA_SERVICE_PRINCIPAL_ID: one of them is required"),
    ({"ENTRA_APP_ID": "litellm"}, "ENTRA_APP_ID: expected a GUID"),
    ({"ENTRA_SERVICE_PRINCIPAL_ID": "12345"}, "ENTRA_SERVICE_PRINCIPAL_ID: expected a GUID"),
    ({"ENTRA_CLIENT_SECRET": "s3cret"}, "ENTRA_CLIENT_ID: required"),
    ({"GRAPH_ACCESS_TOKEN": "t"}, "GRAPH_ACCESS_TOKEN: a static token is accepted only"),
    ({"DEFAULT_TEAM_PARAMS": "{max_budget: 1}"}, "DEFAULT_TEAM_PARAMS: is not valid JSON"),
    ({"DEFAULT_TEAM_PARAMS": "[1]"}, "DEFAULT_TEAM_PARAMS: must be a JSON object"),
    ({"DEFAULT_TEAM_PARAMS": '{"budget": 1}'}, "DEFAULT_TEAM_PARAMS.budget: is not a known field"),
    ({"DEFAULT_TEAM_PARAMS": '{"max_budget": -5}'}, "DEFAULT_TEAM_PARAMS.max_budget: Input should be greater than or equal to 0"),
    ({"DEFAULT_TEAM_PARAMS": '{"max_budget": "10"}'}, "DEFAULT_TEAM_PARAMS.max_budget: Input should be a valid number"),
    ({"DEFAULT_TEAM_PARAMS": '{"models": "gpt-4o"}'}, "DEFAULT_TEAM_PARAMS.models: Input should be a valid list"),
    ({"DEFAULT_TEAM_PARAMS": '{"tpm_limit": 1.5}'}, "DEFAULT_TEAM_PARAMS.tpm_limit: Input should be a valid integer"),
    ({"DEFAULT_TEAM_PARAMS": '{"budget_duration": "monthly"}'}, "DEFAULT_TEAM_PARAMS.budget_duration"),
    ({"DEFAULT_INTERNAL_USER_PARAMS": '{"user_role": "admin"}'}, "DEFAULT_INTERNAL_USER_PARAMS.user_role: Input should be"),
    ({"DEFAULT_INTERNAL_USER_PARAMS": '{"teams": ["x"]}'}, "DEFAULT_INTERNAL_USER_PARAMS.teams: is not a known field"),
    ({"DEFAULT_INTERNAL_USER_PARAMS": '{"max_budget": -1}'}, "DEFAULT_INTERNAL_USER_PARAMS.max_budget"),
    ({"SYNC_NESTED_GROUPS": "sometimes"}, "SYNC_NESTED_GROUPS: expected true or false"),
    ({"SYNC_USER_EMAIL_ATTRIBUTE": "email"}, "SYNC_USER_EMAIL_ATTRIBUTE: Input should be 'userPrincipalName' or 'mail'"),
    ({"SYNC_ORPHANED_TEAM_ACTION": "purge"}, "SYNC_ORPHANED_TEAM_ACTION: Input should be 'block', 'keep' or 'delete'"),
    ({"SYNC_LEAVER_ACTION": "disable"}, "SYNC_LEAVER_ACTION: Input should be 'block', 'keep' or 'delete'"),
    ({"SYNC_LEAVER_DELETE_AFTER_DAYS": "0"}, "SYNC_LEAVER_DELETE_AFTER_DAYS: Input should be greater than or equal to 1"),
    ({"SYNC_APP_ROLES": "maybe"}, "SYNC_APP_ROLES: expected true or false"),
    ({"SYNC_MAX_REMOVALS": "-1"}, "SYNC_MAX_REMOVALS: Input should be greater than or equal to 0"),
    ({"SYNC_MAX_REMOVALS": "many"}, "SYNC_MAX_REMOVALS: Input should be a valid integer"),
    ({"SYNC_MAX_REMOVAL_PERCENT": "150"}, "SYNC_MAX_REMOVAL_PERCENT: Input should be less than or equal to 100"),
    ({"SYNC_SCHEDULE": "*/5 * * * *"}, "SYNC_SCHEDULE: expected a 6-field NCRONTAB expression"),
    ({"SYNC_MEMBER_ADD_CHUNK": "1000"}, "SYNC_MEMBER_ADD_CHUNK: Input should be less than or equal to 500"),
    ({"SYNC_LITELLM_BULK": "yes"}, "SYNC_LITELLM_BULK: Input should be 'auto', 'on' or 'off'"),
    ({"SYNC_USER_CREATE_CHUNK": "501"}, "SYNC_USER_CREATE_CHUNK: Input should be less than or equal to 500"),
    ({"SYNC_MEMBER_DELETE_CHUNK": "0"}, "SYNC_MEMBER_DELETE_CHUNK: Input should be greater than or equal to 1"),
    ({"SYNC_GRAPH_CONCURRENCY": "0"}, "SYNC_GRAPH_CONCURRENCY: Input should be greater than or equal to 1"),
    ({"SYNC_GRAPH_RU_PER_10S": "-1"}, "SYNC_GRAPH_RU_PER_10S: Input should be greater than or equal to 0"),
    ({"SYNC_LOG_RETENTION_DAYS": "0"}, "SYNC_LOG_RETENTION_DAYS: Input should be greater than or equal to 1"),
    ({"SYNC_NOTIFY_WEBHOOK": "http://hooks.example.com/T0/secret"}, "SYNC_NOTIFY_WEBHOOK: must use https"),
    ({"SYNC_NOTIFY_WEBHOOK": "hooks.example.com/T0/secret"}, "SYNC_NOTIFY_WEBHOOK: expected an absolute"),
    ({"LITELLM_MASTER_KEY": "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/k)"},
     "LITELLM_MASTER_KEY: is still a Key Vault reference"),
    ({"ENTRA_CLIENT_SECRET": "@Microsoft.KeyVault(VaultName=v;SecretName=s)", "ENTRA_CLIENT_ID": GOOD["ENTRA_APP_ID"]},
     "ENTRA_CLIENT_SECRET: is still a Key Vault reference"),
]


def with_changes(changes: dict) -> dict:
    env = dict(GOOD)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@pytest.mark.parametrize(("changes", "message"), BAD, ids=[m.split(":")[0] + " " + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_setting_is_refused_naming_it(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(with_changes(changes))
    assert message in str(caught.value)


@pytest.mark.parametrize(("changes", "message"), BAD[:6], ids=[str(i) for i in range(6)])
def test_the_cli_exits_2_before_any_call(changes: dict, message: str) -> None:
    result = run_cli(with_changes(changes), "apply")
    assert result.code == 2 and message in result.err and result.out == ""


def test_good_settings_and_their_defaults() -> None:
    settings = Settings.from_env({**GOOD, "DEFAULT_TEAM_PARAMS": '{"max_budget": 10, "models": ["gpt-4o"]}',
                                  "SYNC_NESTED_GROUPS": "false", "ENTRA_APP_ID": GOOD["ENTRA_APP_ID"].upper()})
    assert settings.policy().default_team_params == {"max_budget": 10.0, "models": ["gpt-4o"]}
    assert settings.nested_groups is False and settings.entra_app_id == GOOD["ENTRA_APP_ID"]
    assert (settings.max_removals, settings.max_removal_percent, settings.member_add_chunk) == (100, 20.0, 200)
    assert (settings.litellm_bulk, settings.user_create_chunk, settings.member_delete_chunk) == ("auto", 500, 500)
    assert settings.graph_base_url == "https://graph.microsoft.com/v1.0"
    policy = settings.policy()
    assert (policy.leaver_action, policy.leaver_delete_after.days, policy.app_roles) == ("block", 30, True)
    assert Settings.from_env({**GOOD, "SYNC_APP_ROLES": "false", "SYNC_LEAVER_ACTION": "delete",
                              "SYNC_LEAVER_DELETE_AFTER_DAYS": "7"}).policy().leaver_delete_after.days == 7
    assert Settings.from_env({**GOOD, "GRAPH_BASE_URL": "https://graph.microsoft.us/v1.0/"}).graph_base_url \
        == "https://graph.microsoft.us/v1.0"


def test_schedule_check_for_the_timer() -> None:
    assert "not set" in (check_schedule({}) or "")
    assert "6-field" in (check_schedule({"SYNC_SCHEDULE": "0 0 * * *"}) or "")
    assert check_schedule({"SYNC_SCHEDULE": "0 */15 * * * *"}) is None


def test_local_settings_file(tmp_path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {**GOOD, "SYNC_MAX_REMOVALS": 7}}))
    assert Settings.from_env(load_local_settings(path)).max_removals == 7
    path.write_text("{}")
    with pytest.raises(ConfigError, match="Values"):
        load_local_settings(path)


def test_the_example_settings_file_names_every_setting() -> None:
    values = load_local_settings(Path(__file__).parent.parent / "local.settings.example.json")
    names = {f.alias for f in Settings.model_fields.values()}
    assert names <= set(values), names - set(values)


KV_MASTER_KEY = "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/k)"
KV_SECRET = "@Microsoft.KeyVault(VaultName=v;SecretName=s)"
# Problems that come together, and every line the one message must have.
COMBINED = [
    ({"LITELLM_BASE_URL": None, "ENTRA_TENANT_ID": None, "ENTRA_APP_ID": None, "ENTRA_CLIENT_ID": None,
      "LITELLM_MASTER_KEY": KV_MASTER_KEY, "ENTRA_CLIENT_SECRET": KV_SECRET, "SYNC_MAX_REMOVALS": "many"},
     ["LITELLM_BASE_URL: is required", "ENTRA_TENANT_ID: required",
      "ENTRA_APP_ID or ENTRA_SERVICE_PRINCIPAL_ID: one of them is required",
      "ENTRA_CLIENT_ID: required (a GUID) when ENTRA_CLIENT_SECRET is set",
      "LITELLM_MASTER_KEY: is still a Key Vault reference", "ENTRA_CLIENT_SECRET: is still a Key Vault reference",
      "SYNC_MAX_REMOVALS: Input should be a valid integer"]),
    ({"LITELLM_BASE_URL": "http://litellm.example.com", "LITELLM_MASTER_KEY": None,
      "DEFAULT_TEAM_PARAMS": '{"budget": 1, "max_budget": -1}', "SYNC_NESTED_GROUPS": "sometimes",
      "SYNC_SCHEDULE": "*/5 * * * *"},
     ["LITELLM_BASE_URL: must use https", "LITELLM_MASTER_KEY: is required", "DEFAULT_TEAM_PARAMS.budget",
      "DEFAULT_TEAM_PARAMS.max_budget", "SYNC_NESTED_GROUPS: expected true or false", "SYNC_SCHEDULE: expected"]),
    ({}, ["LITELLM_BASE_URL: is required", "LITELLM_MASTER_KEY: is required", "ENTRA_TENANT_ID: required",
          "ENTRA_APP_ID or ENTRA_SERVICE_PRINCIPAL_ID"]),
]


@pytest.mark.parametrize(("changes", "expected"), COMBINED, ids=["four-missing-two-references-one-bad",
                                                                 "bad-values", "empty"])
def test_every_problem_in_one_message_one_line_each(changes: dict, expected: list[str]) -> None:
    env = {} if not changes else with_changes(changes)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{len(expected)} problems:" and len(lines) == len(expected) + 1, lines
    for wanted in expected:
        assert sum(wanted in line for line in lines[1:]) == 1, (wanted, lines)
    # never a secret value; a reference is not asked to be required as well
    assert "v.vault.azure.net" not in str(caught.value) and "SecretName" not in str(caught.value)


def test_the_cli_lists_every_problem_and_exits_2_before_any_call() -> None:
    result = run_cli(with_changes(COMBINED[0][0]), "plan")
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("configuration error: 7 problems:\n")
    assert all(wanted in result.err for wanted in COMBINED[0][1])


def test_a_key_vault_reference_outside_azure_asks_for_the_value_itself() -> None:
    """The example file copied for a local run: Core Tools never resolves references."""
    values = load_local_settings(Path(__file__).parent.parent / "local.settings.example.json")
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(values)
    names = [name for name, _ in caught.value.problems]
    assert names == ["ENTRA_CLIENT_SECRET", "LITELLM_MASTER_KEY"]
    assert all("put the value itself in local.settings.json" in p for _, p in caught.value.problems)
    with pytest.raises(ConfigError) as in_azure:
        Settings.from_env({**values, "WEBSITE_SITE_NAME": "my-sync"})
    assert all("Key Vault Secrets User" in p and "local.settings.json" not in p for _, p in in_azure.value.problems)


def test_the_webhook_is_a_secret_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**GOOD, "SYNC_NOTIFY_WEBHOOK": "http://hooks.example.com/T0/secret"})
    assert "secret" not in str(caught.value)
    local = Settings.from_env({**GOOD, "SYNC_NOTIFY_WEBHOOK": "http://127.0.0.1:8080/hook"})
    assert local.notify_webhook is not None and "8080" not in repr(local)

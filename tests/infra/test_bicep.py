"""infra/ against the code: what `azd up` would deploy, read with pycep-parser (tests/infra/bicep.py).

The settings the app would get are fed to the real settings code, so a setting the code adds, renames
or starts requiring shows up here without this file changing.
"""

from __future__ import annotations

import json
import re
import typing
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from sync_core.errors import ConfigError
from sync_core.planner import OrphanAction
from sync_core.settings import Settings, check_schedule
from sync_core.state.blob import DEFAULT_CONTAINER
from sync_core.state.settings import IdentityTarget, read_storage_setting
from tests.functions import FUNCTIONS
from tests.infra.bicep import DEPLOYED_AT, INFRA, Resource, Template, deploy, is_secure, parse

REPO = INFRA.parent
SAMPLE = {
    "litellmBaseUrl": "https://litellm.example.com",
    "litellmMasterKey": "sk-sample-master-key",
    "entraAppId": "11112222-bbbb-3333-cccc-4444dddd5555",
}
WITH_SECRET = {**SAMPLE, "entraClientId": "22223333-cccc-4444-dddd-5555eeee6666",
               "entraClientSecret": "sample-client-secret"}
VARIANTS = pytest.mark.parametrize("params", [SAMPLE, WITH_SECRET], ids=["managed-identity", "client-secret"])

# Settings the template leaves out on purpose. A setting the code gains fails the test below until it
# is either deployed (a parameter or a tuning default in main.bicep) or listed here with its reason.
NOT_DEPLOYED = {
    "GRAPH_ACCESS_TOKEN": "a static token, accepted only for a Graph emulator on localhost",
    "ENTRA_SERVICE_PRINCIPAL_ID": "the alternative to ENTRA_APP_ID, which the template asks for",
    "SYNC_LOG_RETENTION_DAYS": "the code's default (30 days, as Entra's provisioning logs) serves; an app "
                               "setting changes it",
    "SYNC_NOTIFY_WEBHOOK": "optional; a Key Vault reference added as an app setting after deployment "
                           "(docs/operations.md)",
}
# Deployed settings whose value is the deployment's own, not a default of the code.
DEPLOYMENT_VALUES = {
    "ENTRA_CLIENT_ID": "the managed identity's client id (the code's default is no client id)",
    "SYNC_SCHEDULE": "the code has no default: the timer needs one",
}
KV_REFERENCE = re.compile(r"@Microsoft\.KeyVault\(SecretUri=(https://[^)]+)\)")
ROLE = {  # built-in role definition ids
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}


def deployed(t: Template, rtype: str) -> list[Resource]:
    return [r for r in t.resources() if r.type == rtype]


def one(t: Template, rtype: str) -> Resource:
    [resource] = deployed(t, rtype)
    return resource


def app_settings(t: Template) -> dict[str, Any]:
    [config] = [r for r in deployed(t, "Microsoft.Web/sites/config") if r.name == "appsettings"]
    return config.value("properties")


def secrets(t: Template) -> dict[str, str]:
    """Secret URI -> value, for every secret the template writes."""
    return {r.prop(["properties", "secretUri"]): r.value("properties")["value"]
            for r in deployed(t, "Microsoft.KeyVault/vaults/secrets")}


def as_the_app_sees_them(t: Template) -> dict[str, str]:
    """The app settings with Key Vault references resolved, as the platform does."""
    written = secrets(t)
    env = {}
    for name, value in app_settings(t).items():
        reference = KV_REFERENCE.fullmatch(value)
        env[name] = written[reference.group(1)] if reference else value
    return env


def secret_settings() -> set[str]:
    return {f.alias for f in Settings.model_fields.values() if f.alias and SecretStr in _types(f.annotation)}


def _types(annotation: Any) -> set[Any]:
    return {annotation, *typing.get_args(annotation)}


def identity_property(t: Template, prop: str) -> str:
    return one(t, "Microsoft.ManagedIdentity/userAssignedIdentities").prop(["properties", prop])


# ---- the app settings against sync_core/settings.py ----

@VARIANTS
def test_the_deployed_settings_pass_the_settings_code(params):
    t = deploy(**params)
    env = as_the_app_sees_them(t)

    settings = Settings.from_env(env)

    assert settings.litellm_master_key.get_secret_value() == params["litellmMasterKey"]
    assert settings.entra_app_id == params["entraAppId"]
    if "entraClientSecret" in params:
        assert settings.entra_client_secret.get_secret_value() == params["entraClientSecret"]
        assert settings.entra_client_id == params["entraClientId"]
    else:  # Graph through the user-assigned managed identity
        assert settings.entra_client_secret is None
        assert settings.entra_client_id == identity_property(t, "clientId")


def test_a_missing_required_parameter_would_fail_the_settings_code_not_deploy_silently():
    env = as_the_app_sees_them(deploy(**SAMPLE))
    for name in ("LITELLM_BASE_URL", "LITELLM_MASTER_KEY", "ENTRA_APP_ID", "ENTRA_TENANT_ID"):
        with pytest.raises(ConfigError):
            Settings.from_env({k: v for k, v in env.items() if k != name})
    main = parse(INFRA / "main.bicep")["parameters"]
    for param in ("litellmBaseUrl", "litellmMasterKey", "entraAppId"):  # required, and never blank
        assert main[param]["default"] is None
        assert {"type": "min_length", "argument": 1} in main[param]["decorators"]


def test_every_setting_of_the_code_is_deployed_or_left_out_for_a_stated_reason():
    known = {f.alias for f in Settings.model_fields.values() if f.alias}
    set_by_template = set(app_settings(deploy(**SAMPLE))) | set(app_settings(deploy(**WITH_SECRET)))

    assert known - set_by_template == set(NOT_DEPLOYED)
    assert set(NOT_DEPLOYED) <= known, "NOT_DEPLOYED names a setting the code no longer has"


def test_the_template_defaults_are_the_codes_defaults():
    env = as_the_app_sees_them(deploy(**SAMPLE))
    deployed_settings = Settings.from_env(env)
    fields = {f.alias: name for name, f in Settings.model_fields.items() if f.alias}
    compared = []
    for alias in sorted(set(env) & set(fields) - set(DEPLOYMENT_VALUES)):
        try:
            code_default = Settings.from_env({k: v for k, v in env.items() if k != alias})
        except ConfigError:
            continue  # required: the deployment's own value
        name = fields[alias]
        assert getattr(deployed_settings, name) == getattr(code_default, name), alias
        compared.append(alias)
    assert "SYNC_MAX_REMOVALS" in compared and "SYNC_ORPHANED_TEAM_ACTION" in compared


def test_every_allowed_parameter_value_is_accepted_by_the_code():
    main = deploy(**SAMPLE)
    for param in set(main.doc["parameters"]) - {"location"}:  # regions reach no setting (test_flex.py)
        for value in main.decorators(param).get("allowed") or []:
            Settings.from_env(as_the_app_sees_them(deploy(**SAMPLE, **{param: value})))
    assert set(main.decorators("orphanedTeamAction")["allowed"]) == {a.value for a in OrphanAction}
    field = Settings.model_fields["user_email_attribute"].annotation
    assert set(main.decorators("userEmailAttribute")["allowed"]) == set(typing.get_args(field))


def test_the_schedule_setting_is_the_one_the_timer_binds():
    [binding] = [b for f in FUNCTIONS.values() for b in json.loads(f.get_function_json())["bindings"]
                 if b["type"] == "timerTrigger"]
    setting = re.fullmatch(r"%(\w+)%", binding["schedule"]).group(1)
    env = as_the_app_sees_them(deploy(**SAMPLE))

    assert setting in env
    assert check_schedule(env) is None
    assert check_schedule({**env, setting: ""}) is not None  # the check does look at that setting


# ---- secrets ----

@VARIANTS
def test_secrets_reach_the_app_only_as_key_vault_references(params):
    t = deploy(**params)
    settings = app_settings(t)
    written = secrets(t)
    present = secret_settings() & set(settings)

    assert "LITELLM_MASTER_KEY" in present
    assert ("ENTRA_CLIENT_SECRET" in present) == ("entraClientSecret" in params)
    for name in present:
        reference = KV_REFERENCE.fullmatch(settings[name])
        assert reference, f"{name} is not a Key Vault reference"
        assert reference.group(1) in written, f"{name} refers to a secret the template does not write"
    secret_values = {v for k, v in params.items() if k in ("litellmMasterKey", "entraClientSecret")}
    outputs = json.dumps({name: t.output(name) for name in t.doc["outputs"]})
    for value in secret_values:
        assert value not in json.dumps(settings)
        assert value not in outputs


def test_secure_parameters_flow_only_into_key_vault_secrets():
    """Source level, every file: a @secure() parameter may be passed to a module's @secure() parameter,
    written as a Key Vault secret's value, or tested for emptiness; nothing else."""
    files = sorted(INFRA.rglob("*.bicep"))
    checked = 0
    for path in files:
        doc = parse(path)
        secure = {p for p in doc.get("parameters", {}) if is_secure(doc, p)}
        for name in secure:
            pattern = re.compile(rf"(?<![\w.]){name}(?!\w)")
            uses = [where for where, text in _strings(doc, ()) if pattern.search(text) and where[0] != "parameters"]
            assert uses, f"{path.name}: {name} is never used"
            for where in uses:
                assert _allowed_use(where, doc, path), f"{path.name}: {name} used at {'/'.join(where)}"
                checked += 1
    assert checked >= 4  # main passes two secrets on; the vault writes both


def _strings(node: Any, where: tuple[str, ...]):
    if isinstance(node, str):
        yield where, node
    elif isinstance(node, dict):
        if set(node) == {"function"}:
            where = (*where, f"{node['function']['type']}()")
        for key, value in node.items():
            if "${" in key:  # a computed key could carry a value too
                yield where, key
            yield from _strings(value, (*where, str(key)))
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, where)


def _allowed_use(where: tuple[str, ...], doc: dict, path) -> bool:
    if "empty()" in where:
        return True
    if where[0] == "modules" and where[2:4] == ("config", "params") and len(where) == 5:
        return is_secure(parse(path.parent / doc["modules"][where[1]]["detail"]["path"]), where[4])
    if where[0] == "resources" and where[-2:] == ("properties", "value"):
        return doc["resources"][where[1]]["type"] == "Microsoft.KeyVault/vaults/secrets"
    return False


def test_the_vault_uses_rbac_soft_delete_and_purge_protection():
    t = deploy(**SAMPLE)
    vault = one(t, "Microsoft.KeyVault/vaults").value("properties")
    site = one(t, "Microsoft.Web/sites")
    identity = one(t, "Microsoft.ManagedIdentity/userAssignedIdentities").prop(["id"])

    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True
    assert vault["enablePurgeProtection"] is True
    assert "accessPolicies" not in vault
    # References resolve with the user-assigned identity, which must be the app's.
    assert site.value("properties")["keyVaultReferenceIdentity"] == identity
    assert site.value("identity") == {"type": "UserAssigned", "userAssignedIdentities": {identity: {}}}


def test_resource_names_fit_azures_rules_even_for_the_longest_environment_name():
    t = deploy(**{**SAMPLE, "environmentName": "e" * 64})
    names = {r.type: r.name for r in t.resources()}
    group = one(t, "Microsoft.Resources/resourceGroups")

    assert re.fullmatch(r"[a-z0-9]{3,24}", names["Microsoft.Storage/storageAccounts"])
    assert re.fullmatch(r"[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]", names["Microsoft.KeyVault/vaults"])
    assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9-]{0,58}[a-zA-Z0-9]", names["Microsoft.Web/sites"])
    assert len(group.name) <= 90
    mailed = one(deploy(**SAMPLE, alertEmail="ops@example.com"), "Microsoft.Insights/actionGroups")
    assert len(mailed.value("properties")["groupShortName"]) <= 12


# ---- identity and roles ----

def test_the_identity_holds_exactly_the_four_roles_on_the_resources_it_uses():
    """Storage Queue Data Contributor for the queue trigger on identity-based host storage: the role the
    official Flex quickstart grants when it adds the queue (Azure-Samples/functions-quickstart-python-http-azd,
    infra/app/rbac.bicep, enableQueue) and the Functions docs name for AzureWebJobsStorage with queue
    triggers (learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity)."""
    t = deploy(**SAMPLE)
    env = app_settings(t)
    principal = identity_property(t, "principalId")
    vault_host = re.match(r"https://([^.]+)\.vault", KV_REFERENCE.fullmatch(env["LITELLM_MASTER_KEY"]).group(1))

    granted = set()
    for assignment in deployed(t, "Microsoft.Authorization/roleAssignments"):
        scope = assignment.value("scope")
        assert isinstance(scope, Resource), "a role assignment without a resource scope is too broad"
        props = assignment.value("properties")
        assert props["principalType"] == "ServicePrincipal"
        granted.add((props["principalId"], props["roleDefinitionId"].rsplit("/", 1)[1], scope.type, scope.name))

    appi = one(t, "Microsoft.Insights/components").name
    account = one(t, "Microsoft.Storage/storageAccounts").name
    assert granted == {
        (principal, ROLE["Storage Blob Data Owner"], "Microsoft.Storage/storageAccounts", account),
        (principal, ROLE["Storage Queue Data Contributor"], "Microsoft.Storage/storageAccounts", account),
        (principal, ROLE["Key Vault Secrets User"], "Microsoft.KeyVault/vaults", vault_host.group(1)),
        (principal, ROLE["Monitoring Metrics Publisher"], "Microsoft.Insights/components", appi),
    }


def test_storage_is_reached_with_the_identity_only():
    t = deploy(**SAMPLE)
    env = as_the_app_sees_them(t)
    account = one(t, "Microsoft.Storage/storageAccounts")
    containers = {c.name for c in deployed(t, "Microsoft.Storage/storageAccounts/blobServices/containers")}
    package = one(t, "Microsoft.Web/sites").value("properties")["functionAppConfig"]["deployment"]["storage"]

    assert account.value("properties")["allowSharedKeyAccess"] is False
    assert "AzureWebJobsStorage" not in env  # a connection string would win over the identity settings
    # The account's own endpoints (a national cloud's here: tests/infra/bicep.py), for the host and the sync.
    endpoints = {kind: account.prop(["properties", "primaryEndpoints", kind]) for kind in ("blob", "queue")}
    assert (env["AzureWebJobsStorage__blobServiceUri"], env["AzureWebJobsStorage__queueServiceUri"]) == (
        endpoints["blob"], endpoints["queue"])
    assert read_storage_setting(env) == IdentityTarget(
        account_url=endpoints["blob"].rstrip("/"), queue_url=endpoints["queue"].rstrip("/"),
        managed_identity=True, client_id=identity_property(t, "clientId"))
    assert DEFAULT_CONTAINER in containers
    assert package["value"].startswith(account.prop(["properties", "primaryEndpoints", "blob"]))
    assert package["value"].rsplit("/", 1)[1] in containers
    assert package["authentication"]["type"] == "UserAssignedIdentity"
    assert env["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == f"ClientId={identity_property(t, 'clientId')};Authorization=AAD"


# ---- the function app ----

def test_the_function_app_is_flex_consumption_python_311_https_only():
    t = deploy(**SAMPLE)
    plan = one(t, "Microsoft.Web/serverfarms")
    site = one(t, "Microsoft.Web/sites")
    props = site.value("properties")
    publishing = {p.name: p.value("properties")["allow"]
                  for p in deployed(t, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")}

    assert plan.value("sku") == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan.value("properties")["reserved"] is True  # Linux
    assert props["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    # No FTP or basic-auth publishing: Flex turns it off here, not with siteConfig.ftpsState (test_flex.py).
    assert publishing == {"ftp": False, "scm": False}


def test_azure_yaml_deploys_this_folder_to_the_tagged_function_app():
    project = yaml.safe_load((REPO / "azure.yaml").read_text())
    [(service, spec)] = project["services"].items()
    site = one(deploy(**SAMPLE), "Microsoft.Web/sites")

    assert spec == {"project": ".", "language": "python", "host": "function"}
    assert site.value("tags")["azd-service-name"] == service
    ignored = (REPO / ".funcignore").read_text().split()
    assert {"infra", "tests", "emulators", "bench", "azure.yaml", ".azure"} <= set(ignored)


def test_the_cli_has_the_command_the_hook_runs():
    from sync_core import cli

    args = cli.parse_args(["grant-permissions", "--principal-id", SAMPLE["entraAppId"]])
    assert args.command == "grant-permissions"


# ---- monitoring ----

def timer_name() -> str:
    [timer] = [name for name, f in FUNCTIONS.items()
               if any(b["type"] == "timerTrigger" for b in json.loads(f.get_function_json())["bindings"])]
    return timer


def rules(t: Template) -> dict[str, dict]:
    """The alert rules by what their query looks for: failed or successful timer runs."""
    found = {}
    for rule in deployed(t, "Microsoft.Insights/scheduledQueryRules"):
        props = rule.value("properties")
        [condition] = props["criteria"]["allOf"]
        assert f'operation_Name == "{timer_name()}"' in condition["query"]
        kind = "failed" if "success == false" in condition["query"] else "missing"
        found[kind] = {**props, "condition": condition}
    return found


@pytest.mark.parametrize("email", ["", "ops@example.com"])
def test_two_alerts_a_failed_run_and_no_successful_run_on_one_action_group(email):
    """A log alert fires on the rows its query returns: a run that never happens (a broken deploy, a
    failed indexing, a stopped app, a rejected schedule) returns none, so it needs a rule that counts
    successes and fires below one (Azure Monitor log search alerts: learn.microsoft.com/azure/azure-monitor/
    alerts/alerts-types#log-alerts; the classic App Insights schema: requests / success / operation_Name)."""
    t = deploy(**SAMPLE, alertEmail=email)
    appi = one(t, "Microsoft.Insights/components")
    groups = deployed(t, "Microsoft.Insights/actionGroups")
    found = rules(t)

    assert set(found) == {"failed", "missing"}
    failed, missing = found["failed"]["condition"], found["missing"]["condition"]
    assert (failed["operator"], failed["threshold"]) == ("GreaterThan", 0)
    assert "success == true" in missing["query"]
    assert (missing["timeAggregation"], missing["operator"], missing["threshold"]) == ("Count", "LessThan", 1)
    assert found["missing"]["overrideQueryTimeRange"] == "PT2H"  # the default: two hours
    assert all(rule["scopes"] == [appi.prop(["id"])] for rule in found.values())
    assert appi.value("properties")["DisableLocalAuth"] is True
    if email:
        [group] = groups
        assert [r["emailReceivers"][0]["emailAddress"] for r in [group.value("properties")]] == [email]
        assert all(rule["actions"]["actionGroups"] == [group.prop(["id"])] for rule in found.values())
    else:
        assert groups == [] and all(rule["actions"]["actionGroups"] == [] for rule in found.values())


def test_the_missing_run_alert_waits_the_configured_hours_and_not_right_after_a_deployment():
    t = deploy(**SAMPLE, missedRunAlertHours=6)
    missing = rules(t)["missing"]
    query = missing["condition"]["query"]

    assert missing["overrideQueryTimeRange"] == "PT6H"
    assert "ago(6h)" in query
    # The deployment time (utcNow()) gives one row until the hours have passed: no alert for a fresh app.
    assert f'todatetime("{DEPLOYED_AT}")' in query
    assert missing["autoMitigate"] is True  # resolves itself once runs succeed again
    bounds = deploy(**SAMPLE).decorators("missedRunAlertHours")
    assert (bounds["min_value"], bounds["max_value"]) == (1, 48)  # overrideQueryTimeRange goes up to 2 days


# ---- azd parameters ----

def test_main_parameters_json_maps_every_parameter_with_the_bicep_defaults():
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = parse(INFRA / "main.bicep")["parameters"]

    assert set(mapped) == set(declared)
    for name, entry in mapped.items():
        value = entry["value"]
        substitution = re.fullmatch(r"\$\{(\w+)(?:=(.*))?\}", value) if isinstance(value, str) else None
        if substitution is None:  # a literal the operator edits in place (JSON objects)
            assert value == declared[name]["default"], name
        elif substitution.group(2) is not None:
            assert substitution.group(2) == declared[name]["default"], name

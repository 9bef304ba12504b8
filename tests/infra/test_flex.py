"""infra/ against Azure's written rules for Flex Consumption and the official Flex templates.

No Bicep compiler or Azure can run here, so each rule below is Microsoft's, with where it is written;
the template is read with tests/infra/bicep.py. Sources (read 2026-12-03):

DEPRECATIONS  learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations
              (MicrosoftDocs/azure-docs articles/azure-functions/functions-app-settings.md, ms.date 07/11/2025):
              "In the Flex Consumption plan, these site properties and application settings are deprecated
              and shouldn't be used when creating function app resources".
REFUSED       Azure's answer to those properties, e.g. "The following list of 4 site configuration properties
              (Site.SiteConfig.FtpsState, Site.SiteConfig.Use32BitWorkerProcess, Site.SiteConfig.NetFrameworkVersion,
              Site.SiteConfig.FunctionsRuntimeScaleMonitoringEnabled) for Flex Consumption sites is invalid"
              (github.com/microsoft/azure-pipelines-tasks/issues/21032, May 2025): the site is not created.
QUICKSTART    Azure-Samples/functions-quickstart-python-http-azd (infra/, commit 7ed4638, 2025-11-24) and
              Azure-Samples/azure-functions-flex-consumption-samples (IaC/bicep/main.bicep, 2025-12-17): a Flex
              site sets only siteConfig { alwaysOn: false }; host storage by AzureWebJobsStorage__blobServiceUri
              (+ __queueServiceUri with a queue) from the account's endpoints, never __accountName.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from sync_core.run_queue import RUN_QUEUE
from tests.functions import FUNCTIONS
from tests.infra.bicep import INFRA, DeploymentRefused, deploy, parse
from tests.infra.test_bicep import SAMPLE, WITH_SECRET, app_settings, deployed, one

REPO = INFRA.parent

# (siteConfig property, the values Flex accepts or None for none, the DEPRECATIONS table's reason)
SITE_CONFIG_REFUSED: list[tuple[str, frozenset[Any] | None, str]] = [
    ("alwaysOn", frozenset({False}), "Not valid (QUICKSTART sets false, which Azure accepts)"),
    ("containerSize", None, "Renamed as instanceMemoryMB"),
    ("ftpsState", None, "FTPS not supported; REFUSED: Site.SiteConfig.FtpsState ... is invalid"),
    ("isReserved", None, "Not valid"),
    ("IsXenon", None, "Not valid"),
    ("javaVersion", None, "Replaced by version in properties.functionAppConfig.runtime"),
    ("linuxFxVersion", None, "Replaced by properties.functionAppConfig.runtime"),
    ("netFrameworkVersion", None, "Replaced by version in properties.functionAppConfig.runtime; REFUSED"),
    ("powerShellVersion", None, "Replaced by version in properties.functionAppConfig.runtime"),
    ("functionAppScaleLimit", None, "Renamed as maximumInstanceCount"),
    ("preWarmedInstanceCount", None, "Renamed as alwaysReadyInstances"),
    ("use32BitWorkerProcess", None, "32-bit not supported; REFUSED"),
    ("functionsRuntimeScaleMonitoringEnabled", None, "REFUSED (not in the table)"),
    ("vnetBackupRestoreEnabled", None, "Not used for networking in Flex Consumption"),
    ("vnetContentShareEnabled", None, "Not used for networking in Flex Consumption"),
    ("vnetImagePullEnabled", None, "Not used for networking in Flex Consumption"),
    ("vnetRouteAllEnabled", None, "Not used for networking in Flex Consumption"),
    ("windowsFxVersion", None, "Not valid"),
]
# App settings of the DEPRECATIONS table, with its reasons.
APP_SETTINGS_REFUSED = {
    "ENABLE_ORYX_BUILD": "Replaced by the remoteBuild parameter when deploying in Flex Consumption",
    "FUNCTIONS_EXTENSION_VERSION": "App Setting is set by the backend",
    "FUNCTIONS_WORKER_RUNTIME": "Replaced by name in properties.functionAppConfig.runtime",
    "FUNCTIONS_WORKER_RUNTIME_VERSION": "Replaced by version in properties.functionAppConfig.runtime",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY": "Replaced by scale and concurrency's trigger section",
    "FUNCTIONS_WORKER_PROCESS_COUNT": "Setting not valid",
    "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED": "Setting not valid",
    "SCM_DO_BUILD_DURING_DEPLOYMENT": "Replaced by the remoteBuild parameter when deploying in Flex Consumption",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING": "Replaced by functionAppConfig's deployment section",
    "WEBSITE_CONTENTOVERVNET": "Not used for networking in Flex Consumption",
    "WEBSITE_CONTENTSHARE": "Replaced by functionAppConfig's deployment section",
    "WEBSITE_DNS_SERVER": "DNS is inherited from the integrated virtual network in Flex",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT": "Replaced by maximumInstanceCount",
    "WEBSITE_NODE_DEFAULT_VERSION": "Replaced by version in properties.functionAppConfig.runtime",
    "WEBSITE_RUN_FROM_PACKAGE": "Not used for deployments in Flex Consumption",
    "WEBSITE_SKIP_CONTENTSHARE_VALIDATION": "Content share isn't used in Flex Consumption",
    "WEBSITE_VNET_ROUTE_ALL": "Not used for networking in Flex Consumption",
}
VARIANTS = pytest.mark.parametrize("params", [SAMPLE, WITH_SECRET, {**SAMPLE, "enablePurgeProtection": False}],
                                   ids=["managed-identity", "client-secret", "no-purge-protection"])


def site_properties(params: dict) -> dict:
    return one(deploy(**params), "Microsoft.Web/sites").value("properties")


@VARIANTS
def test_no_site_config_property_that_flex_refuses(params):
    config = {k.lower(): v for k, v in site_properties(params).get("siteConfig", {}).items()}
    refused = {f"siteConfig.{prop}": reason for prop, accepted, reason in SITE_CONFIG_REFUSED
               if prop.lower() in config and (accepted is None or config[prop.lower()] not in accepted)}
    assert refused == {}


@VARIANTS
def test_no_app_setting_that_flex_refuses(params):
    settings = {name.upper() for name in app_settings(deploy(**params))}  # setting names are case-insensitive
    refused = {name: why for name, why in APP_SETTINGS_REFUSED.items() if name in settings}
    assert refused == {}


def test_runtime_and_scale_live_in_function_app_config_as_on_flex():
    """functionAppConfig exists from Microsoft.Web/sites API version 2023-12-01 (learn.microsoft.com/azure/
    templates/microsoft.web/change-log/sites: 2023-12-01 "Added: FunctionAppConfig ...")."""
    site = one(deploy(**SAMPLE), "Microsoft.Web/sites")
    config = site.value("properties")["functionAppConfig"]
    version = parse(INFRA / "app" / "function.bicep")["resources"]["site"]["api_version"]

    assert version >= "2023-12-01"
    assert config["runtime"]["name"] == "python"
    assert config["deployment"]["storage"]["type"] == "blobContainer"
    assert config["scaleAndConcurrency"]["instanceMemoryMB"] in (512, 2048, 4096)  # the Flex instance sizes


def test_no_storage_endpoint_is_written_into_the_template():
    """Host storage works in every cloud only from the account's own endpoints (QUICKSTART; the docs:
    __accountName is for the public cloud). A written suffix would pin one cloud."""
    for path in INFRA.rglob("*.bicep"):
        code = "\n".join(line.split("//", 1)[0] for line in path.read_text().splitlines())
        assert not re.search(r"core\.(windows\.net|usgovcloudapi\.net|chinacloudapi\.cn)", code), path.name
    assert "AzureWebJobsStorage__accountName" not in app_settings(deploy(**SAMPLE))


def test_the_run_queue_exists_with_its_poison_queue_and_the_trigger_binds_it():
    """The queue trigger moves a message to <queue>-poison after maxDequeueCount failed deliveries
    (learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger#poison-messages);
    both exist beforehand, so the identity needs no right to create queues."""
    t = deploy(**SAMPLE)
    queues = {q.name for q in deployed(t, "Microsoft.Storage/storageAccounts/queueServices/queues")}
    [binding] = json.loads(FUNCTIONS["sync_queued"].get_function_json())["bindings"]
    host = json.loads((REPO / "host.json").read_text())

    assert binding["queueName"] == RUN_QUEUE
    assert queues == {RUN_QUEUE, f"{RUN_QUEUE}-poison"}
    assert binding["connection"] == "AzureWebJobsStorage" and "AzureWebJobsStorage__queueServiceUri" in app_settings(t)
    assert host["extensions"]["queues"]["maxDequeueCount"] >= 2  # a run that died is run once more


# ---- parameters ----

def test_location_is_limited_to_the_regions_that_offer_flex():
    """The list of QUICKSTART's infra/main.bicep (2025-11-24), checked against ours: a region without Flex
    would fail half-way, after the vault and storage exist."""
    official = {
        "australiaeast", "australiasoutheast", "brazilsouth", "canadacentral", "centralindia", "centralus",
        "eastasia", "eastus", "eastus2", "eastus2euap", "francecentral", "germanywestcentral", "italynorth",
        "japaneast", "koreacentral", "northcentralus", "northeurope", "norwayeast", "southafricanorth",
        "southcentralus", "southeastasia", "southindia", "spaincentral", "swedencentral", "uaenorth", "uksouth",
        "ukwest", "westcentralus", "westeurope", "westus", "westus2", "westus3",
    }
    allowed = set(deploy(**SAMPLE).decorators("location")["allowed"])
    assert allowed == official


@pytest.mark.parametrize(("enabled", "expected"), [(True, True), (False, None)])
def test_purge_protection_is_on_by_default_and_left_out_when_off(enabled, expected):
    """Key Vault refuses enablePurgeProtection false ("Setting this property to false is not allowed",
    learn.microsoft.com/azure/templates/microsoft.keyvault/vaults): off means the property is absent."""
    default = deploy(**SAMPLE)
    vault = one(deploy(**SAMPLE, enablePurgeProtection=enabled), "Microsoft.KeyVault/vaults").value("properties")

    assert default.args["enablePurgeProtection"] is True
    assert vault.get("enablePurgeProtection") is expected
    assert vault["enableSoftDelete"] is True


def test_a_client_secret_without_its_client_id_is_refused_at_provisioning():
    """Bicep's fail() stops the deployment with our message (learn.microsoft.com/azure/azure-resource-manager/
    bicep/bicep-functions-flow-control); without it the app would get a setting every run fails on."""
    with pytest.raises(DeploymentRefused, match="ENTRA_CLIENT_SECRET is set but ENTRA_CLIENT_ID is not"):
        app_settings(deploy(**{**WITH_SECRET, "entraClientId": ""}))
    assert app_settings(deploy(**WITH_SECRET))["ENTRA_CLIENT_ID"] == WITH_SECRET["entraClientId"]


# ---- what azd deploys ----

def test_funcignore_deploys_the_app_and_keeps_out_what_azd_would_have():
    """With a .funcignore present, azd packages by it alone (gitignore syntax) and skips its own Python
    exclusions: folders holding pyvenv.cfg and __pycache__ (Azure/azure-dev cli/azd/pkg/project/
    project_utils.go). QUICKSTART's .funcignore adds Azurite's __azurite_db*__.json, __blobstorage__,
    __queuestorage__ and local.settings.json. Matched here with git's own gitignore rules."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    kept_out = [".venv/pyvenv.cfg", ".venv-checkov/pyvenv.cfg", "venv311/pyvenv.cfg", "env/pyvenv.cfg",
                "sync_core/__pycache__/cli.cpython-311.pyc", "__azurite_db_blob__.json", "__blobstorage__/b",
                "__queuestorage__/q", ".env", ".azure/dev/.env", "local.settings.json", ".sync-state/run.lock",
                "tools/azurite/node_modules/azurite/package.json"]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name in [*tracked, *kept_out]:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text("")
        (root / ".gitignore").write_text((REPO / ".funcignore").read_text())
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        ignored = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=root, check=False,
                                 input="\n".join([*tracked, *kept_out]), capture_output=True, text=True).stdout.split()

    deployed = set(tracked) - set(ignored)
    assert deployed == {"function_app.py", "host.json", "requirements.txt"} | {
        name for name in tracked if name.startswith("sync_core/")}
    assert set(kept_out) <= set(ignored)

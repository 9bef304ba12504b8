# azd postprovision hook (Windows): the same as postprovision.sh. It never stops `azd up`: when it
# cannot grant the permissions it prints the command an administrator runs later, and exits 0.
$ErrorActionPreference = 'Continue'

$principal = $env:SYNC_IDENTITY_PRINCIPAL_ID
$tenant = $env:AZURE_TENANT_ID
$graph = if ($env:SYNC_GRAPH_BASE_URL) { $env:SYNC_GRAPH_BASE_URL } else { 'https://graph.microsoft.com/v1.0' }
$waitSeconds = if ($env:SYNC_GRANT_WAIT_SECONDS) { $env:SYNC_GRANT_WAIT_SECONDS } else { '180' }
# The CLI and the packages grant-permissions imports (found, not imported: msgraph takes seconds).
$canRunCheck = "import importlib.util as u, sync_core.cli; assert all(u.find_spec(m) for m in ('msgraph', 'azure.identity'))"

function Later([string] $why) {
    Write-Host "WARNING: the sync's identity did NOT get its Microsoft Graph permissions: $why"
    Write-Host 'The deployment goes on; the sync cannot read Entra until someone who may grant application'
    Write-Host 'permissions (Privileged Role Administrator or Global Administrator) runs, in this folder with'
    Write-Host "the project's virtualenv (py -3.11 -m venv .venv; .venv\Scripts\pip install -r requirements.txt):"
    Write-Host "    `$env:ENTRA_TENANT_ID='$tenant'; `$env:GRAPH_BASE_URL='$graph'; .venv\Scripts\python -m sync_core grant-permissions --principal-id $principal"
    Write-Host 'or on Linux or macOS:'
    Write-Host "    ENTRA_TENANT_ID=$tenant GRAPH_BASE_URL=$graph .venv/bin/python -m sync_core grant-permissions --principal-id $principal"
    exit 0
}

if ($env:SYNC_GRAPH_IDENTITY -eq 'appRegistration') {
    Write-Host 'The sync signs in to Graph with an app registration (ENTRA_CLIENT_SECRET): grant it the'
    Write-Host 'permissions yourself: python -m sync_core grant-permissions --principal-id <its service principal object id>'
    exit 0
}
if ($env:SYNC_GRAPH_IDENTITY -ne 'managedIdentity') {
    Write-Host 'SYNC_GRAPH_IDENTITY is not set: this hook runs through azd, after infra/main.bicep is provisioned.'
    exit 0
}
if (-not $principal) { Later 'SYNC_IDENTITY_PRINCIPAL_ID is not set (was infra/main.bicep provisioned?)' }

# The project's virtualenv has the sync's dependencies; otherwise the first python.
$python = 'python'
if (Test-Path '.venv/Scripts/python.exe') { $python = '.venv/Scripts/python.exe' }
$canRun = $false
try {
    & $python -c $canRunCheck *> $null
    $canRun = ($LASTEXITCODE -eq 0)
} catch {
    $canRun = $false  # no such program
}
if (-not $canRun) {
    Later "$python cannot run the sync's CLI here (no virtualenv with its requirements). Create one with py -3.11 -m venv .venv; .venv\Scripts\pip install -r requirements.txt, and run 'azd provision' again, or have the command below run"
}

# The deployment's tenant and Graph endpoint (national clouds), not whatever the shell had.
$env:ENTRA_TENANT_ID = $tenant
$env:GRAPH_BASE_URL = $graph
& $python -m sync_core grant-permissions --principal-id $principal --wait-for-identity $waitSeconds
if ($LASTEXITCODE -eq 0) { exit 0 }
Later 'the grant failed (its error is above)'

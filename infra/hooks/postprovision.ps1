# azd postprovision hook (Windows): the same as postprovision.sh.
$ErrorActionPreference = 'Stop'

if ($env:SYNC_GRAPH_IDENTITY -eq 'appRegistration') {
    Write-Host 'The sync signs in to Graph with an app registration (ENTRA_CLIENT_SECRET): grant it the'
    Write-Host 'permissions yourself: python -m sync_core grant-permissions --principal-id <its service principal object id>'
    exit 0
}
if ($env:SYNC_GRAPH_IDENTITY -ne 'managedIdentity') {
    Write-Error 'SYNC_GRAPH_IDENTITY is not set: run this hook through azd, after infra/main.bicep is provisioned'
    exit 1
}
if (-not $env:SYNC_IDENTITY_PRINCIPAL_ID) {
    Write-Error 'SYNC_IDENTITY_PRINCIPAL_ID is not set: was infra/main.bicep provisioned?'
    exit 1
}

$python = 'python'
if (Test-Path '.venv/Scripts/python.exe') { $python = '.venv/Scripts/python.exe' }
& $python -m sync_core grant-permissions --principal-id $env:SYNC_IDENTITY_PRINCIPAL_ID
exit $LASTEXITCODE

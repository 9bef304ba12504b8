#!/bin/sh
# azd postprovision hook: grant the sync's managed identity its Microsoft Graph application
# permissions (Application.Read.All, GroupMember.Read.All, User.Read.All) with the operator's own
# sign-in. azd passes the Bicep outputs as environment variables.
#
# It never stops `azd up` (azure.yaml also sets continueOnError): whatever keeps it from granting
# (no Python that can run the sync's CLI, a person who may not grant application permissions, an
# identity Graph does not know yet after SYNC_GRANT_WAIT_SECONDS), it prints the exact command an
# administrator runs later, and azd goes on to deploy the code.
set -u

principal="${SYNC_IDENTITY_PRINCIPAL_ID:-}"
tenant="${AZURE_TENANT_ID:-}"
graph="${SYNC_GRAPH_BASE_URL:-https://graph.microsoft.com/v1.0}"
wait_seconds="${SYNC_GRANT_WAIT_SECONDS:-180}"
can_run="import importlib.util as u, sync_core.cli; assert all(u.find_spec(m) for m in ('msgraph', 'azure.identity'))"

later() {
    echo "WARNING: the sync's identity did NOT get its Microsoft Graph permissions: $1"
    echo "The deployment goes on; the sync cannot read Entra until someone who may grant application"
    echo "permissions (Privileged Role Administrator or Global Administrator) runs, in this folder with"
    echo "the project's virtualenv (make venv):"
    echo "    ENTRA_TENANT_ID=$tenant GRAPH_BASE_URL=$graph .venv/bin/python -m sync_core grant-permissions --principal-id $principal"
    echo "or in PowerShell on Windows:"
    echo "    \$env:ENTRA_TENANT_ID='$tenant'; \$env:GRAPH_BASE_URL='$graph'; .venv\\Scripts\\python -m sync_core grant-permissions --principal-id $principal"
    exit 0
}

case "${SYNC_GRAPH_IDENTITY:-}" in
    managedIdentity) ;;
    appRegistration)
        echo "The sync signs in to Graph with an app registration (ENTRA_CLIENT_SECRET): grant it the"
        echo "permissions yourself: python -m sync_core grant-permissions --principal-id <its service principal object id>"
        exit 0 ;;
    *)
        echo "SYNC_GRAPH_IDENTITY is not set: this hook runs through azd, after infra/main.bicep is provisioned."
        exit 0 ;;
esac
if [ -z "$principal" ]; then
    later "SYNC_IDENTITY_PRINCIPAL_ID is not set (was infra/main.bicep provisioned?)"
fi

# The project's virtualenv (make venv) has the sync's dependencies; otherwise the first python3.
python=python3
if [ -x .venv/bin/python ]; then
    python=.venv/bin/python
fi
# The CLI and the packages grant-permissions imports (found, not imported: msgraph takes seconds).
if ! "$python" -c "$can_run" >/dev/null 2>&1; then
    later "$python cannot run the sync's CLI here (no virtualenv with its requirements). Create one with
    make venv    (or: python3 -m venv .venv && .venv/bin/pip install -r requirements.txt)
and run 'azd provision' again, or have the command below run"
fi

# The deployment's tenant and Graph endpoint (national clouds), not whatever the shell had.
if ENTRA_TENANT_ID="$tenant" GRAPH_BASE_URL="$graph" "$python" -m sync_core grant-permissions \
        --principal-id "$principal" --wait-for-identity "$wait_seconds"; then
    exit 0
fi
later "the grant failed (its error is above)"

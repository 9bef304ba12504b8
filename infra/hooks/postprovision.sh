#!/bin/sh
# azd postprovision hook: grant the sync's managed identity its Microsoft Graph application
# permissions (Application.Read.All, GroupMember.Read.All, User.Read.All) with the operator's own
# sign-in. azd passes the Bicep outputs as environment variables.
set -eu

case "${SYNC_GRAPH_IDENTITY:-}" in
    managedIdentity) ;;
    appRegistration)
        echo "The sync signs in to Graph with an app registration (ENTRA_CLIENT_SECRET): grant it the"
        echo "permissions yourself: python -m sync_core grant-permissions --principal-id <its service principal object id>"
        exit 0 ;;
    *)
        echo "SYNC_GRAPH_IDENTITY is not set: run this hook through azd, after infra/main.bicep is provisioned" >&2
        exit 1 ;;
esac
if [ -z "${SYNC_IDENTITY_PRINCIPAL_ID:-}" ]; then
    echo "SYNC_IDENTITY_PRINCIPAL_ID is not set: was infra/main.bicep provisioned?" >&2
    exit 1
fi

# The project's virtualenv (make venv) has the sync's dependencies; otherwise the first python3.
python=python3
if [ -x .venv/bin/python ]; then
    python=.venv/bin/python
fi
exec "$python" -m sync_core grant-permissions --principal-id "$SYNC_IDENTITY_PRINCIPAL_ID"

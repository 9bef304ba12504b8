// entra-litellm-sync on Azure: `azd up` deploys everything here (see README "Deploy to Azure").
// Plain resource declarations in local modules (no registry modules), so the test suite can read all of it.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; with the subscription and location it makes the resource names unique.')
param environmentName string

// The regions offering Flex Consumption, as listed by Microsoft's Flex quickstart template
// (Azure-Samples/functions-quickstart-python-http-azd, infra/main.bicep, 2025-11-24); the current list:
// `az functionapp list-flexconsumption-locations`. A region outside it would fail half-way, after the
// vault and the storage account exist. A region added later: add it here.
@minLength(1)
@description('Azure region for every resource: one that offers Flex Consumption.')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'eastus2euap'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({ azd: { type: 'location' } })
param location string

@description('Resource group to create or reuse (default: rg-<environmentName>).')
param resourceGroupName string = ''

// ---- What the operator chooses: every app setting of the sync, with the code's defaults. ----

@minLength(1)
@description('LITELLM_BASE_URL: the proxy\'s https URL.')
param litellmBaseUrl string

@secure()
@minLength(1)
@description('LITELLM_MASTER_KEY: a proxy-admin key. Stored in Key Vault only; the app setting is a reference.')
param litellmMasterKey string

@minLength(1)
@description('ENTRA_APP_ID: the application (client) id of the LiteLLM enterprise app whose assignments are read.')
param entraAppId string

@description('ENTRA_CLIENT_ID of an app registration, only with entraClientSecret; empty: the app\'s managed identity.')
param entraClientId string = ''

@secure()
@description('ENTRA_CLIENT_SECRET of that app registration (stored in Key Vault); empty: the managed identity is used.')
param entraClientSecret string = ''

@description('GRAPH_BASE_URL: Microsoft Graph for this cloud.')
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('SYNC_SCHEDULE: NCRONTAB with seconds, in UTC.')
param syncSchedule string = '0 */15 * * * *'

@description('DEFAULT_TEAM_PARAMS: applied when the sync creates a team, e.g. {"max_budget": 100, "budget_duration": "30d"}.')
param defaultTeamParams object = {}

@description('DEFAULT_INTERNAL_USER_PARAMS: applied when the sync creates a user, e.g. {"user_role": "internal_user"}.')
param defaultInternalUserParams object = {}

@allowed(['block', 'keep', 'delete'])
@description('SYNC_ORPHANED_TEAM_ACTION: what happens to a managed team whose group is no longer assigned.')
param orphanedTeamAction string = 'block'

@description('SYNC_MAX_REMOVALS: circuit breaker, most removals per run.')
param maxRemovals string = '100'

@description('SYNC_MAX_REMOVAL_PERCENT: circuit breaker, most removals as % of managed memberships.')
param maxRemovalPercent string = '20'

@allowed(['true', 'false'])
@description('SYNC_NESTED_GROUPS: true for transitive members, false for direct members only.')
param nestedGroups string = 'true'

@allowed(['userPrincipalName', 'mail'])
@description('SYNC_USER_EMAIL_ATTRIBUTE: where a LiteLLM user\'s e-mail comes from.')
param userEmailAttribute string = 'userPrincipalName'

@allowed(['block', 'keep', 'delete'])
@description('SYNC_LEAVER_ACTION: what happens to a managed user whose account is disabled, deleted or out of scope.')
param leaverAction string = 'block'

@description('SYNC_LEAVER_DELETE_AFTER_DAYS: with leaverAction delete, days a leaver stays blocked before deletion.')
param leaverDeleteAfterDays string = '30'

@description('SYNC_TEAM_POLICY_FILE: the team policy YAML, relative to the app folder (it deploys with the code); empty: none.')
param teamPolicyFile string = ''

@allowed(['true', 'false'])
@description('SYNC_APP_ROLES: LiteLLM user roles follow the enterprise app\'s app roles.')
param appRoles string = 'true'

@allowed(['auto', 'on', 'off'])
@description('SYNC_LITELLM_BULK: LiteLLM\'s bulk routes where the proxy offers them (auto), always (on) or never (off).')
param litellmBulk string = 'auto'

@description('More app settings, by name, over the tuning defaults below, e.g. {"SYNC_GRAPH_CONCURRENCY": "4"}. Not for secrets: those are the secure parameters, kept in Key Vault.')
param extraSettings object = {}

@description('Where the alerts ("a scheduled run failed", "no successful run") are mailed; empty: they fire in Azure Monitor only.')
param alertEmail string = ''

@minValue(1)
@maxValue(48)
@description('Hours without a successful scheduled run before the "no successful run" alert fires; longer than the schedule\'s interval.')
param missedRunAlertHours int = 2

@description('Key Vault purge protection: a deleted vault and its name stay taken for 90 days. false only for throw-away (dev) environments whose name is reused.')
param enablePurgeProtection bool = true

// The code's defaults for the tuning settings, written out so the portal shows every knob. A setting
// the code gains goes here (a tuning knob) or gets a parameter above: tests/infra/test_bicep.py fails
// until it is deployed or listed there as left out on purpose.
var tuningDefaults = {
  SYNC_GRAPH_CONCURRENCY: '8'
  SYNC_GRAPH_RU_PER_10S: '6000'
  SYNC_LITELLM_CONCURRENCY: '16'
  SYNC_MEMBER_ADD_CHUNK: '200'
  SYNC_USER_CREATE_CHUNK: '500'
  SYNC_USER_UPDATE_CHUNK: '100'
  SYNC_MEMBER_DELETE_CHUNK: '500'
  SYNC_LITELLM_BULK_IN_FLIGHT: '1'
  SYNC_LITELLM_BULK_TIMEOUT_SECONDS: '120'
  SYNC_HTTP_TIMEOUT_SECONDS: '30'
  SYNC_RETRY_BUDGET_SECONDS: '120'
  SYNC_FULL_RECONCILE_HOURS: '24'
  SYNC_HTTP_WAIT_SECONDS: '180'
}

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var useClientSecret = !empty(entraClientSecret)

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'sync-identity'
  scope: rg
  params: {
    name: 'id-sync-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'sync-storage'
  scope: rg
  params: {
    name: 'stsync${resourceToken}'
    location: location
    tags: tags
  }
}

module vault 'app/vault.bicep' = {
  name: 'sync-vault'
  scope: rg
  params: {
    name: 'kv-sync-${resourceToken}'
    location: location
    tags: tags
    litellmMasterKey: litellmMasterKey
    entraClientSecret: entraClientSecret
    enablePurgeProtection: enablePurgeProtection
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'sync-monitoring'
  scope: rg
  params: {
    resourceToken: resourceToken
    location: location
    tags: tags
    alertEmail: alertEmail
    missedRunAlertHours: missedRunAlertHours
  }
}

module roles 'app/roles.bicep' = {
  name: 'sync-roles'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageName: storage.outputs.name
    vaultName: vault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

// Secrets reach the app only as Key Vault references; the platform resolves them with the identity.
var masterKeySetting = { LITELLM_MASTER_KEY: '@Microsoft.KeyVault(SecretUri=${vault.outputs.litellmMasterKeyUri})' }
var clientSecretSetting = useClientSecret ? { ENTRA_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${vault.outputs.entraClientSecretUri})' } : {}

// Without a secret, the client id selects the user-assigned managed identity for Graph. A secret
// without the id of its app registration would deploy a setting every run fails on: refused here.
var graphClientId = useClientSecret ? (empty(entraClientId) ? fail('ENTRA_CLIENT_SECRET is set but ENTRA_CLIENT_ID is not: set ENTRA_CLIENT_ID to the client id of the app registration the secret belongs to (azd env set ENTRA_CLIENT_ID <client id>), or unset ENTRA_CLIENT_SECRET to use the managed identity') : entraClientId) : identity.outputs.clientId

var syncSettings = union(tuningDefaults, extraSettings, masterKeySetting, clientSecretSetting, {
  LITELLM_BASE_URL: litellmBaseUrl
  ENTRA_TENANT_ID: tenant().tenantId
  ENTRA_CLIENT_ID: graphClientId
  ENTRA_APP_ID: entraAppId
  GRAPH_BASE_URL: graphBaseUrl
  SYNC_SCHEDULE: syncSchedule
  DEFAULT_TEAM_PARAMS: string(defaultTeamParams)
  DEFAULT_INTERNAL_USER_PARAMS: string(defaultInternalUserParams)
  SYNC_ORPHANED_TEAM_ACTION: orphanedTeamAction
  SYNC_MAX_REMOVALS: maxRemovals
  SYNC_MAX_REMOVAL_PERCENT: maxRemovalPercent
  SYNC_NESTED_GROUPS: nestedGroups
  SYNC_LEAVER_ACTION: leaverAction
  SYNC_LEAVER_DELETE_AFTER_DAYS: leaverDeleteAfterDays
  SYNC_TEAM_POLICY_FILE: teamPolicyFile
  SYNC_APP_ROLES: appRoles
  SYNC_LITELLM_BULK: litellmBulk
  SYNC_USER_EMAIL_ATTRIBUTE: userEmailAttribute
})

module functionApp 'app/function.bicep' = {
  name: 'sync-function'
  scope: rg
  dependsOn: [roles] // Key Vault references resolve only once the identity may read the vault
  params: {
    name: 'func-sync-${resourceToken}'
    planName: 'plan-sync-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    syncSettings: syncSettings
  }
}

// azd writes these into the environment (.azure/<env>/.env); the postprovision hook reads them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_KEY_VAULT_NAME string = vault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output SYNC_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output SYNC_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output SYNC_GRAPH_BASE_URL string = graphBaseUrl
output SYNC_GRAPH_IDENTITY string = useClientSecret ? 'appRegistration' : 'managedIdentity'

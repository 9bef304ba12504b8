// The Flex Consumption plan and the function app, its settings and its locked-down publishing.
param name string
param planName string
param location string
param tags object
param identityId string
param identityClientId string
@description('The storage account\'s own blob and queue endpoints (primaryEndpoints), for host storage in any cloud.')
param blobEndpoint string
param queueEndpoint string
param deploymentContainerUrl string
param appInsightsConnectionString string

@description('The sync\'s own app settings (secrets as Key Vault references).')
param syncSettings object

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  // checkov:skip=CKV_AZURE_225:Zone redundancy is not offered for Flex Consumption in every region; a missed run is caught up by the next one
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true } // Linux
}

// API 2024-04-01: functionAppConfig exists since 2023-12-01; the Verified Modules use newer versions,
// but nothing set here needs one.
resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222:The operator's HTTP trigger is reached over the internet and needs a function key; private endpoints need a VNet
  // checkov:skip=CKV_AZURE_78:Flex Consumption refuses siteConfig.ftpsState (the site is not created); FTP publishing is off through the basicPublishingCredentialsPolicies ftp and scm below
  // checkov:skip=CKV_AZURE_17:Callers authenticate with function keys; the timer needs no inbound traffic
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero; there is no fixed worker count, and the timer is a singleton
  // checkov:skip=CKV_AZURE_213:Scale to zero leaves no instance to probe, and the app serves no traffic of its own to health-check
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'sync' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with the user-assigned identity, not a system-assigned one.
    keyVaultReferenceIdentity: identityId
    // Flex Consumption refuses most siteConfig properties (ftpsState among them: the site is not
    // created); tests/infra/test_flex.py holds this against Microsoft's list. alwaysOn: false is
    // what the official Flex templates set; FTP is off through basicPublishingCredentialsPolicies below.
    // minTlsVersion and http20Enabled are not on Flex's list: kept for the scanners (checkov).
    siteConfig: {
      alwaysOn: false
      minTlsVersion: '1.2'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identityId }
        }
      }
      scaleAndConcurrency: { maximumInstanceCount: 40, instanceMemoryMB: 2048 }
      runtime: { name: 'python', version: '3.11' }
    }
  }
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // This is the appsettings config; checkov applies its 'web' config checks to it.
  // checkov:skip=CKV_AZURE_63:IIS HTTP logging does not exist on Linux; function logs go to Application Insights
  // checkov:skip=CKV_AZURE_65:IIS detailed error pages do not exist on Linux; function logs go to Application Insights
  // checkov:skip=CKV_AZURE_66:IIS failed request tracing does not exist on Linux; function logs go to Application Insights
  // checkov:skip=CKV_AZURE_80:Not a .NET app (Python 3.11)
  // checkov:skip=CKV_AZURE_88:Flex Consumption deploys from a blob container and has no Azure Files content share
  // checkov:skip=CKV_AZURE_222:The operator's HTTP trigger is reached over the internet and needs a function key; private endpoints need a VNet
  // checkov:skip=CKV_AZURE_13:App Service Authentication would front the timer-driven app for nothing; the HTTP trigger needs a function key
  parent: site
  name: 'appsettings'
  properties: union(syncSettings, {
    // Identity-based host storage by the account's own endpoints: __accountName is documented for the
    // public cloud only. The sync's state storage and run queue read the same settings.
    AzureWebJobsStorage__blobServiceUri: blobEndpoint
    AzureWebJobsStorage__queueServiceUri: queueEndpoint
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  })
}

// No FTP and no basic-auth publishing: azd deploys with an Entra token.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

output name string = site.name

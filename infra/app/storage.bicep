// Host storage (AzureWebJobsStorage, identity-based), the deployment package container and the
// container of the sync's run lock, last report and delta state. Shared keys are off.
param name string
param location string
param tags object

var deploymentContainerName = 'app-package'
var stateContainerName = 'entra-litellm-sync' // sync_core.state.blob.DEFAULT_CONTAINER

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:Flex Consumption without VNet integration reaches it from shared outbound addresses; every access needs an Entra token (shared keys are off)
  // checkov:skip=CKV_AZURE_59:Flex Consumption without VNet integration reaches it from shared outbound addresses; every access needs an Entra token (shared keys are off)
  // checkov:skip=CKV_AZURE_206:LRS is enough: the package is redeployed by azd, a lost lock or report is recreated, lost delta links mean one full read
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 7 }
    containerDeleteRetentionPolicy: { enabled: true, days: 7 }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: deploymentContainerName
  properties: { publicAccess: 'None' }
}

resource stateContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: stateContainerName
  properties: { publicAccess: 'None' }
}

output name string = account.name
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainer.name}'

// Host storage (AzureWebJobsStorage, identity-based), the deployment package container, the
// container of the sync's run lock, last report and delta state, and the queue that hands HTTP-started
// runs to a queue-triggered function. Shared keys are off.
param name string
param location string
param tags object

var deploymentContainerName = 'app-package'
var stateContainerName = 'entra-litellm-sync' // sync_core.state.blob.DEFAULT_CONTAINER
var runQueueName = 'sync-runs' // sync_core.state.run_queue.RUN_QUEUE

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

// Created here, with the poison queue the host moves a message to after its last failed delivery,
// so that the identity needs no right to create queues.
resource queues 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource runQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queues
  name: runQueueName
}

resource runPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queues
  name: '${runQueueName}-poison'
}

output name string = account.name
// The account's own endpoints, right for whichever cloud it is in (never a hard-coded suffix).
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainer.name}'

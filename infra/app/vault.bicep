// The vault holding the sync's secrets. The secure parameters go into secrets and nowhere else.
param name string
param location string
param tags object

@secure()
param litellmMasterKey string

@secure()
param entraClientSecret string

@description('Purge protection on (a deleted vault and its name are kept 90 days) or left off (dev environments).')
param enablePurgeProtection bool

var masterKeySecretName = 'litellm-master-key'
var clientSecretName = 'entra-client-secret'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109:The platform resolves Key Vault references from the app's shared outbound addresses (no VNet); reads need the Key Vault Secrets User role
  // checkov:skip=CKV_AZURE_42:Soft delete is always on; purge protection is on by default (parameter enablePurgeProtection), off only for a throw-away dev environment
  // checkov:skip=CKV_AZURE_110:Purge protection is on by default (parameter enablePurgeProtection); only a throw-away dev environment turns it off, to reuse its name
  // checkov:skip=CKV_AZURE_189:The platform resolves Key Vault references from the app's shared outbound addresses (no VNet); reads need the Key Vault Secrets User role
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // Purge protection: a deleted vault (and its name) is kept for the retention period, whatever happens.
    // Key Vault refuses `false` ("cannot be disabled once enabled"): left out, it stays off.
    enablePurgeProtection: enablePurgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource masterKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:LiteLLM master keys do not expire; an expiry date would make the platform stop resolving the reference and every run fail; rotate the key in LiteLLM and write a new version instead
  parent: vault
  name: masterKeySecretName
  properties: {
    value: litellmMasterKey
    contentType: 'LiteLLM proxy admin key'
  }
}

resource clientSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(entraClientSecret)) {
  // checkov:skip=CKV_AZURE_41:The client secret expires in Entra, where it is rotated; a second expiry here would only stop the reference resolving; write the new secret as a new version
  // checkov:skip=CKV_AZURE_114:contentType is set below; checkov does not look inside a conditional resource's body
  parent: vault
  name: clientSecretName
  properties: {
    value: entraClientSecret
    contentType: 'Entra app registration client secret'
  }
}

output name string = vault.name
output litellmMasterKeyUri string = masterKey.properties.secretUri
// Built from the vault URI (ends with '/') so that no output depends on a conditional resource.
output entraClientSecretUri string = '${vault.properties.vaultUri}secrets/${clientSecretName}'

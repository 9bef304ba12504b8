// Logs, telemetry (Entra-only ingestion), and the alert on a failed scheduled run.
param resourceToken string
param location string
param tags object

@description('Where the alert is mailed; empty: no action group.')
param alertEmail string

// The function app registers the timer under this name (function_app.py); a failed invocation
// is a run that raised: an error, a run left incomplete, or the circuit breaker holding removals.
var timerFunctionName = 'sync_timer'
var failedRunsQuery = 'requests | where operation_Name == "${timerFunctionName}" and success == false'

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-sync-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-sync-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

resource mail 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: 'ag-sync-${resourceToken}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'entrasync'
    enabled: true
    emailReceivers: [
      { name: 'operator', emailAddress: alertEmail, useCommonAlertSchema: true }
    ]
  }
}

resource runFailed 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-sync-failed-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'entra-litellm-sync: a scheduled sync run failed'
    description: 'The sync_timer invocation failed: see the run report (GET /api/sync/status) and the function logs.'
    severity: 1
    enabled: true
    scopes: [appInsights.id]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: failedRunsQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: empty(alertEmail) ? [] : [mail.id]
    }
  }
}

output appInsightsName string = appInsights.name
output appInsightsConnectionString string = appInsights.properties.ConnectionString

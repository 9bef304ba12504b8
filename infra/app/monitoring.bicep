// Logs, telemetry (Entra-only ingestion), and two alerts on one action group: a scheduled run failed,
// and no scheduled run succeeded for a while.
param resourceToken string
param location string
param tags object

@description('Where both alerts are mailed; empty: no action group.')
param alertEmail string

@description('Hours without a successful scheduled run before the "no successful run" alert fires.')
param missedRunAlertHours int

@description('When this deployment ran (only a parameter default may call utcNow()): the grace period before the first run.')
param deployedAt string = utcNow()

// The function app registers the timer under this name (function_app.py); a failed invocation
// is a run that raised: an error, a run left incomplete, or the circuit breaker holding removals.
var timerFunctionName = 'sync_timer'
var failedRunsQuery = 'requests | where operation_Name == "${timerFunctionName}" and success == false'
// A rule fires only on rows its query returns: a run that never happens (a broken deploy, a failed
// indexing, a stopped app, a schedule the host rejects) fails nothing, so it needs a rule of its own
// that counts successes. The print row keeps it quiet during the first hours after a deployment.
var successfulRunsQuery = 'requests | where operation_Name == "${timerFunctionName}" and success == true | union (print deployedAt = todatetime("${deployedAt}") | where deployedAt > ago(${missedRunAlertHours}h))'

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

resource noSuccessfulRun 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-sync-missing-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'entra-litellm-sync: no successful scheduled run'
    description: 'sync_timer has not succeeded for ${missedRunAlertHours} hours: check that the app runs (Functions in the portal), SYNC_SCHEDULE, the last deployment, and GET /api/sync/status.'
    severity: 1
    enabled: true
    scopes: [appInsights.id]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    // The query reads the whole span; the window only sets how often a new row is counted.
    overrideQueryTimeRange: 'PT${missedRunAlertHours}H'
    criteria: {
      allOf: [
        {
          query: successfulRunsQuery
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: true // fires once, resolves by itself when runs succeed again
    actions: {
      actionGroups: empty(alertEmail) ? [] : [mail.id]
    }
  }
}

output appInsightsName string = appInsights.name
output appInsightsConnectionString string = appInsights.properties.ConnectionString

# Alarms (notifying alarm_sns_topic_arn when it is set) and a dashboard of the reaper's EMF metrics
# (namespace JitAccess, dimension FunctionName; see crates/reaper/src/metrics.rs).

locals {
  # create_alarms, not the topic ARN, decides whether alarms exist: the ARN is often unknown until apply
  # (a topic created in the same run), and count cannot depend on it.
  alarms_enabled = var.create_alarms
  alarm_actions  = var.alarm_sns_topic_arn == null ? [] : [var.alarm_sns_topic_arn]
  emf_namespace  = "JitAccess"

  # name suffix => JitAccess metric that must stay at 0
  reaper_metric_alarms = {
    "revoke-failed" = {
      metric      = "RevokeFailed"
      description = "The reaper failed to revoke at least one expired or abandoned grant, or to drop an orphan user (see the reaper's logs and the grant's last_error)."
    }
    "overdue" = {
      metric      = "Overdue"
      description = "A grant the reaper failed or deferred is more than 15 minutes past its expiry (grantctl overdue lists every such grant)."
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "reaper_errors" {
  count               = local.alarms_enabled ? 1 : 0
  alarm_name          = "${local.reaper_name}-errors"
  alarm_description   = "The reaper Lambda returned a function error (database, DynamoDB, S3 or config fault)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.reaper.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "reaper_metric" {
  for_each            = local.alarms_enabled ? local.reaper_metric_alarms : {}
  alarm_name          = "${local.reaper_name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = local.emf_namespace
  metric_name         = each.value.metric
  dimensions          = { FunctionName = aws_lambda_function.reaper.function_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

# Missing data is breaching: a reaper that is never invoked reports nothing at all.
resource "aws_cloudwatch_metric_alarm" "reaper_not_running" {
  count               = local.alarms_enabled ? 1 : 0
  alarm_name          = "${local.reaper_name}-not-running"
  alarm_description   = "The reaper did not run in 15 minutes (schedule disabled or deleted, throttled, or permission lost)."
  namespace           = "AWS/Lambda"
  metric_name         = "Invocations"
  dimensions          = { FunctionName = aws_lambda_function.reaper.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "provisioner_errors" {
  count               = local.alarms_enabled ? 1 : 0
  alarm_name          = "${local.provisioner_name}-errors"
  alarm_description   = "The provisioner returned function errors (transient faults: database unreachable, DynamoDB throttled) 3 times in 5 minutes."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.provisioner.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_dashboard" "reaper" {
  count          = var.create_dashboard ? 1 : 0
  dashboard_name = "${var.name_prefix}-reaper"

  dashboard_body = jsonencode({
    widgets = [
      {
        type   = "metric"
        x      = 0
        y      = 0
        width  = 12
        height = 6
        properties = {
          title   = "Revocations"
          region  = local.region
          stat    = "Sum"
          period  = 300
          view    = "timeSeries"
          stacked = false
          metrics = [
            [local.emf_namespace, "Revoked", "FunctionName", local.reaper_name],
            [local.emf_namespace, "RevokeFailed", "FunctionName", local.reaper_name],
            [local.emf_namespace, "OrphansDropped", "FunctionName", local.reaper_name],
            [local.emf_namespace, "Deferred", "FunctionName", local.reaper_name],
          ]
        }
      },
      {
        type   = "metric"
        x      = 12
        y      = 0
        width  = 12
        height = 6
        properties = {
          title   = "Overdue grants"
          region  = local.region
          stat    = "Maximum"
          period  = 300
          view    = "timeSeries"
          stacked = false
          metrics = [
            [local.emf_namespace, "Overdue", "FunctionName", local.reaper_name],
          ]
        }
      },
      {
        type   = "metric"
        x      = 0
        y      = 6
        width  = 12
        height = 6
        properties = {
          title   = "Pass duration (ms)"
          region  = local.region
          period  = 300
          view    = "timeSeries"
          stacked = false
          metrics = [
            [local.emf_namespace, "DurationMs", "FunctionName", local.reaper_name, { stat = "Maximum" }],
            [local.emf_namespace, "DurationMs", "FunctionName", local.reaper_name, { stat = "Average" }],
          ]
        }
      },
      {
        type   = "metric"
        x      = 12
        y      = 6
        width  = 12
        height = 6
        properties = {
          title   = "Reaper Lambda"
          region  = local.region
          stat    = "Sum"
          period  = 300
          view    = "timeSeries"
          stacked = false
          metrics = [
            ["AWS/Lambda", "Invocations", "FunctionName", local.reaper_name],
            ["AWS/Lambda", "Errors", "FunctionName", local.reaper_name],
            ["AWS/Lambda", "Throttles", "FunctionName", local.reaper_name],
          ]
        }
      },
    ]
  })
}

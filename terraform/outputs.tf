output "provisioner_function_name" {
  description = "Name of the provisioner Lambda (what callers invoke)."
  value       = aws_lambda_function.provisioner.function_name
}

output "provisioner_function_arn" {
  description = "ARN of the provisioner Lambda."
  value       = aws_lambda_function.provisioner.arn
}

output "reaper_function_name" {
  description = "Name of the reaper Lambda."
  value       = aws_lambda_function.reaper.function_name
}

output "reaper_function_arn" {
  description = "ARN of the reaper Lambda."
  value       = aws_lambda_function.reaper.arn
}

output "provisioner_role_arn" {
  description = "Execution role of the provisioner (e.g. for Aurora security group or KMS key policies)."
  value       = aws_iam_role.provisioner.arn
}

output "reaper_role_arn" {
  description = "Execution role of the reaper."
  value       = aws_iam_role.reaper.arn
}

output "grants_table_name" {
  description = "Name of the grants table (GRANTS_TABLE)."
  value       = aws_dynamodb_table.grants.name
}

output "grants_table_arn" {
  description = "ARN of the grants table."
  value       = aws_dynamodb_table.grants.arn
}

output "config_bucket" {
  description = "Config bucket (CONFIG_BUCKET): upload admin credential objects here, under secrets/."
  value       = local.bucket_name
}

output "config_bucket_policy_json" {
  description = "The config bucket's policy: TLS only, and reading secrets/* denied to all but the Lambda roles and secret_readers. Attached to a bucket the module creates; with existing_config_bucket, merge these statements into that bucket's policy yourself (e.g. source_policy_documents of an aws_iam_policy_document), because a bucket has one policy and the module will not overwrite yours."
  value       = data.aws_iam_policy_document.config_bucket.json
}

output "config_key" {
  description = "Key of the config document (CONFIG_KEY)."
  value       = var.config_key
}

output "schedule_rule_name" {
  description = "Name of the reaper's EventBridge rule."
  value       = aws_cloudwatch_event_rule.reaper.name
}

output "schedule_expression" {
  description = "The reaper's schedule, from eventbridge/reaper-schedule.json."
  value       = aws_cloudwatch_event_rule.reaper.schedule_expression
}

output "invoke_provisioner_policy_json" {
  description = "IAM policy document allowing lambda:InvokeFunction on the provisioner, for callers' roles."
  value       = data.aws_iam_policy_document.invoke_provisioner.json
}

output "invoke_provisioner_policy_arn" {
  description = "ARN of the managed policy allowing callers to invoke the provisioner (null if create_invoke_policy is false)."
  value       = one(aws_iam_policy.invoke_provisioner[*].arn)
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the reaper's metrics (null if create_dashboard is false)."
  value       = one(aws_cloudwatch_dashboard.reaper[*].dashboard_name)
}

output "event_bus_arn" {
  description = "The bus the lifecycle events (source jit-access) are put on; null when lifecycle_events is off."
  value       = local.events_enabled ? local.event_bus_arn : null
}

output "grant_events_pipe_names" {
  description = "The EventBridge Pipes from the grants table's stream to the bus, one per detail-type."
  value       = [for p in aws_pipes_pipe.grant_events : p.name]
}

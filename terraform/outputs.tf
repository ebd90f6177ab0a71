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

output "delivered_credentials_reader_policy_json" {
  description = <<-EOT
    A policy to attach to the roles people assume, letting each read only the secrets and parameters delivered
    for them (credential_delivery): the caller's aws:userid must end in ":<jit:requester tag>". Pitfalls:
    - aws:userid is "<role id>:<session name>" for an assumed role, so this works only where the session name is
      the requester as the provisioner was told it, e.g. IAM Identity Center (session name = the user's name or
      e-mail) or a role assumed with --role-session-name set to it. For an IAM user aws:userid is an opaque ID
      (AIDA...) and never matches; requesters that are not such session names never match either.
    - Requesters are compared case-insensitively by the provisioner but tags are compared exactly here: send the
      requester spelt as the session name is.
    - The resource tag is used as a policy variable; check it with the IAM policy simulator in your account
      before relying on it. A statement that does not match grants nothing (it fails closed).
    - SSM parameter names cannot contain "@": names carry the grant id, never the requester, and
      secret_name_prefix must not contain "@" either. SecureString values under the default aws/ssm key need no
      kms permission; with a customer managed key, add kms:Decrypt.
  EOT
  value       = data.aws_iam_policy_document.delivered_credentials_reader.json
}

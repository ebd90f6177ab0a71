# Both Lambdas: Rust binaries named bootstrap on the provided.al2023 runtime, built by scripts/package.sh.

resource "aws_cloudwatch_log_group" "provisioner" {
  name              = "/aws/lambda/${local.provisioner_name}"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_cloudwatch_log_group" "reaper" {
  name              = "/aws/lambda/${local.reaper_name}"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_lambda_function" "provisioner" {
  function_name                  = local.provisioner_name
  description                    = "jit-access: creates time-limited Aurora PostgreSQL or MySQL access (invoke with a grant request)"
  role                           = aws_iam_role.provisioner.arn
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = [var.architecture]
  filename                       = var.provisioner_zip
  source_code_hash               = filebase64sha256(var.provisioner_zip)
  timeout                        = var.provisioner_timeout
  memory_size                    = var.provisioner_memory
  reserved_concurrent_executions = var.provisioner_reserved_concurrency

  environment {
    variables = local.environment
  }

  dynamic "vpc_config" {
    for_each = local.vpc_enabled ? [1] : []
    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.provisioner.name
    application_log_level = var.log_level
    system_log_level      = "INFO"
  }

  tags = local.tags

  depends_on = [
    aws_iam_role_policy.provisioner,
    aws_iam_role_policy_attachment.provisioner_vpc,
  ]
}

resource "aws_lambda_function" "reaper" {
  function_name                  = local.reaper_name
  description                    = "jit-access: revokes expired grants (run by EventBridge)"
  role                           = aws_iam_role.reaper.arn
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = [var.architecture]
  filename                       = var.reaper_zip
  source_code_hash               = filebase64sha256(var.reaper_zip)
  timeout                        = var.reaper_timeout
  memory_size                    = var.reaper_memory
  reserved_concurrent_executions = var.reaper_reserved_concurrency

  environment {
    variables = local.environment
  }

  dynamic "vpc_config" {
    for_each = local.vpc_enabled ? [1] : []
    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.reaper.name
    application_log_level = var.log_level
    system_log_level      = "INFO"
  }

  tags = local.tags

  depends_on = [
    aws_iam_role_policy.reaper,
    aws_iam_role_policy_attachment.reaper_vpc,
  ]
}

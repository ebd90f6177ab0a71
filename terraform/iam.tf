# One role per function, least privilege. Neither function may Scan or DeleteItem: the reaper reads the
# sparse by-expiry index, and grants are never deleted (DynamoDB TTL purges terminal ones).

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

locals {
  table_arn = aws_dynamodb_table.grants.arn

  # What the Lambdas may read from the config bucket: the config document and the admin credential objects
  # and CA bundles it names (under secrets/, which the bucket policy protects, and by convention tls/).
  readable_object_arns = concat(
    ["${local.bucket_arn}/${var.config_key}"],
    [for pattern in var.readable_object_patterns : "${local.bucket_arn}/${pattern}"],
  )

  kms_key_arns = var.kms_key_arn == null ? [] : [var.kms_key_arn]

  # Reader discovery for databases configured with cluster_identifier: DescribeDBClusters on exactly those
  # clusters; DescribeDBInstances (filtered by cluster) is authorised against db:* of the account and region.
  rds_region_prefix = "arn:${local.partition}:rds:${data.aws_region.current.name}:${local.account_id}"
  rds_cluster_arns  = [for id in var.aurora_cluster_identifiers : "${local.rds_region_prefix}:cluster:${id}"]
}

# --- provisioner -----------------------------------------------------------------------------------------

resource "aws_iam_role" "provisioner" {
  name               = "${local.provisioner_name}-role"
  description        = "jit-access provisioner Lambda"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "provisioner" {
  # Admin credentials other than S3, IAM tokens, credential delivery (credentials.tf).
  source_policy_documents = [data.aws_iam_policy_document.credentials_provisioner.json]

  statement {
    sid       = "GrantsTableItems"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [local.table_arn]
  }

  # Only the expiry index: the live grants of a user, when granting or revoking an escalation.
  statement {
    sid       = "ExpiryIndexQuery"
    actions   = ["dynamodb:Query"]
    resources = ["${local.table_arn}/index/by-expiry"]
  }

  statement {
    sid       = "ReadConfigAndAdminCredentials"
    actions   = ["s3:GetObject"]
    resources = local.readable_object_arns
  }

  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.provisioner.arn}:*"]
  }

  dynamic "statement" {
    for_each = length(var.aurora_cluster_identifiers) == 0 ? [] : [1]
    content {
      sid       = "DescribeAuroraClusters"
      actions   = ["rds:DescribeDBClusters"]
      resources = local.rds_cluster_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.aurora_cluster_identifiers) == 0 ? [] : [1]
    content {
      sid       = "DescribeAuroraInstances"
      actions   = ["rds:DescribeDBInstances"]
      resources = ["${local.rds_region_prefix}:db:*"]
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [1]
    content {
      sid       = "DecryptConfigObjects"
      actions   = ["kms:Decrypt"]
      resources = local.kms_key_arns
    }
  }
}

resource "aws_iam_role_policy" "provisioner" {
  name   = "${local.provisioner_name}-policy"
  role   = aws_iam_role.provisioner.id
  policy = data.aws_iam_policy_document.provisioner.json
}

resource "aws_iam_role_policy_attachment" "provisioner_vpc" {
  count      = local.vpc_enabled ? 1 : 0
  role       = aws_iam_role.provisioner.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

# --- reaper ----------------------------------------------------------------------------------------------

resource "aws_iam_role" "reaper" {
  name               = "${local.reaper_name}-role"
  description        = "jit-access reaper Lambda"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "reaper" {
  # Admin credentials other than S3, deleting delivered credentials (credentials.tf).
  source_policy_documents = [data.aws_iam_policy_document.credentials_common.json]

  # Claims and outcomes (conditional PutItem); strongly consistent reads (GetItem) of the grants that may keep
  # an escalation's role, which the eventually consistent index cannot give.
  statement {
    sid       = "GrantsTableItems"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [local.table_arn]
  }

  # The reaper reads only the sparse expiry index.
  statement {
    sid       = "ExpiryIndexQuery"
    actions   = ["dynamodb:Query"]
    resources = ["${local.table_arn}/index/by-expiry"]
  }

  statement {
    sid       = "ReadConfigAndAdminCredentials"
    actions   = ["s3:GetObject"]
    resources = local.readable_object_arns
  }

  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.reaper.arn}:*"]
  }

  dynamic "statement" {
    for_each = length(var.aurora_cluster_identifiers) == 0 ? [] : [1]
    content {
      sid       = "DescribeAuroraClusters"
      actions   = ["rds:DescribeDBClusters"]
      resources = local.rds_cluster_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.aurora_cluster_identifiers) == 0 ? [] : [1]
    content {
      sid       = "DescribeAuroraInstances"
      actions   = ["rds:DescribeDBInstances"]
      resources = ["${local.rds_region_prefix}:db:*"]
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [1]
    content {
      sid       = "DecryptConfigObjects"
      actions   = ["kms:Decrypt"]
      resources = local.kms_key_arns
    }
  }
}

resource "aws_iam_role_policy" "reaper" {
  name   = "${local.reaper_name}-policy"
  role   = aws_iam_role.reaper.id
  policy = data.aws_iam_policy_document.reaper.json
}

resource "aws_iam_role_policy_attachment" "reaper_vpc" {
  count      = local.vpc_enabled ? 1 : 0
  role       = aws_iam_role.reaper.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

# --- callers ---------------------------------------------------------------------------------------------

# For other services (chat bot, approval tool, Terraform runners): attach to their roles to invoke the
# provisioner. Only the provisioner: nobody needs to invoke the reaper but its schedule.
data "aws_iam_policy_document" "invoke_provisioner" {
  statement {
    sid       = "InvokeJitProvisioner"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.provisioner.arn]
  }
}

resource "aws_iam_policy" "invoke_provisioner" {
  count       = var.create_invoke_policy ? 1 : 0
  name        = "${local.provisioner_name}-invoke"
  description = "Invoke the jit-access provisioner Lambda"
  policy      = data.aws_iam_policy_document.invoke_provisioner.json
  tags        = local.tags
}

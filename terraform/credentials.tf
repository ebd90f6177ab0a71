# Issue 12: what the Lambdas need for the admin credential modes (admin_secret_arn, admin_iam_user), for
# temporary users with `auth: iam`, and for credential delivery (Secrets Manager, SSM). Each statement exists only
# when a variable asks for it, so a deployment that uses none of this gets no statement at all. The two role
# policies in iam.tf include these documents.

locals {
  delivers_secrets    = contains(var.credential_delivery, "secrets_manager")
  delivers_parameters = contains(var.credential_delivery, "ssm")

  # Delivered secrets are named <prefix>/<database>/<grant_id>; Secrets Manager appends a random suffix to the ARN.
  delivered_secret_arns    = "arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:${var.secret_name_prefix}/*"
  delivered_parameter_arns = "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter/${var.secret_name_prefix}/*"
}

# Both Lambdas: connect as the admin, and delete delivered credentials when a grant ends (revoke, expiry,
# failed or abandoned provisioning).
data "aws_iam_policy_document" "credentials_common" {
  dynamic "statement" {
    for_each = length(var.admin_secret_arns) > 0 ? [1] : []
    content {
      sid       = "ReadAdminSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = var.admin_secret_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.admin_iam_db_users) > 0 ? [1] : []
    content {
      sid       = "ConnectAsAdmin"
      actions   = ["rds-db:connect"]
      resources = var.admin_iam_db_users
    }
  }

  dynamic "statement" {
    for_each = local.delivers_secrets ? [1] : []
    content {
      sid       = "DeleteDeliveredSecrets"
      actions   = ["secretsmanager:DeleteSecret"]
      resources = [local.delivered_secret_arns]
    }
  }

  dynamic "statement" {
    for_each = local.delivers_parameters ? [1] : []
    content {
      sid       = "DeleteDeliveredParameters"
      actions   = ["ssm:DeleteParameter"]
      resources = [local.delivered_parameter_arns]
    }
  }
}

# The provisioner only: sign temporary users' IAM tokens (a token works only if its signer may connect, so
# nobody else can mint one), and write delivered credentials, tagged with the requester from the start.
data "aws_iam_policy_document" "credentials_provisioner" {
  source_policy_documents = [data.aws_iam_policy_document.credentials_common.json]

  dynamic "statement" {
    for_each = length(var.iam_auth_db_users) > 0 ? [1] : []
    content {
      sid       = "ConnectAsTemporaryUsers"
      actions   = ["rds-db:connect"]
      resources = var.iam_auth_db_users
    }
  }

  dynamic "statement" {
    for_each = local.delivers_secrets ? [1] : []
    content {
      sid       = "CreateTaggedSecrets"
      actions   = ["secretsmanager:CreateSecret", "secretsmanager:TagResource"]
      resources = [local.delivered_secret_arns]

      condition {
        test     = "Null"
        variable = "aws:RequestTag/jit:requester"
        values   = ["false"]
      }
      condition {
        test     = "Null"
        variable = "aws:RequestTag/jit:grant_id"
        values   = ["false"]
      }
    }
  }

  dynamic "statement" {
    for_each = local.delivers_secrets ? [1] : []
    content {
      sid       = "PutSecretValues"
      actions   = ["secretsmanager:PutSecretValue"]
      resources = [local.delivered_secret_arns]
    }
  }

  # PutParameter both creates and (for a retried grant) overwrites, and an overwrite carries no tags: the tag
  # requirement is on AddTagsToResource, which a create with tags needs.
  dynamic "statement" {
    for_each = local.delivers_parameters ? [1] : []
    content {
      sid       = "PutParameters"
      actions   = ["ssm:PutParameter"]
      resources = [local.delivered_parameter_arns]
    }
  }

  dynamic "statement" {
    for_each = local.delivers_parameters ? [1] : []
    content {
      sid       = "TagParametersOnCreate"
      actions   = ["ssm:AddTagsToResource"]
      resources = [local.delivered_parameter_arns]

      condition {
        test     = "Null"
        variable = "aws:RequestTag/jit:requester"
        values   = ["false"]
      }
    }
  }
}

# For people, not the Lambdas: attach to the roles your users assume to let each read only the credentials
# delivered for them. See delivered_credentials_reader_policy_json in outputs.tf for the pitfalls.
data "aws_iam_policy_document" "delivered_credentials_reader" {
  statement {
    sid       = "ReadOwnDeliveredSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [local.delivered_secret_arns]

    # aws:userid of an assumed-role session is "<role id>:<session name>".
    condition {
      test     = "StringLike"
      variable = "aws:userid"
      values   = ["*:$${secretsmanager:ResourceTag/jit:requester}"]
    }
  }

  statement {
    sid       = "ReadOwnDeliveredParameters"
    actions   = ["ssm:GetParameter"]
    resources = [local.delivered_parameter_arns]

    condition {
      test     = "StringLike"
      variable = "aws:userid"
      values   = ["*:$${ssm:resourceTag/jit:requester}"]
    }
  }
}

# The config bucket: the config document (CONFIG_KEY) and the admin credential objects / CA bundles it names.
#
# Terraform manages the bucket (unless existing_config_bucket is given) and, when config_file is set, the
# config document. It never manages the admin credential objects (admin_secret_key, which must be under
# secrets/): they would otherwise sit in the Terraform state in plain text. Upload them out of band, e.g.
#   aws s3 cp orders-admin.json s3://<bucket>/secrets/orders-admin.json --sse AES256
#
# secrets/ is protected: the bucket policy denies reading those objects (and their old versions) to every
# principal but the two Lambda roles and var.secret_readers, and old versions expire after
# var.secret_noncurrent_version_days. An admin credential object anywhere else has neither protection.

locals {
  secrets_prefix = "secrets/"

  # Compared with aws:PrincipalArn: for a Lambda's (or anyone's) assumed-role session that key is the role's
  # ARN, arn:<partition>:iam::<account>:role/<path><name>, not the session's sts ARN. Role ARNs as strings,
  # so a role deleted and recreated under the same name still matches (a Principal element would not).
  secret_reader_arns = distinct(concat([aws_iam_role.provisioner.arn, aws_iam_role.reaper.arn], var.secret_readers))
}

resource "aws_s3_bucket" "config" {
  count         = local.create_bucket ? 1 : 0
  bucket        = local.bucket_name
  force_destroy = var.config_bucket_force_destroy
  tags          = local.tags
}

resource "aws_s3_bucket_ownership_controls" "config" {
  count  = local.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.config[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "config" {
  count                   = local.create_bucket ? 1 : 0
  bucket                  = aws_s3_bucket.config[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "config" {
  count  = local.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.config[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_versioning" "config" {
  count  = local.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.config[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

data "aws_iam_policy_document" "config_bucket" {
  # Anyone with a broad s3:GetObject in IAM (e.g. the ReadOnlyAccess managed policy, s3:Get*) could
  # otherwise read the admin passwords. An explicit Deny wins over any Allow. Denied: GetObject (also what
  # HeadObject, SelectObjectContent and CopyObject/UploadPartCopy from these keys are authorized as),
  # GetObjectVersion (old versions, i.e. old passwords, by versionId) and the torrent reads (a torrent file
  # holds SHA-1 hashes of the content; s3:Get* includes them). Not listed: GetObjectAttributes and
  # GetObjectVersionAttributes, which S3 authorizes only together with GetObject/GetObjectVersion, and
  # ListBucket, which shows key names, sizes and ETags but no content.
  statement {
    sid    = "DenySecretReadsExceptReaders"
    effect = "Deny"
    actions = [
      "s3:GetObject",
      "s3:GetObjectVersion",
      "s3:GetObjectTorrent",
      "s3:GetObjectVersionTorrent",
    ]
    resources = ["${local.bucket_arn}/${local.secrets_prefix}*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    # ArnNotLike: secret_readers may hold wildcards. A request without the key (an AWS service principal)
    # is denied too.
    condition {
      test     = "ArnNotLike"
      variable = "aws:PrincipalArn"
      values   = local.secret_reader_arns
    }
  }

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      local.bucket_arn,
      "${local.bucket_arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "config" {
  count  = local.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.config[0].id
  policy = data.aws_iam_policy_document.config_bucket.json

  # After the config upload: the policy does not block it on AWS (Terraform uses TLS), but moto applies the
  # Deny without its condition, and the order costs nothing.
  depends_on = [aws_s3_bucket_public_access_block.config, aws_s3_object.config]
}

# Old versions of the admin credential objects (replaced passwords) are deleted after
# secret_noncurrent_version_days; the current version is never expired. Only under secrets/: the config
# document's versions stay, for audit and rollback.
resource "aws_s3_bucket_lifecycle_configuration" "config" {
  count  = local.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.config[0].id

  rule {
    id     = "expire-old-secret-versions"
    status = "Enabled"

    filter {
      prefix = local.secrets_prefix
    }

    noncurrent_version_expiration {
      noncurrent_days = var.secret_noncurrent_version_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.config]
}

resource "aws_s3_object" "config" {
  count        = var.config_file == null ? 0 : 1
  bucket       = local.bucket_name
  key          = var.config_key
  source       = var.config_file
  source_hash  = filemd5(var.config_file)
  content_type = "application/json"

  depends_on = [
    aws_s3_bucket.config,
    aws_s3_bucket_public_access_block.config,
    aws_s3_bucket_server_side_encryption_configuration.config,
    aws_s3_bucket_versioning.config,
  ]
}

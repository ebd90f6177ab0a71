# The config bucket: the config document (CONFIG_KEY) and the admin credential objects / CA bundles it names.
#
# Terraform manages the bucket (unless existing_config_bucket is given) and, when config_file is set, the
# config document. It never manages the admin credential objects (admin_secret_key, by convention under
# secrets/): they would otherwise sit in the Terraform state in plain text. Upload them out of band, e.g.
#   aws s3 cp orders-admin.json s3://<bucket>/secrets/orders-admin.json --sse AES256

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

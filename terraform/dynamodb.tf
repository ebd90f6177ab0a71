# The grants table, exactly as SPEC.md describes it. One item per grant; the audit trail.

resource "aws_dynamodb_table" "grants" {
  name                        = "${var.name_prefix}-grants"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "grant_id"
  deletion_protection_enabled = var.table_deletion_protection

  attribute {
    name = "grant_id"
    type = "S"
  }
  attribute {
    name = "expiry_shard"
    type = "S"
  }
  attribute {
    name = "expires_at_epoch"
    type = "N"
  }
  attribute {
    name = "requester"
    type = "S"
  }
  attribute {
    name = "created_at"
    type = "S"
  }

  # Sparse: only pending/active grants carry expiry_shard, so the reaper reads what is live, never the history.
  global_secondary_index {
    name            = "by-expiry"
    hash_key        = "expiry_shard"
    range_key       = "expires_at_epoch"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = "by-requester"
    hash_key        = "requester"
    range_key       = "created_at"
    projection_type = "ALL"
  }

  # Set only on terminal states (now + RETENTION_DAYS).
  ttl {
    attribute_name = "purge_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  tags = local.tags
}

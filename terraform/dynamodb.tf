# The grants table as SPEC.md describes it, plus one index: by-database (a deviation, see the README's contract
# notes). One item per grant; the audit trail.

resource "aws_dynamodb_table" "grants" {
  name                        = "${var.name_prefix}-grants"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "grant_id"
  deletion_protection_enabled = var.table_deletion_protection
  # The lifecycle events' source (events.tf): both images, so a pipe's filter can tell a transition from a
  # lease write.
  stream_enabled   = var.lifecycle_events
  stream_view_type = var.lifecycle_events ? "NEW_AND_OLD_IMAGES" : null

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
  attribute {
    name = "database"
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

  # Not in the SPEC: a database's grants over a time range (the dashboard's timeline), the only way to answer it
  # without a Scan. Holds every row, so every write is written once more.
  global_secondary_index {
    name            = "by-database"
    hash_key        = "database"
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

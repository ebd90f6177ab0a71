# Lifecycle events (SPEC "Lifecycle events"): the grants table's stream feeds one EventBridge Pipe per
# detail-type; each pipe's filter pattern and input template are the data in eventbridge/lifecycle-pipes.json
# (the single source of truth, also read by the tests). No Lambda runs: an event exists only for a change the
# table committed, and a Lambda that dies after its write loses nothing.

locals {
  events_enabled = var.lifecycle_events
  pipes_doc      = jsondecode(file(coalesce(var.pipes_file, "${path.module}/../eventbridge/lifecycle-pipes.json")))
  pipes          = { for p in local.pipes_doc.pipes : p.name => p if local.events_enabled }
  create_bus     = local.events_enabled && var.event_bus_arn == null
  event_bus_arn  = local.create_bus ? aws_cloudwatch_event_bus.grants[0].arn : var.event_bus_arn
}

resource "aws_cloudwatch_event_bus" "grants" {
  count = local.create_bus ? 1 : 0
  name  = "${var.name_prefix}-grants"
  tags  = local.tags
}

data "aws_iam_policy_document" "pipes_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["pipes.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "pipes" {
  count              = local.events_enabled ? 1 : 0
  name               = "${var.name_prefix}-grant-events"
  assume_role_policy = data.aws_iam_policy_document.pipes_assume.json
  tags               = local.tags
}

# Read the table's stream, put events on the one bus: nothing else.
data "aws_iam_policy_document" "pipes" {
  count = local.events_enabled ? 1 : 0
  statement {
    sid       = "ReadGrantStream"
    actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
    resources = [aws_dynamodb_table.grants.stream_arn]
  }
  statement {
    sid       = "PutGrantEvents"
    actions   = ["events:PutEvents"]
    resources = [local.event_bus_arn]
  }
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "DecryptStream"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "pipes" {
  count  = local.events_enabled ? 1 : 0
  name   = "grant-events"
  role   = aws_iam_role.pipes[0].id
  policy = data.aws_iam_policy_document.pipes[0].json
}

resource "aws_pipes_pipe" "grant_events" {
  for_each = local.pipes
  name     = "${var.name_prefix}-${each.key}"
  role_arn = aws_iam_role.pipes[0].arn
  source   = aws_dynamodb_table.grants.stream_arn
  target   = local.event_bus_arn

  source_parameters {
    dynamodb_stream_parameters {
      starting_position = "TRIM_HORIZON"
      batch_size        = 10
      # A record that cannot be delivered is retried while the stream keeps it (24 h), never dropped silently.
      maximum_retry_attempts = -1
    }
    filter_criteria {
      filter {
        pattern = jsonencode(each.value.filter)
      }
    }
  }

  target_parameters {
    input_template = each.value.input_template
    eventbridge_event_bus_parameters {
      detail_type = each.value.detail_type
      source      = local.pipes_doc.source
    }
  }

  tags       = local.tags
  depends_on = [aws_iam_role_policy.pipes]
}

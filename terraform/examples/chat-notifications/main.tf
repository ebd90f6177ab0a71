# jit-access with its lifecycle events routed to people: a rule on the module's bus sends "Grant Expiring Soon"
# and "Grant Revoked" to an SNS topic (subscribe a chat bot's endpoint, AWS Chatbot, or an email to it).
# Patterns for other subscribers are in docs/reference.md ("Lifecycle events").

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "subnet_ids" {
  type = list(string)
}

variable "security_group_ids" {
  type = list(string)
}

module "jit_access" {
  source = "../.."

  name_prefix        = "jit-access"
  provisioner_zip    = "${path.root}/../../../target/lambda/provisioner/bootstrap.zip"
  reaper_zip         = "${path.root}/../../../target/lambda/reaper/bootstrap.zip"
  subnet_ids         = var.subnet_ids
  security_group_ids = var.security_group_ids
}

resource "aws_sns_topic" "grant_notices" {
  name = "jit-access-grant-notices"
}

resource "aws_cloudwatch_event_rule" "expiring_soon" {
  name           = "jit-access-expiring-soon"
  event_bus_name = module.jit_access.event_bus_arn
  event_pattern = jsonencode({
    source        = ["jit-access"]
    "detail-type" = ["Grant Expiring Soon", "Grant Revoked"]
  })
}

resource "aws_cloudwatch_event_target" "expiring_soon_to_sns" {
  rule           = aws_cloudwatch_event_rule.expiring_soon.name
  event_bus_name = module.jit_access.event_bus_arn
  arn            = aws_sns_topic.grant_notices.arn
  input_transformer {
    input_paths = {
      kind       = "$.detail-type"
      requester  = "$.detail.requester"
      database   = "$.detail.database"
      target     = "$.detail.target"
      expires_at = "$.detail.expires_at"
      event_id   = "$.detail.event_id"
    }
    input_template = "\"<kind>: <requester> on <database>/<target> (ends <expires_at>; event <event_id>)\""
  }
}

# EventBridge may publish to the topic, and only from this rule.
data "aws_iam_policy_document" "grant_notices" {
  statement {
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.grant_notices.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.expiring_soon.arn]
    }
  }
}

resource "aws_sns_topic_policy" "grant_notices" {
  arn    = aws_sns_topic.grant_notices.arn
  policy = data.aws_iam_policy_document.grant_notices.json
}

# The reaper's schedule, read from eventbridge/reaper-schedule.json (the single source of truth).

resource "aws_cloudwatch_event_rule" "reaper" {
  name                = "${var.name_prefix}-${local.schedule.name_suffix}"
  description         = local.schedule.description
  schedule_expression = local.schedule.schedule_expression
  state               = local.schedule.state
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "reaper" {
  rule      = aws_cloudwatch_event_rule.reaper.name
  target_id = "reaper"
  arn       = aws_lambda_function.reaper.arn
}

resource "aws_lambda_permission" "reaper_schedule" {
  statement_id  = "AllowEventBridgeSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.reaper.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.reaper.arn
}

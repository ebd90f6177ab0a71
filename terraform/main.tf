# jit-access: the provisioner and reaper Lambdas, the grants table, the config bucket, the reaper's schedule
# and its alarms. The files are split by service: dynamodb.tf, s3.tf, iam.tf, lambda.tf, schedule.tf,
# monitoring.tf.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  provisioner_name = "${var.name_prefix}-provisioner"
  reaper_name      = "${var.name_prefix}-reaper"

  create_bucket = var.existing_config_bucket == null
  bucket_name   = local.create_bucket ? coalesce(var.config_bucket_name, "${var.name_prefix}-config-${local.account_id}") : var.existing_config_bucket
  bucket_arn    = "arn:${local.partition}:s3:::${local.bucket_name}"

  vpc_enabled = length(var.subnet_ids) > 0

  # The schedule rule as data: eventbridge/reaper-schedule.json is the single source of truth.
  schedule = jsondecode(file(coalesce(var.schedule_file, "${path.module}/../eventbridge/reaper-schedule.json")))

  # SPEC: environment of both Lambdas.
  environment = merge(var.extra_environment, {
    GRANTS_TABLE          = aws_dynamodb_table.grants.name
    CONFIG_BUCKET         = local.bucket_name
    CONFIG_KEY            = var.config_key
    RETENTION_DAYS        = tostring(var.retention_days)
    PENDING_GRACE_SECONDS = tostring(var.pending_grace_seconds)
    SECRET_NAME_PREFIX    = var.secret_name_prefix
  })

  tags = merge({ "app" = "jit-access" }, var.tags)
}

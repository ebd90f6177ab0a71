# jit-access next to an existing VPC and Aurora cluster (PostgreSQL, or MySQL with "engine": "mysql" in the config).

variable "region" {
  description = "AWS region of the Aurora cluster."
  type        = string
  default     = "us-east-1"
}

variable "subnet_ids" {
  description = "Private subnets that can reach the Aurora cluster (and DynamoDB/S3 through VPC endpoints or NAT)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups for the Lambdas; the cluster's security group must allow them on 5432 (MySQL: 3306)."
  type        = list(string)
}

variable "architecture" {
  description = "What scripts/package.sh printed."
  type        = string
  default     = "x86_64"
}

variable "config_file" {
  description = "Config document to upload (SPEC.md: databases, targets). Null: upload it yourself."
  type        = string
  default     = null
}

variable "secret_readers" {
  description = "Break-glass and operator roles (those running `grantctl revoke`) allowed to read the admin secrets under secrets/ besides the Lambdas."
  type        = list(string)
  default     = []
}

variable "alarm_sns_topic_arn" {
  description = "SNS topic for the alarms (optional)."
  type        = string
  default     = null
}

module "jit_access" {
  source = "../.."

  name_prefix     = "jit-access"
  architecture    = var.architecture
  provisioner_zip = "${path.root}/../../../target/lambda/provisioner/bootstrap.zip"
  reaper_zip      = "${path.root}/../../../target/lambda/reaper/bootstrap.zip"

  subnet_ids         = var.subnet_ids
  security_group_ids = var.security_group_ids

  config_file         = var.config_file
  alarm_sns_topic_arn = var.alarm_sns_topic_arn
  secret_readers      = var.secret_readers

  tags = { environment = "production" }
}

output "provisioner_function_name" {
  value = module.jit_access.provisioner_function_name
}

output "config_bucket" {
  value = module.jit_access.config_bucket
}

output "grants_table_name" {
  value = module.jit_access.grants_table_name
}

output "invoke_provisioner_policy_arn" {
  value = module.jit_access.invoke_provisioner_policy_arn
}

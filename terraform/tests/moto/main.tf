# Test root for scripts/terraform-test.sh: the module applied against a moto server. Not an example of a
# real deployment. moto stores the Lambda zips but never runs them, so placeholder zips are fine here.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

variable "endpoint" {
  description = "moto server URL, e.g. http://127.0.0.1:5000"
  type        = string
}

variable "provisioner_zip" {
  type = string
}

variable "reaper_zip" {
  type = string
}

variable "config_file" {
  type = string
}

variable "architecture" {
  type    = string
  default = "x86_64"
}

# The variant the script only plans (moto has no EC2 here): Lambdas in a VPC, an existing bucket, SSE-KMS.
variable "subnet_ids" {
  type    = list(string)
  default = []
}

variable "security_group_ids" {
  type    = list(string)
  default = []
}

variable "existing_config_bucket" {
  type    = string
  default = null
}

variable "kms_key_arn" {
  type    = string
  default = null
}

# Set by the script (one sample break-glass role) and checked against the applied bucket policy.
variable "secret_readers" {
  type    = list(string)
  default = []
}

variable "secret_noncurrent_version_days" {
  type    = number
  default = 7
}

# Set by the script once per admin credential mode, with credential delivery, and checked as exact IAM statements.
variable "admin_secret_arns" {
  type    = list(string)
  default = []
}

variable "admin_iam_db_users" {
  type    = list(string)
  default = []
}

variable "iam_auth_db_users" {
  type    = list(string)
  default = []
}

variable "credential_delivery" {
  type    = list(string)
  default = []
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {
    cloudwatch = var.endpoint
    dynamodb   = var.endpoint
    events     = var.endpoint
    iam        = var.endpoint
    lambda     = var.endpoint
    logs       = var.endpoint
    pipes      = var.endpoint
    s3         = var.endpoint
    sns        = var.endpoint
    sts        = var.endpoint
  }
}

resource "aws_sns_topic" "alarms" {
  name = "jit-test-alarms"
}

module "jit_access" {
  source = "../.."

  name_prefix     = "jit-test"
  architecture    = var.architecture
  provisioner_zip = var.provisioner_zip
  reaper_zip      = var.reaper_zip
  config_file     = var.config_file

  subnet_ids             = var.subnet_ids
  security_group_ids     = var.security_group_ids
  existing_config_bucket = var.existing_config_bucket
  kms_key_arn            = var.kms_key_arn

  secret_readers                 = var.secret_readers
  aurora_cluster_identifiers     = ["orders-prod"]
  secret_noncurrent_version_days = var.secret_noncurrent_version_days

  admin_secret_arns   = var.admin_secret_arns
  admin_iam_db_users  = var.admin_iam_db_users
  iam_auth_db_users   = var.iam_auth_db_users
  credential_delivery = var.credential_delivery

  alarm_sns_topic_arn         = aws_sns_topic.alarms.arn
  table_deletion_protection   = false
  config_bucket_force_destroy = true
  log_retention_days          = 7

  tags = { purpose = "terraform-test" }
}

output "module" {
  value = module.jit_access
}

variable "name_prefix" {
  description = "Prefix of every resource name (table, bucket when created, functions, roles, rule, alarms)."
  type        = string
  default     = "jit-access"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,38}$", var.name_prefix))
    error_message = "name_prefix must be 1-39 characters of lowercase letters, digits and hyphens."
  }
}

variable "architecture" {
  description = "Lambda architecture; must match what scripts/package.sh printed."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "provisioner_zip" {
  description = "Path of the provisioner deployment zip (scripts/package.sh: target/lambda/provisioner/bootstrap.zip)."
  type        = string
}

variable "reaper_zip" {
  description = "Path of the reaper deployment zip (scripts/package.sh: target/lambda/reaper/bootstrap.zip)."
  type        = string
}

variable "config_bucket_name" {
  description = "Name of the config bucket to create. Null: \"<name_prefix>-config-<account id>\". Ignored when existing_config_bucket is set."
  type        = string
  default     = null
}

variable "existing_config_bucket" {
  description = "Name of an existing bucket holding the config document and admin credentials. When set, no bucket is created or configured: no policy, no lifecycle rule. Merge the config_bucket_policy_json output into the bucket's own policy, and add the secrets/ lifecycle rule yourself (README: Who can read the admin secrets)."
  type        = string
  default     = null
}

variable "config_key" {
  description = "Key of the config document in the bucket (CONFIG_KEY)."
  type        = string
  default     = "config.json"
}

variable "config_file" {
  description = "Local path of a config document to upload to config_key. Null: Terraform does not manage the config object. Admin credential objects (admin_secret_key) are never managed by Terraform: upload them yourself."
  type        = string
  default     = null
}

variable "readable_object_patterns" {
  description = "Object key patterns (relative to the bucket, IAM wildcards allowed) the Lambdas may read besides config_key: admin credential objects (which must be under secrets/, the prefix the bucket policy protects) and CA bundles named in the config."
  type        = list(string)
  default     = ["secrets/*", "tls/*"]
}

variable "secret_readers" {
  description = "Role ARNs, besides the two Lambda roles, that may read the admin credential objects under secrets/ (and their old versions): break-glass roles and the operators who run `grantctl revoke`, which reads the admin secret. The bucket policy denies s3:GetObject/GetObjectVersion on secrets/* to every other principal, whatever its IAM policies allow. Compared with aws:PrincipalArn (for an assumed role, the role's ARN, path included), IAM wildcards allowed (e.g. an IAM Identity Center role: arn:aws:iam::<account>:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_BreakGlass_*). Grants nothing by itself: these roles still need s3:GetObject in their own IAM policies. With existing_config_bucket, see the config_bucket_policy_json output."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.secret_readers : can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|\\*):role/.+$", arn))])
    error_message = "secret_readers must be IAM role ARNs: arn:<partition>:iam::<account id>:role/<path/name> (wildcards allowed in the name)."
  }
}

variable "secret_noncurrent_version_days" {
  description = "Days after which an old (noncurrent) version of an object under secrets/ is deleted by the bucket's lifecycle rule: a replaced admin password stays readable (to secret_readers) only this long, the window for rolling back a bad upload. Other objects' versions (the config document's) are kept. Only for a bucket the module creates."
  type        = number
  default     = 7

  validation {
    condition     = var.secret_noncurrent_version_days >= 1 && floor(var.secret_noncurrent_version_days) == var.secret_noncurrent_version_days
    error_message = "secret_noncurrent_version_days must be a whole number of days, at least 1."
  }
}

variable "kms_key_arn" {
  description = "KMS key for the config bucket's default encryption (SSE-KMS) and the Lambdas' kms:Decrypt on it. Null: SSE-S3 (AES256)."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Private subnets (with a route to the Aurora cluster, and to DynamoDB/S3 via VPC endpoints or NAT) for both Lambdas. Empty: the Lambdas run outside any VPC."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Security groups for the Lambdas' ENIs (must be allowed to reach Aurora on 5432, or 3306 for engine mysql). Required when subnet_ids is set."
  type        = list(string)
  default     = []
}

variable "provisioner_timeout" {
  description = "Provisioner timeout, seconds."
  type        = number
  default     = 30
}

variable "reaper_timeout" {
  description = "Reaper timeout, seconds. Must stay below the 5-minute schedule period plus some slack."
  type        = number
  default     = 300
}

variable "provisioner_memory" {
  description = "Provisioner memory, MB."
  type        = number
  default     = 256
}

variable "reaper_memory" {
  description = "Reaper memory, MB."
  type        = number
  default     = 256
}

variable "log_retention_days" {
  description = "Retention of both functions' CloudWatch log groups, days."
  type        = number
  default     = 90
}

variable "log_level" {
  description = "Application log level of both functions (Lambda JSON logging: TRACE, DEBUG, INFO, WARN, ERROR, FATAL)."
  type        = string
  default     = "INFO"
}

variable "reaper_reserved_concurrency" {
  description = "Reserved concurrency of the reaper. 1 keeps passes from overlapping (leases make overlap safe, but pointless)."
  type        = number
  default     = 1
}

variable "provisioner_reserved_concurrency" {
  description = "Reserved concurrency of the provisioner. -1: unreserved."
  type        = number
  default     = -1
}

variable "retention_days" {
  description = "RETENTION_DAYS: how long terminal grants stay before DynamoDB TTL purges them."
  type        = number
  default     = 365
}

variable "pending_grace_seconds" {
  description = "PENDING_GRACE_SECONDS: a pending row older than this is treated as a crashed provisioning and cleaned up."
  type        = number
  default     = 900
}

variable "table_deletion_protection" {
  description = "Deletion protection of the grants table (the audit trail)."
  type        = bool
  default     = true
}

variable "alarm_sns_topic_arn" {
  description = "SNS topic the alarms notify (alarm and OK transitions). Null: the alarms exist (visible in the console) but notify nobody."
  type        = string
  default     = null
}

variable "create_alarms" {
  description = "Create the alarms: reaper Errors, RevokeFailed, Overdue, reaper not running for 15 minutes, provisioner Errors."
  type        = bool
  default     = true
}

variable "create_dashboard" {
  description = "Create a CloudWatch dashboard of the reaper's metrics."
  type        = bool
  default     = true
}

variable "extra_environment" {
  description = "Additional environment variables for both functions (e.g. RUST_LOG)."
  type        = map(string)
  default     = {}
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "schedule_file" {
  description = "Path of the reaper schedule definition (JSON: name_suffix, schedule_expression, description, state). Null: eventbridge/reaper-schedule.json of this repository, the single source of truth."
  type        = string
  default     = null
}

variable "config_bucket_force_destroy" {
  description = "Let `terraform destroy` delete the created config bucket with every object version in it (admin credentials included). Keep false in production."
  type        = bool
  default     = false
}

variable "create_invoke_policy" {
  description = "Create an aws_iam_policy that lets its holders invoke the provisioner (attach it to callers' roles)."
  type        = bool
  default     = true
}

variable "aurora_cluster_identifiers" {
  description = "Aurora cluster identifiers the config names as cluster_identifier: both Lambdas may describe exactly these clusters (and the account's DB instances, which DescribeDBInstances cannot narrow further) to find their reader instances. Empty: no RDS permission at all (configure readers explicitly instead).."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.aurora_cluster_identifiers : can(regex("^[A-Za-z](-?[A-Za-z0-9])*$", id)) && length(id) <= 63])
    error_message = "aurora_cluster_identifiers must be RDS cluster identifiers: 1-63 letters, digits and single hyphens, starting with a letter."
  }
}

variable "lifecycle_events" {
  description = "Publish lifecycle events (Grant Activated, Expiring Soon, Revoked, Revocation Failed, Break Glass) from the table's stream through EventBridge Pipes."
  type        = bool
  default     = true
}

variable "event_bus_arn" {
  description = "An existing event bus for the lifecycle events; null creates <name_prefix>-grants."
  type        = string
  default     = null
}

variable "pipes_file" {
  description = "Override the pipes definition file (defaults to eventbridge/lifecycle-pipes.json in this repo)."
  type        = string
  default     = null
}

# --- issue 12: admin credentials without an S3 object, IAM tokens, credential delivery (credentials.tf) -----

variable "admin_secret_arns" {
  description = "Secrets Manager secrets named by admin_secret_arn in the config (e.g. the master user secrets RDS manages): both Lambdas may read exactly these. A secret encrypted with a customer managed KMS key also needs kms:Decrypt on it (kms_key_arn covers only the config bucket's key)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.admin_secret_arns : can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", arn))])
    error_message = "admin_secret_arns must be Secrets Manager secret ARNs."
  }
}

variable "admin_iam_db_users" {
  description = "For admin_iam_user: the rds-db:connect resources both Lambdas connect as, arn:aws:rds-db:<region>:<account>:dbuser:<cluster DbiResourceId>/<admin_iam_user>."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.admin_iam_db_users : can(regex("^arn:aws[a-z-]*:rds-db:[a-z0-9-]+:[0-9]{12}:dbuser:[^/]+/[^*]+$", arn))])
    error_message = "admin_iam_db_users must be rds-db dbuser ARNs naming one user (no wildcard)."
  }
}

variable "iam_auth_db_users" {
  description = "For targets with auth = iam (engine postgres only; refused for engine mysql): the rds-db:connect resources of the temporary users, arn:aws:rds-db:<region>:<account>:dbuser:<cluster DbiResourceId>/<user_prefix>*. Only the provisioner gets them: a token works only if its signer may connect, so only the provisioner can mint one."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.iam_auth_db_users : can(regex("^arn:aws[a-z-]*:rds-db:[a-z0-9-]+:[0-9]{12}:dbuser:[^/*]+/[a-z][a-z0-9_]*[*]$", arn))])
    error_message = "iam_auth_db_users must be rds-db dbuser ARNs ending in <user_prefix>*."
  }
}

variable "credential_delivery" {
  description = "The credential_delivery values the config uses besides response: secrets_manager and/or ssm. Grants the provisioner writes (tag required on create) and both Lambdas deletes, only under secret_name_prefix."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for d in var.credential_delivery : contains(["secrets_manager", "ssm"], d)])
    error_message = "credential_delivery may hold only \"secrets_manager\" and \"ssm\"."
  }
}

variable "secret_name_prefix" {
  description = "SECRET_NAME_PREFIX: delivered secrets are <prefix>/<database>/<grant_id>, parameters /<prefix>/<database>/<grant_id>. Letters, digits and / _ . - only: SSM names cannot contain @."
  type        = string
  default     = "jit-access"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.secret_name_prefix))
    error_message = "secret_name_prefix must be letters, digits and / _ . -, not starting or ending with /."
  }
}

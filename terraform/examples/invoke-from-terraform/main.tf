# Another stack asks the provisioner for time-limited access, e.g. a migration pipeline that needs a database
# user for the duration of a run. Terraform invokes the Lambda once per apply (aws_lambda_invocation) and
# reads the SPEC's response.
#
# The password ends up in this stack's state (the invocation result): keep the state encrypted and access-
# controlled, and keep durations short. Re-applying with the same request_id returns the same grant and user
# with a fresh password (SPEC idempotency); a new request_id is a new grant.

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "provisioner_function_name" {
  description = "The module's provisioner_function_name output."
  type        = string
  default     = "jit-access-provisioner"
}

variable "request_id" {
  description = "Idempotency key; change it to request a new grant."
  type        = string
  default     = "terraform-migrations-001"
}

variable "requester" {
  type    = string
  default = "migrations@example.com"
}

variable "approver" {
  type    = string
  default = "bob@example.com"
}

locals {
  grant_request = {
    action           = "grant"
    request_id       = var.request_id
    requester        = var.requester
    database         = "orders"
    target           = "readonly"
    duration_seconds = 1800
    reason           = "CHG-1234 schema migration"
    approver         = var.approver
  }
}

resource "aws_lambda_invocation" "grant" {
  function_name = var.provisioner_function_name
  input         = jsonencode(local.grant_request)

  # Only ask again when the request changes.
  triggers = {
    request = sha256(jsonencode(local.grant_request))
  }
}

locals {
  response = jsondecode(aws_lambda_invocation.grant.result)
}

# Client errors (invalid_request, policy_violation, ...) are normal responses with ok = false: fail loudly.
check "grant_succeeded" {
  assert {
    condition     = local.response.ok
    error_message = "grant refused: ${jsonencode(try(local.response.error, {}))}"
  }
}

output "grant" {
  description = "grant_id, status, db_user, expires_at, ..."
  value       = try(local.response.grant, null)
}

output "connection" {
  description = "Credentials for the temporary user (temp_user targets only)."
  value       = try(local.response.credentials, null)
  sensitive   = true
}

output "error" {
  value = try(local.response.error, null)
}

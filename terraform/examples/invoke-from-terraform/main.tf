# Another stack asks the provisioner for time-limited access, e.g. a migration pipeline that needs a database
# user for the duration of a run. Terraform invokes the Lambda once per apply (aws_lambda_invocation) and
# reads the SPEC's response.
#
# The target delivers its credentials to SSM (credential_delivery "ssm" in the jit-access config): the response,
# and so this stack's state, holds only the SecureString parameter's name, which the stack hands on to the app
# that connects (here: as an environment variable of a task). The app reads the parameter with its own role
# (ssm:GetParameter on it); the parameter is deleted when the grant ends. Re-applying with the same request_id
# returns the same grant and user and writes a fresh password to the same parameter (SPEC idempotency); a new
# request_id is a new grant.

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

variable "target" {
  description = "A temp_user target whose credential_delivery is \"ssm\"."
  type        = string
  default     = "migrations"
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
    target           = var.target
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

check "credentials_delivered_to_ssm" {
  assert {
    condition     = try(local.response.credentials.parameter_name, null) != null && try(local.response.credentials.password, null) == null
    error_message = "target ${var.target} must have credential_delivery \"ssm\": the password must not be in this state"
  }
}

locals {
  # What the app that connects is given: where to read its credentials, never the credentials.
  app_environment = {
    DB_CREDENTIALS_PARAMETER = try(local.response.credentials.parameter_name, "")
    DB_HOST                  = try(local.response.credentials.host, "")
    DB_USER                  = try(local.response.credentials.username, "")
  }
}

output "credentials_parameter_name" {
  description = "The SecureString parameter holding the temporary user's credentials (the SPEC credentials object)."
  value       = try(local.response.credentials.parameter_name, null)
}

output "app_environment" {
  description = "Environment for the app that connects, e.g. an ECS task definition's environment or a Lambda's."
  value       = local.app_environment
}

output "error" {
  value = try(local.response.error, null)
}

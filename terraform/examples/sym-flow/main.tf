# A Sym flow whose access target is this provisioner. The AWS side is the module and the invoke policy Sym's
# runtime role needs; the Sym side (the sym provider's sym_target, not installed here) is in README.md.

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

variable "sym_runtime_role_name" {
  description = "The IAM role Sym's runtime connector assumes in this account (the sym runtime module's output)."
  type        = string
}

module "jit_access" {
  source = "../.."

  name_prefix          = "jit-access"
  provisioner_zip      = "${path.root}/../../../target/lambda/provisioner/bootstrap.zip"
  reaper_zip           = "${path.root}/../../../target/lambda/reaper/bootstrap.zip"
  subnet_ids           = var.subnet_ids
  security_group_ids   = var.security_group_ids
  create_invoke_policy = true
}

# Sym invokes the provisioner with its escalate/deescalate events; nothing else.
resource "aws_iam_role_policy_attachment" "sym_invokes_provisioner" {
  role       = var.sym_runtime_role_name
  policy_arn = module.jit_access.invoke_provisioner_policy_arn
}

output "sym_target_arn" {
  description = "The arn of the sym_target (README.md)."
  value       = module.jit_access.provisioner_function_arn
}

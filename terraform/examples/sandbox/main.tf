# A self-contained sandbox: a VPC with private subnets, an Aurora PostgreSQL Serverless v2 cluster, gateway
# endpoints for DynamoDB and S3 (no NAT needed), and jit-access in front of it. For trying things out only:
# no deletion protection, no final snapshot.

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "name" {
  type    = string
  default = "jit-sandbox"
}

variable "architecture" {
  description = "What scripts/package.sh printed."
  type        = string
  default     = "x86_64"
}

variable "engine_version" {
  description = "Aurora PostgreSQL version (Serverless v2 capable)."
  type        = string
  default     = "16.4"
}

data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  azs  = slice(data.aws_availability_zones.available.names, 0, 2)
  cidr = "10.42.0.0/16"
}

resource "aws_vpc" "this" {
  cidr_block           = local.cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.name }
}

resource "aws_subnet" "private" {
  count             = length(local.azs)
  vpc_id            = aws_vpc.this.id
  availability_zone = local.azs[count.index]
  cidr_block        = cidrsubnet(local.cidr, 8, count.index)
  tags              = { Name = "${var.name}-private-${local.azs[count.index]}" }
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.name}-private" }
}

resource "aws_route_table_association" "private" {
  count          = length(aws_subnet.private)
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

# The Lambdas reach DynamoDB and S3 through gateway endpoints: no internet access needed.
resource "aws_vpc_endpoint" "gateway" {
  for_each          = toset(["dynamodb", "s3"])
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${var.region}.${each.key}"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.private.id]
  tags              = { Name = "${var.name}-${each.key}" }
}

resource "aws_security_group" "lambda" {
  name        = "${var.name}-lambda"
  description = "jit-access Lambdas"
  vpc_id      = aws_vpc.this.id

  egress {
    description = "Aurora, and DynamoDB/S3 through the gateway endpoints"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "aurora" {
  name        = "${var.name}-aurora"
  description = "Aurora PostgreSQL, reachable from the jit-access Lambdas"
  vpc_id      = aws_vpc.this.id

  ingress {
    description     = "PostgreSQL from the Lambdas"
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_security_group.lambda.id]
  }
}

resource "aws_db_subnet_group" "this" {
  name       = var.name
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_rds_cluster" "this" {
  cluster_identifier          = var.name
  engine                      = "aurora-postgresql"
  engine_mode                 = "provisioned"
  engine_version              = var.engine_version
  database_name               = "orders"
  master_username             = "postgres"
  manage_master_user_password = true # in Secrets Manager; use it once to create the jit admin user
  db_subnet_group_name        = aws_db_subnet_group.this.name
  vpc_security_group_ids      = [aws_security_group.aurora.id]
  storage_encrypted           = true
  skip_final_snapshot         = true
  deletion_protection         = false

  serverlessv2_scaling_configuration {
    min_capacity = 0.5
    max_capacity = 2
  }
}

resource "aws_rds_cluster_instance" "this" {
  identifier           = "${var.name}-1"
  cluster_identifier   = aws_rds_cluster.this.id
  instance_class       = "db.serverless"
  engine               = aws_rds_cluster.this.engine
  engine_version       = aws_rds_cluster.this.engine_version
  db_subnet_group_name = aws_db_subnet_group.this.name
}

module "jit_access" {
  source = "../.."

  name_prefix     = var.name
  architecture    = var.architecture
  provisioner_zip = "${path.root}/../../../target/lambda/provisioner/bootstrap.zip"
  reaper_zip      = "${path.root}/../../../target/lambda/reaper/bootstrap.zip"

  subnet_ids         = aws_subnet.private[*].id
  security_group_ids = [aws_security_group.lambda.id]

  # Sandbox: easy to tear down.
  table_deletion_protection   = false
  config_bucket_force_destroy = true
  log_retention_days          = 7

  tags = { environment = "sandbox" }
}

# The config document, pointing at this cluster. The admin credentials object it names is uploaded by hand.
resource "aws_s3_object" "config" {
  bucket       = module.jit_access.config_bucket
  key          = module.jit_access.config_key
  content_type = "application/json"
  content = jsonencode({
    user_prefix = "jit_"
    databases = {
      orders = {
        host             = aws_rds_cluster.this.endpoint
        port             = 5432
        dbname           = "orders"
        sslmode          = "verify-full"
        admin_secret_key = "secrets/orders-admin.json"
        targets = {
          readonly = {
            strategy                 = "temp_user"
            roles                    = ["readonly"]
            default_duration_seconds = 3600
            max_duration_seconds     = 14400
            connection_limit         = 5
          }
        }
      }
    }
  })
}

output "cluster_endpoint" {
  value = aws_rds_cluster.this.endpoint
}

output "master_user_secret_arn" {
  value = aws_rds_cluster.this.master_user_secret[0].secret_arn
}

output "provisioner_function_name" {
  value = module.jit_access.provisioner_function_name
}

output "config_bucket" {
  value = module.jit_access.config_bucket
}

# jit-access in front of a new Aurora MySQL 3 cluster, in an existing VPC. What is MySQL-specific: the cluster
# parameter group turning event_scheduler ON (the expiry events need it), port 3306, and "engine": "mysql" in
# the config document. The module itself is the same for both engines. One instance only: reader instances are
# not supported for engine mysql yet (docs/mysql.md, "Limits").

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  type    = string
  default = "jit-shop"
}

variable "vpc_id" {
  description = "The VPC of the cluster and the Lambdas."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets in two or more AZs, for the cluster and the Lambdas (with a route to DynamoDB/S3 through VPC endpoints or NAT)."
  type        = list(string)
}

variable "architecture" {
  description = "What scripts/package.sh printed."
  type        = string
  default     = "x86_64"
}

variable "engine_version" {
  description = "Aurora MySQL 3 version (MySQL 8.0 compatible)."
  type        = string
  default     = "8.0.mysql_aurora.3.08.0"
}

# The expiry of a temporary user is a one-shot event in the database: without event_scheduler ON every grant
# is refused with a Config error naming event_scheduler. The parameter is dynamic (no reboot).
resource "aws_rds_cluster_parameter_group" "mysql" {
  name        = "${var.name}-aurora-mysql8"
  family      = "aurora-mysql8.0"
  description = "Aurora MySQL 3 for jit-access: event_scheduler ON"

  parameter {
    name  = "event_scheduler"
    value = "ON"
  }
}

resource "aws_security_group" "lambda" {
  name        = "${var.name}-lambda"
  description = "jit-access Lambdas"
  vpc_id      = var.vpc_id

  egress {
    description = "Aurora, and DynamoDB/S3"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "aurora" {
  name        = "${var.name}-aurora"
  description = "Aurora MySQL, reachable from the jit-access Lambdas"
  vpc_id      = var.vpc_id

  ingress {
    description     = "MySQL from the Lambdas"
    from_port       = 3306
    to_port         = 3306
    protocol        = "tcp"
    security_groups = [aws_security_group.lambda.id]
  }
}

resource "aws_db_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
}

resource "aws_rds_cluster" "this" {
  cluster_identifier              = var.name
  engine                          = "aurora-mysql"
  engine_version                  = var.engine_version
  db_cluster_parameter_group_name = aws_rds_cluster_parameter_group.mysql.name
  database_name                   = "shop"
  master_username                 = "admin"
  manage_master_user_password     = true # in Secrets Manager; use it once to create the jit admin user
  db_subnet_group_name            = aws_db_subnet_group.this.name
  vpc_security_group_ids          = [aws_security_group.aurora.id]
  storage_encrypted               = true
  skip_final_snapshot             = true
  deletion_protection             = false
}

resource "aws_rds_cluster_instance" "writer" {
  identifier           = "${var.name}-1"
  cluster_identifier   = aws_rds_cluster.this.id
  instance_class       = "db.t4g.medium"
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

  subnet_ids         = var.subnet_ids
  security_group_ids = [aws_security_group.lambda.id]

  tags = { environment = "example" }
}

# The config document, pointing at this cluster. The admin credentials object it names is uploaded by hand.
resource "aws_s3_object" "config" {
  bucket       = module.jit_access.config_bucket
  key          = module.jit_access.config_key
  content_type = "application/json"
  content = jsonencode({
    user_prefix = "jit_"
    databases = {
      shop = {
        engine           = "mysql"
        host             = aws_rds_cluster.this.endpoint
        port             = 3306
        dbname           = "shop"
        sslmode          = "verify-full" # "require" is refused for engine mysql
        admin_secret_key = "secrets/shop-admin.json"
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

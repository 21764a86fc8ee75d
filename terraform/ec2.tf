# The two servers: the first runs latency (AMI from Packer) and pings the second,
# a plain Ubuntu 24.04 that only answers ICMP echo.

data "aws_vpc" "default" {
  count   = var.vpc_id == null ? 1 : 0
  default = true
}

data "aws_subnets" "selected" {
  count = var.subnet_id == null ? 1 : 0

  filter {
    name   = "vpc-id"
    values = [local.vpc_id]
  }

  dynamic "filter" {
    for_each = var.vpc_id == null ? [true] : []
    content {
      name   = "default-for-az"
      values = ["true"]
    }
  }
}

# The latest Ubuntu 24.04 LTS amd64 server image published by Canonical.
data "aws_ami" "ubuntu" {
  count       = var.ami_id_second_server == null ? 1 : 0
  most_recent = true
  owners      = ["099720109477"] # Canonical

  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

locals {
  vpc_id     = var.vpc_id != null ? var.vpc_id : data.aws_vpc.default[0].id
  subnet_id  = var.subnet_id != null ? var.subnet_id : sort(data.aws_subnets.selected[0].ids)[0]
  second_ami = var.ami_id_second_server != null ? var.ami_id_second_server : data.aws_ami.ubuntu[0].id

  # First-boot script of the first server: point latency at the second server.
  first_server_user_data = templatefile("${path.module}/setup.sh", {
    target_ip = module.second_server.private_ip
  })
}

module "ssh" {
  source = "./modules/ssh"

  name       = "${var.name_prefix}-key"
  public_key = var.ssh_public_key
}

module "second_server" {
  source = "./modules/ec2"

  name                = "${var.name_prefix}-second-server"
  ami_id              = local.second_ami
  instance_type       = var.instance_type
  subnet_id           = local.subnet_id
  security_group_ids  = [aws_security_group.second_server.id]
  key_name            = module.ssh.key_name
  root_volume_size    = var.root_volume_size
  detailed_monitoring = var.detailed_monitoring
}

module "first_server" {
  source = "./modules/ec2"

  name                = "${var.name_prefix}-first-server"
  ami_id              = var.ami_id_first_server
  instance_type       = var.instance_type
  subnet_id           = local.subnet_id
  security_group_ids  = [aws_security_group.first_server.id]
  key_name            = module.ssh.key_name
  root_volume_size    = var.root_volume_size
  detailed_monitoring = var.detailed_monitoring
  user_data           = local.first_server_user_data
}

# The pair (default): the first server runs latency (AMI from Packer) and pings the second,
# a plain Ubuntu 24.04 that only answers ICMP echo.
# A mesh (mesh_size = N): N servers from the latency AMI, each pinging all the others.

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
  count       = !local.mesh && var.ami_id_second_server == null ? 1 : 0
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

# A mesh's fixed private IPs come from the subnet's range.
data "aws_subnet" "mesh" {
  count = local.mesh ? 1 : 0
  id    = local.subnet_id

  lifecycle {
    postcondition {
      # AWS keeps the subnet's last address too.
      condition     = var.mesh_host_offset + var.mesh_size <= pow(2, 32 - tonumber(split("/", self.cidr_block)[1])) - 1
      error_message = "The subnet ${self.cidr_block} has no room for ${var.mesh_size} servers from host ${var.mesh_host_offset}: lower mesh_host_offset or mesh_size, or pick a larger subnet_id."
    }
  }
}

locals {
  mesh       = var.mesh_size != null
  vpc_id     = var.vpc_id != null ? var.vpc_id : data.aws_vpc.default[0].id
  subnet_id  = var.subnet_id != null ? var.subnet_id : sort(data.aws_subnets.selected[0].ids)[0]
  second_ami = var.ami_id_second_server != null ? var.ami_id_second_server : one(data.aws_ami.ubuntu[*].id)

  # First-boot script of the first server: point latency at the second server.
  first_server_user_data = local.mesh ? null : templatefile("${path.module}/setup.sh", {
    target_ip = module.second_server[0].private_ip
  })

  # The mesh's servers, named as their peers' results lines name them. Fixed addresses
  # break the cycle of each user_data needing the others' addresses: one apply builds it.
  mesh_servers = [for i in range(local.mesh ? var.mesh_size : 0) : {
    name       = "${var.name_prefix}-${i + 1}"
    private_ip = cidrhost(data.aws_subnet.mesh[0].cidr_block, var.mesh_host_offset + i)
  }]

  # The servers that run latency, in order: the first server, or every server of the mesh.
  latency_public_ips = concat(module.first_server[*].public_ip, module.mesh[*].public_ip)
}

module "ssh" {
  source = "./modules/ssh"

  name       = "${var.name_prefix}-key"
  public_key = var.ssh_public_key
}

module "second_server" {
  source = "./modules/ec2"
  count  = local.mesh ? 0 : 1

  name                = "${var.name_prefix}-second-server"
  ami_id              = local.second_ami
  instance_type       = var.instance_type
  subnet_id           = local.subnet_id
  security_group_ids  = [aws_security_group.second_server[0].id]
  key_name            = module.ssh.key_name
  root_volume_size    = var.root_volume_size
  detailed_monitoring = var.detailed_monitoring
}

module "first_server" {
  source = "./modules/ec2"
  count  = local.mesh ? 0 : 1

  name                = "${var.name_prefix}-first-server"
  ami_id              = var.ami_id_first_server
  instance_type       = var.instance_type
  subnet_id           = local.subnet_id
  security_group_ids  = [aws_security_group.first_server[0].id]
  key_name            = module.ssh.key_name
  root_volume_size    = var.root_volume_size
  detailed_monitoring = var.detailed_monitoring
  user_data           = local.first_server_user_data
}

module "mesh_user_data" {
  source = "./modules/mesh-user-data"

  servers = local.mesh_servers
}

module "mesh" {
  source = "./modules/ec2"
  count  = length(local.mesh_servers)

  name                = local.mesh_servers[count.index].name
  ami_id              = var.ami_id_first_server
  instance_type       = var.instance_type
  subnet_id           = local.subnet_id
  private_ip          = local.mesh_servers[count.index].private_ip
  security_group_ids  = [aws_security_group.mesh[0].id]
  key_name            = module.ssh.key_name
  root_volume_size    = var.root_volume_size
  detailed_monitoring = var.detailed_monitoring
  user_data           = module.mesh_user_data.user_data[count.index]
}

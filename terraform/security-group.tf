# Least-privilege traffic between the user, the first server and the second:
#   user (allowed_cidrs) --TCP 5000--> first server --ICMP echo--> second server
#   user (ssh_cidrs)     --TCP 22----> both servers (only when ssh_cidrs is set)
# or, for a mesh, one group for all its servers:
#   user (allowed_cidrs) --TCP 5000--> every server --ICMP echo--> every other server
#   user (ssh_cidrs)     --TCP 22----> every server (only when ssh_cidrs is set)
# Security groups are stateful: replies need no rule of their own. AWS's default
# allow-all egress rule is removed by Terraform, so the only egress left is ICMP
# echo request to the servers watched.

locals {
  # The group of the servers that run latency: the first server's, or the mesh's.
  latency_group_id = one(concat(aws_security_group.first_server[*].id, aws_security_group.mesh[*].id))
}

resource "aws_security_group" "first_server" {
  #checkov:skip=CKV2_AWS_5:Attached to the first server via module.first_server; checkov loses that link because the call's user_data refers to module.second_server (without it the check passes).
  count = local.mesh ? 0 : 1

  name_prefix = "${var.name_prefix}-first-server-"
  description = "latency first server: HTTP API in, ICMP echo out to the second server"
  vpc_id      = local.vpc_id

  tags = {
    Name = "${var.name_prefix}-first-server"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "second_server" {
  count = local.mesh ? 0 : 1

  name_prefix = "${var.name_prefix}-second-server-"
  description = "latency second server: ICMP echo in from the first server only"
  vpc_id      = local.vpc_id

  tags = {
    Name = "${var.name_prefix}-second-server"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "mesh" {
  count = local.mesh ? 1 : 0

  name_prefix = "${var.name_prefix}-mesh-"
  description = "latency mesh: HTTP API in, ICMP echo between its servers only"
  vpc_id      = local.vpc_id

  tags = {
    Name = "${var.name_prefix}-mesh"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "latency_api" {
  for_each = toset(var.allowed_cidrs)

  security_group_id = local.latency_group_id
  description       = "latency HTTP API (GET /latency, /latency-results) from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 5000
  to_port           = 5000
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "icmp_echo_to_second" {
  count = local.mesh ? 0 : 1

  security_group_id            = aws_security_group.first_server[0].id
  description                  = "ICMP echo request to the second server"
  ip_protocol                  = "icmp"
  from_port                    = 8 # ICMP type: echo request
  to_port                      = 0 # ICMP code
  referenced_security_group_id = aws_security_group.second_server[0].id
}

resource "aws_vpc_security_group_ingress_rule" "icmp_echo_from_first" {
  count = local.mesh ? 0 : 1

  security_group_id            = aws_security_group.second_server[0].id
  description                  = "ICMP echo request from the first server"
  ip_protocol                  = "icmp"
  from_port                    = 8 # ICMP type: echo request
  to_port                      = 0 # ICMP code
  referenced_security_group_id = aws_security_group.first_server[0].id
}

resource "aws_vpc_security_group_egress_rule" "icmp_echo_within_mesh" {
  count = local.mesh ? 1 : 0

  security_group_id            = aws_security_group.mesh[0].id
  description                  = "ICMP echo request to the other servers of the mesh"
  ip_protocol                  = "icmp"
  from_port                    = 8 # ICMP type: echo request
  to_port                      = 0 # ICMP code
  referenced_security_group_id = aws_security_group.mesh[0].id
}

resource "aws_vpc_security_group_ingress_rule" "icmp_echo_within_mesh" {
  count = local.mesh ? 1 : 0

  security_group_id            = aws_security_group.mesh[0].id
  description                  = "ICMP echo request from the other servers of the mesh"
  ip_protocol                  = "icmp"
  from_port                    = 8 # ICMP type: echo request
  to_port                      = 0 # ICMP code
  referenced_security_group_id = aws_security_group.mesh[0].id
}

# On the servers that run latency (the first server, or the mesh).
resource "aws_vpc_security_group_ingress_rule" "ssh_first" {
  for_each = toset(var.ssh_cidrs)

  security_group_id = local.latency_group_id
  description       = "SSH from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "ssh_second" {
  for_each = local.mesh ? toset([]) : toset(var.ssh_cidrs)

  security_group_id = aws_security_group.second_server[0].id
  description       = "SSH from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value
}

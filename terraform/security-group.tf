# Least-privilege traffic between the user, the first server and the second:
#   user (allowed_cidrs) --TCP 5000--> first server --ICMP echo--> second server
#   user (ssh_cidrs)     --TCP 22----> both servers (only when ssh_cidrs is set)
# Security groups are stateful: replies need no rule of their own. AWS's default
# allow-all egress rule is removed by Terraform, so the only egress left is the
# first server's ICMP echo request to the second server.

resource "aws_security_group" "first_server" {
  #checkov:skip=CKV2_AWS_5:Attached to the first server via module.first_server; checkov loses that link because the call's user_data refers to module.second_server (without it the check passes).
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

resource "aws_vpc_security_group_ingress_rule" "latency_api" {
  for_each = toset(var.allowed_cidrs)

  security_group_id = aws_security_group.first_server.id
  description       = "latency HTTP API (GET /latency, /latency-results) from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 5000
  to_port           = 5000
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "icmp_echo_to_second" {
  security_group_id            = aws_security_group.first_server.id
  description                  = "ICMP echo request to the second server"
  ip_protocol                  = "icmp"
  from_port                    = 8 # ICMP type: echo request
  to_port                      = 0 # ICMP code
  referenced_security_group_id = aws_security_group.second_server.id
}

resource "aws_vpc_security_group_ingress_rule" "icmp_echo_from_first" {
  security_group_id            = aws_security_group.second_server.id
  description                  = "ICMP echo request from the first server"
  ip_protocol                  = "icmp"
  from_port                    = 8 # ICMP type: echo request
  to_port                      = 0 # ICMP code
  referenced_security_group_id = aws_security_group.first_server.id
}

resource "aws_vpc_security_group_ingress_rule" "ssh_first" {
  for_each = toset(var.ssh_cidrs)

  security_group_id = aws_security_group.first_server.id
  description       = "SSH from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "ssh_second" {
  for_each = toset(var.ssh_cidrs)

  security_group_id = aws_security_group.second_server.id
  description       = "SSH from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value
}

# The pair's resources gained a count (none when mesh_size is set): a pair applied before
# that keeps its servers and groups instead of being replaced.
moved {
  from = module.first_server
  to   = module.first_server[0]
}

moved {
  from = module.second_server
  to   = module.second_server[0]
}

moved {
  from = aws_security_group.first_server
  to   = aws_security_group.first_server[0]
}

moved {
  from = aws_security_group.second_server
  to   = aws_security_group.second_server[0]
}

moved {
  from = aws_vpc_security_group_egress_rule.icmp_echo_to_second
  to   = aws_vpc_security_group_egress_rule.icmp_echo_to_second[0]
}

moved {
  from = aws_vpc_security_group_ingress_rule.icmp_echo_from_first
  to   = aws_vpc_security_group_ingress_rule.icmp_echo_from_first[0]
}

# A mesh (mesh_size = N) with a mocked AWS provider: N servers from the latency AMI at fixed
# private IPs, each watching every other one by Name tag and IP; one security group.
#   cd terraform && terraform init -plugin-dir=/opt/tf-plugins && terraform test

mock_provider "aws" {
  mock_data "aws_vpc" {
    defaults = {
      id = "vpc-0a1b2c3d4e5f60718"
    }
  }

  mock_data "aws_subnets" {
    defaults = {
      ids = ["subnet-0aaaaaaaaaaaaaaaa"]
    }
  }

  mock_data "aws_subnet" {
    defaults = {
      cidr_block = "10.0.1.0/24"
    }
  }
}

override_resource {
  target = aws_security_group.mesh[0]
  values = {
    id = "sg-0e5e5e000000000aa"
  }
}

override_resource {
  target = module.mesh[0].aws_instance.this
  values = {
    public_ip = "198.51.100.101"
  }
}

override_resource {
  target = module.mesh[1].aws_instance.this
  values = {
    public_ip = "198.51.100.102"
  }
}

override_resource {
  target = module.mesh[2].aws_instance.this
  values = {
    public_ip = "198.51.100.103"
  }
}

override_resource {
  target = module.mesh[3].aws_instance.this
  values = {
    public_ip = "198.51.100.104"
  }
}

override_resource {
  target = module.mesh[4].aws_instance.this
  values = {
    public_ip = "198.51.100.105"
  }
}

variables {
  ami_id_first_server = "ami-0123456789abcdef0"
  allowed_cidrs       = ["198.51.100.7/32", "203.0.113.0/24"]
  mesh_size           = 3
}

run "mesh_of_3_each_watches_both_others" {
  command = apply

  assert {
    condition     = [for m in module.mesh : m.private_ip] == ["10.0.1.10", "10.0.1.11", "10.0.1.12"]
    error_message = "The servers must get the fixed IPs 10.0.1.10-12 (hosts 10 on of the subnet)."
  }

  assert {
    condition = [for u in module.mesh_user_data.user_data : regex("\ntarget='([^']*)'\n", u)[0]] == [
      "latency-2=10.0.1.11,latency-3=10.0.1.12",
      "latency-1=10.0.1.10,latency-3=10.0.1.12",
      "latency-1=10.0.1.10,latency-2=10.0.1.11",
    ]
    error_message = "Each server's LATENCY_TARGET must name both other servers, by Name tag and private IP, and not itself."
  }

  # Every command line of each script, by its first word: the same as the pair's.
  assert {
    condition = alltrue([for u in module.mesh_user_data.user_data : [
      for l in split("\n", u) : split(" ", trimspace(l))[0]
      if trimspace(l) != "" && !startswith(trimspace(l), "#")
      ] == [
      "set", "conf=/etc/default/latency", regex("\n(target=[^\n]*)\n", u)[0],
      "if", "sed", "else", "printf", "fi",
      "systemctl",
    ]])
    error_message = "A mesh server's user_data must only write LATENCY_TARGET and restart latency."
  }

  assert {
    condition = (
      length(module.first_server) == 0 && length(module.second_server) == 0 &&
      length(aws_security_group.first_server) == 0 && length(aws_security_group.second_server) == 0 &&
      length(data.aws_ami.ubuntu) == 0
    )
    error_message = "A mesh must not build the pair."
  }
}

run "mesh_security_group_allows_exactly_the_group" {
  command = apply

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.icmp_echo_within_mesh[0].security_group_id == "sg-0e5e5e000000000aa" &&
      aws_vpc_security_group_ingress_rule.icmp_echo_within_mesh[0].referenced_security_group_id == "sg-0e5e5e000000000aa" &&
      aws_vpc_security_group_ingress_rule.icmp_echo_within_mesh[0].cidr_ipv4 == null &&
      aws_vpc_security_group_ingress_rule.icmp_echo_within_mesh[0].cidr_ipv6 == null &&
      aws_vpc_security_group_ingress_rule.icmp_echo_within_mesh[0].ip_protocol == "icmp" &&
      aws_vpc_security_group_ingress_rule.icmp_echo_within_mesh[0].from_port == 8 &&
      aws_vpc_security_group_ingress_rule.icmp_echo_within_mesh[0].to_port == 0
    )
    error_message = "ICMP echo request (type 8, code 0) must come in from the mesh's own group only."
  }

  assert {
    condition = (
      aws_vpc_security_group_egress_rule.icmp_echo_within_mesh[0].security_group_id == "sg-0e5e5e000000000aa" &&
      aws_vpc_security_group_egress_rule.icmp_echo_within_mesh[0].referenced_security_group_id == "sg-0e5e5e000000000aa" &&
      aws_vpc_security_group_egress_rule.icmp_echo_within_mesh[0].cidr_ipv4 == null &&
      aws_vpc_security_group_egress_rule.icmp_echo_within_mesh[0].ip_protocol == "icmp" &&
      aws_vpc_security_group_egress_rule.icmp_echo_within_mesh[0].from_port == 8
    )
    error_message = "The only egress must be ICMP echo request to the mesh's own group."
  }

  assert {
    condition = (
      toset([for r in aws_vpc_security_group_ingress_rule.latency_api : r.cidr_ipv4]) == toset(["198.51.100.7/32", "203.0.113.0/24"]) &&
      alltrue([for r in aws_vpc_security_group_ingress_rule.latency_api :
      r.security_group_id == "sg-0e5e5e000000000aa" && r.ip_protocol == "tcp" && r.from_port == 5000 && r.to_port == 5000])
    )
    error_message = "TCP 5000 must be open to exactly allowed_cidrs on the mesh's group."
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.ssh_first) == 0 && length(aws_vpc_security_group_ingress_rule.ssh_second) == 0
    error_message = "SSH must be closed by default (ssh_cidrs = [])."
  }
}

run "mesh_outputs_list_every_server" {
  command = apply

  assert {
    condition = output.latency_urls == [
      "http://198.51.100.101:5000/latency", "http://198.51.100.102:5000/latency", "http://198.51.100.103:5000/latency",
    ]
    error_message = "latency_urls must list http://PUBLIC_IP:5000/latency of each server, in order."
  }

  assert {
    condition     = output.prometheus_targets == ["198.51.100.101:5000", "198.51.100.102:5000", "198.51.100.103:5000"]
    error_message = "prometheus_targets must list PUBLIC_IP:5000 of each server, in order."
  }

  assert {
    condition     = output.latency_url == "http://198.51.100.101:5000/latency" && output.results_url == "http://198.51.100.101:5000/latency-results"
    error_message = "latency_url and results_url must be server 1's."
  }

  assert {
    condition = (
      output.first_server_public_ip == null && output.first_server_private_ip == null &&
      output.second_server_public_ip == null && output.second_server_private_ip == null
    )
    error_message = "The pair's IP outputs must be null for a mesh."
  }
}

run "mesh_of_5_each_names_every_peer_once_never_itself" {
  command = apply

  variables {
    mesh_size      = 5
    ssh_cidrs      = ["198.51.100.7/32"]
    ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiscU7P7Cc5zv0RNXOdSmZuuaonPpv+wqItahXd3MEr latency-test"
  }

  assert {
    condition     = [for m in module.mesh : m.private_ip] == ["10.0.1.10", "10.0.1.11", "10.0.1.12", "10.0.1.13", "10.0.1.14"]
    error_message = "The five servers must get the fixed IPs 10.0.1.10-14."
  }

  # Each script's targets, as a list of NAME=IP: exactly the four others, each once.
  assert {
    condition = alltrue([for i, u in module.mesh_user_data.user_data :
      length(split(",", regex("\ntarget='([^']*)'\n", u)[0])) == 4 &&
      toset(split(",", regex("\ntarget='([^']*)'\n", u)[0])) == toset([
        for j in range(5) : "latency-${j + 1}=10.0.1.${10 + j}" if j != i
      ])
    ])
    error_message = "Each of the five servers' LATENCY_TARGET must name every other server once, and never itself."
  }

  assert {
    condition     = output.prometheus_targets == [for n in range(1, 6) : "198.51.100.10${n}:5000"]
    error_message = "prometheus_targets must list all five servers."
  }

  assert {
    condition = (
      [for r in aws_vpc_security_group_ingress_rule.ssh_first : r.cidr_ipv4] == ["198.51.100.7/32"] &&
      alltrue([for r in aws_vpc_security_group_ingress_rule.ssh_first : r.security_group_id == "sg-0e5e5e000000000aa" && r.from_port == 22 && r.to_port == 22]) &&
      length(aws_vpc_security_group_ingress_rule.ssh_second) == 0 &&
      module.ssh.key_name == "latency-key"
    )
    error_message = "SSH must be open to exactly ssh_cidrs on the mesh's group, with the key pair registered."
  }
}

run "mesh_of_50_is_accepted" {
  command = plan

  variables {
    mesh_size = 50
  }

  assert {
    condition     = length(module.mesh) == 50 && module.mesh_user_data.user_data[49] != null
    error_message = "A mesh of 50 must plan 50 servers."
  }
}

run "mesh_fills_a_small_subnet_up_to_its_last_usable_address" {
  command = plan

  override_data {
    target = data.aws_subnet.mesh[0]
    values = {
      cidr_block = "10.0.1.0/28"
    }
  }

  variables {
    mesh_size = 5 # hosts 10-14; 15 is the subnet's broadcast address, kept by AWS
  }
}

run "rejects_a_mesh_past_the_subnet" {
  command = plan

  override_data {
    target = data.aws_subnet.mesh[0]
    values = {
      cidr_block = "10.0.1.0/28"
    }
  }

  variables {
    mesh_size = 6
  }

  expect_failures = [data.aws_subnet.mesh]
}

run "rejects_a_mesh_of_one" {
  command = plan
  variables {
    mesh_size = 1
  }
  expect_failures = [var.mesh_size]
}

run "rejects_a_mesh_of_51" {
  command = plan
  variables {
    mesh_size = 51
  }
  expect_failures = [var.mesh_size]
}

run "rejects_a_fractional_mesh" {
  command = plan
  variables {
    mesh_size = 2.5
  }
  expect_failures = [var.mesh_size]
}

run "rejects_a_host_offset_in_the_reserved_addresses" {
  command = plan
  variables {
    mesh_host_offset = 3
  }
  expect_failures = [var.mesh_host_offset]
}

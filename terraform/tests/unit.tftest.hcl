# Plan/apply-level checks with a mocked AWS provider: no credentials, no network.
#   cd terraform && terraform init -plugin-dir=/opt/tf-plugins && terraform test

mock_provider "aws" {
  mock_data "aws_vpc" {
    defaults = {
      id = "vpc-0a1b2c3d4e5f60718"
    }
  }

  mock_data "aws_subnets" {
    defaults = {
      ids = ["subnet-0bbbbbbbbbbbbbbbb", "subnet-0aaaaaaaaaaaaaaaa"]
    }
  }

  mock_data "aws_ami" {
    defaults = {
      id = "ami-0c0ffee0c0ffee000"
    }
  }
}

override_resource {
  target = aws_security_group.first_server[0]
  values = {
    id = "sg-0f1257000000000aa"
  }
}

override_resource {
  target = aws_security_group.second_server[0]
  values = {
    id = "sg-05ec0d000000000bb"
  }
}

override_resource {
  target = module.first_server[0].aws_instance.this
  values = {
    id         = "i-0f1257000000000aa"
    private_ip = "172.31.10.11"
    public_ip  = "198.51.100.11"
  }
}

override_resource {
  target = module.second_server[0].aws_instance.this
  values = {
    id         = "i-05ec0d000000000bb"
    private_ip = "172.31.20.22"
    public_ip  = "198.51.100.22"
  }
}

variables {
  ami_id_first_server = "ami-0123456789abcdef0"
  allowed_cidrs       = ["198.51.100.7/32", "203.0.113.0/24"]
}

run "user_data_targets_second_server_and_does_nothing_else" {
  command = apply

  assert {
    condition     = startswith(local.first_server_user_data, "#!/bin/bash\n")
    error_message = "user_data must be a bash script (#!/bin/bash first)."
  }

  assert {
    condition     = strcontains(local.first_server_user_data, "target='172.31.20.22'")
    error_message = "user_data must carry the second server's private IP (172.31.20.22)."
  }

  # Every command line of the script, by its first word: set -euo pipefail, the
  # LATENCY_TARGET write to /etc/default/latency, the restart; nothing else.
  assert {
    condition = [
      for l in split("\n", local.first_server_user_data) : split(" ", trimspace(l))[0]
      if trimspace(l) != "" && !startswith(trimspace(l), "#")
      ] == [
      "set", "conf=/etc/default/latency", "target='172.31.20.22'",
      "if", "sed", "else", "printf", "fi",
      "systemctl",
    ]
    error_message = "user_data must only write LATENCY_TARGET and restart latency."
  }

  assert {
    condition     = strcontains(local.first_server_user_data, "set -euo pipefail\n")
    error_message = "user_data must run with set -euo pipefail."
  }

  assert {
    condition     = strcontains(local.first_server_user_data, "\nsystemctl restart latency\n")
    error_message = "user_data must end by restarting latency."
  }

}

run "port_5000_open_exactly_to_allowed_cidrs" {
  command = apply

  assert {
    condition     = toset([for r in aws_vpc_security_group_ingress_rule.latency_api : r.cidr_ipv4]) == toset(["198.51.100.7/32", "203.0.113.0/24"])
    error_message = "TCP 5000 must be open to exactly allowed_cidrs."
  }

  assert {
    condition = alltrue([
      for r in aws_vpc_security_group_ingress_rule.latency_api :
      r.ip_protocol == "tcp" && r.from_port == 5000 && r.to_port == 5000 && r.security_group_id == "sg-0f1257000000000aa"
    ])
    error_message = "The API rules must be TCP 5000 on the first server's group."
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.ssh_first) == 0 && length(aws_vpc_security_group_ingress_rule.ssh_second) == 0
    error_message = "SSH must be closed by default (ssh_cidrs = [])."
  }
}

run "icmp_only_from_first_server_group" {
  command = apply

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.icmp_echo_from_first[0].security_group_id == "sg-05ec0d000000000bb" &&
      aws_vpc_security_group_ingress_rule.icmp_echo_from_first[0].referenced_security_group_id == "sg-0f1257000000000aa" &&
      aws_vpc_security_group_ingress_rule.icmp_echo_from_first[0].cidr_ipv4 == null &&
      aws_vpc_security_group_ingress_rule.icmp_echo_from_first[0].cidr_ipv6 == null
    )
    error_message = "The second server must accept ICMP only from the first server's security group."
  }

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.icmp_echo_from_first[0].ip_protocol == "icmp" &&
      aws_vpc_security_group_ingress_rule.icmp_echo_from_first[0].from_port == 8 &&
      aws_vpc_security_group_ingress_rule.icmp_echo_from_first[0].to_port == 0
    )
    error_message = "The second server's only ingress must be ICMP echo request (type 8, code 0)."
  }

  assert {
    condition = (
      aws_vpc_security_group_egress_rule.icmp_echo_to_second[0].security_group_id == "sg-0f1257000000000aa" &&
      aws_vpc_security_group_egress_rule.icmp_echo_to_second[0].referenced_security_group_id == "sg-05ec0d000000000bb" &&
      aws_vpc_security_group_egress_rule.icmp_echo_to_second[0].ip_protocol == "icmp" &&
      aws_vpc_security_group_egress_rule.icmp_echo_to_second[0].cidr_ipv4 == null
    )
    error_message = "The first server's only egress must be ICMP echo to the second server's group."
  }
}

run "outputs_are_ready_to_paste" {
  command = apply

  assert {
    condition     = output.latency_url == "http://198.51.100.11:5000/latency"
    error_message = "latency_url must be http://<first public IP>:5000/latency."
  }

  assert {
    condition     = output.results_url == "http://198.51.100.11:5000/latency-results"
    error_message = "results_url must be http://<first public IP>:5000/latency-results."
  }

  assert {
    condition = (
      output.first_server_public_ip == "198.51.100.11" && output.first_server_private_ip == "172.31.10.11" &&
      output.second_server_public_ip == "198.51.100.22" && output.second_server_private_ip == "172.31.20.22"
    )
    error_message = "The four IP outputs must be the servers' addresses."
  }

  assert {
    condition     = output.latency_urls == ["http://198.51.100.11:5000/latency"]
    error_message = "latency_urls must list the first server's URL only: the second runs no latency."
  }

  assert {
    condition     = output.prometheus_targets == ["198.51.100.11:5000"]
    error_message = "prometheus_targets must list the first server's IP:5000 only."
  }

  assert {
    condition     = length(module.mesh) == 0 && length(aws_security_group.mesh) == 0 && length(data.aws_subnet.mesh) == 0
    error_message = "Without mesh_size no mesh must be built."
  }
}

run "second_server_uses_latest_ubuntu_and_default_network" {
  command = plan

  assert {
    condition     = data.aws_ami.ubuntu[0].owners == tolist(["099720109477"]) && data.aws_ami.ubuntu[0].most_recent
    error_message = "The second server's AMI must be the most recent one owned by Canonical."
  }

  assert {
    condition     = contains(one([for f in data.aws_ami.ubuntu[0].filter : f.values if f.name == "name"]), "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*")
    error_message = "The second server's AMI filter must select Ubuntu 24.04 (noble) amd64."
  }

  assert {
    condition     = local.second_ami == "ami-0c0ffee0c0ffee000" && local.vpc_id == "vpc-0a1b2c3d4e5f60718" && local.subnet_id == "subnet-0aaaaaaaaaaaaaaaa"
    error_message = "Without overrides, the default VPC, its first default subnet and the Ubuntu data source must be used."
  }
}

run "network_and_second_ami_are_overridable" {
  command = plan

  variables {
    vpc_id               = "vpc-0123456789abcdef0"
    subnet_id            = "subnet-0123456789abcdef0"
    ami_id_second_server = "ami-0fedcba9876543210"
  }

  assert {
    condition     = length(data.aws_vpc.default) == 0 && length(data.aws_subnets.selected) == 0 && length(data.aws_ami.ubuntu) == 0
    error_message = "Given vpc_id, subnet_id and ami_id_second_server, no lookup must happen."
  }

  assert {
    condition     = local.subnet_id == "subnet-0123456789abcdef0" && local.second_ami == "ami-0fedcba9876543210"
    error_message = "The overrides must be used."
  }
}

run "ssh_key_and_cidrs_when_given" {
  command = apply

  variables {
    ssh_cidrs      = ["198.51.100.7/32"]
    ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiscU7P7Cc5zv0RNXOdSmZuuaonPpv+wqItahXd3MEr latency-test"
  }

  assert {
    condition     = module.ssh.key_name == "latency-key"
    error_message = "The public key must be registered as the key pair latency-key."
  }

  assert {
    condition = (
      [for r in aws_vpc_security_group_ingress_rule.ssh_first : r.cidr_ipv4] == ["198.51.100.7/32"] &&
      [for r in aws_vpc_security_group_ingress_rule.ssh_second : r.cidr_ipv4] == ["198.51.100.7/32"] &&
      alltrue([for r in aws_vpc_security_group_ingress_rule.ssh_first : r.from_port == 22 && r.to_port == 22])
    )
    error_message = "SSH must be open to exactly ssh_cidrs on both servers."
  }
}

run "no_key_pair_by_default" {
  command = plan

  assert {
    condition     = module.ssh.key_name == null
    error_message = "Without ssh_public_key no key pair must be registered."
  }
}

# --- bad inputs fail validation ------------------------------------------------

run "rejects_empty_allowed_cidrs" {
  command = plan
  variables {
    allowed_cidrs = []
  }
  expect_failures = [var.allowed_cidrs]
}

run "rejects_open_allowed_cidrs" {
  command = plan
  variables {
    allowed_cidrs = ["0.0.0.0/0"]
  }
  expect_failures = [var.allowed_cidrs]
}

run "accepts_open_allowed_cidrs_when_explicit" {
  command = plan
  variables {
    allowed_cidrs    = ["0.0.0.0/0"]
    allow_open_cidrs = true
  }
}

run "rejects_malformed_cidr" {
  command = plan
  variables {
    allowed_cidrs = ["198.51.100.7"]
  }
  expect_failures = [var.allowed_cidrs]
}

run "rejects_open_ssh" {
  command = plan
  variables {
    ssh_cidrs = ["0.0.0.0/0"]
  }
  expect_failures = [var.ssh_cidrs]
}

run "rejects_malformed_ssh_key" {
  command = plan
  variables {
    ssh_public_key = "not-a-key"
  }
  expect_failures = [var.ssh_public_key]
}

run "rejects_private_key_as_ssh_key" {
  command = plan
  variables {
    ssh_public_key = "-----BEGIN OPENSSH PRIVATE KEY-----"
  }
  expect_failures = [var.ssh_public_key]
}

run "rejects_malformed_first_ami" {
  command = plan
  variables {
    ami_id_first_server = "ubuntu-24.04"
  }
  expect_failures = [var.ami_id_first_server]
}

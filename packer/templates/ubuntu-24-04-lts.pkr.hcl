# Builds the AMI of the first server: the latest Ubuntu 24.04 LTS (amd64) from
# Canonical, with the latency .deb installed and its unit enabled.
#
#   packer init templates && packer build templates      (from packer/)
#
# The built AMI id is what terraform's var.ami_id_first_server takes.

locals {
  # Relative deb_path values are taken from the working directory, as Packer does.
  deb_path  = var.deb_path != "" ? var.deb_path : "${path.root}/../../dist/latency_${var.latency_version}_amd64.deb"
  timestamp = formatdate("YYYYMMDD-hhmmss", timestamp())
}

source "amazon-ebs" "ubuntu" {
  region        = var.region
  instance_type = var.instance_type
  ami_name      = "${var.ami_name_prefix}-${var.latency_version}-ubuntu-24.04-amd64-${local.timestamp}"
  ami_description = "latency ${var.latency_version} on Ubuntu 24.04 LTS (amd64)"

  # The newest Ubuntu 24.04 LTS (noble) amd64 server image published by Canonical.
  source_ami_filter {
    filters = {
      name                = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
      architecture        = "x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["099720109477"] # Canonical
    most_recent = true
  }

  ssh_username = "ubuntu"

  # The build instance requires IMDSv2 tokens, and so does every instance
  # launched from the AMI (imds_support = "v2.0").
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  imds_support = "v2.0"

  # Encrypted root volume, on the build instance and in the AMI's snapshot.
  launch_block_device_mappings {
    device_name           = "/dev/sda1"
    volume_type           = "gp3"
    volume_size           = var.volume_size
    encrypted             = true
    kms_key_id            = var.kms_key_id
    delete_on_termination = true
  }
  encrypt_boot = true
  kms_key_id   = var.kms_key_id

  tags = {
    Name            = "latency"
    latency_version = var.latency_version
    base_ami        = "{{ .SourceAMIName }}"
  }
}

build {
  name    = "latency"
  sources = ["source.amazon-ebs.ubuntu"]

  # Let first-boot cloud-init (and its apt runs) finish before installing.
  provisioner "shell" {
    inline = ["cloud-init status --wait >/dev/null || true"]
  }

  provisioner "file" {
    source      = local.deb_path
    destination = "/tmp/latency.deb"
  }

  provisioner "shell" {
    script          = "${path.root}/../scripts/install-latency.sh"
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E {{ .Path }} /tmp/latency.deb"
  }

  provisioner "shell" {
    inline = ["rm -f /tmp/latency.deb"]
  }
}

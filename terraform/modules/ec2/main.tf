# One hardened EC2 instance: IMDSv2 only, encrypted gp3 root volume.
resource "aws_instance" "this" {
  #checkov:skip=CKV2_AWS_41:The servers call no AWS API, so they get no IAM role (least privilege).
  #checkov:skip=CKV_AWS_88:Both servers need a public IP (the API of the first, SSH to both); their security groups admit only allowed_cidrs and ssh_cidrs.
  ami                         = var.ami_id
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  private_ip                  = var.private_ip
  vpc_security_group_ids      = var.security_group_ids
  key_name                    = var.key_name
  associate_public_ip_address = var.associate_public_ip_address
  monitoring                  = var.detailed_monitoring
  ebs_optimized               = true

  user_data                   = var.user_data
  user_data_replace_on_change = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size
    encrypted             = true
    delete_on_termination = true
  }

  tags = {
    Name = var.name
  }
}

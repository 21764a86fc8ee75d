# The instance module both servers use: IMDSv2 only, encrypted gp3 root volume.

mock_provider "aws" {}

run "instance_is_hardened" {
  command = apply

  module {
    source = "./modules/ec2"
  }

  variables {
    name               = "test"
    ami_id             = "ami-0123456789abcdef0"
    subnet_id          = "subnet-0123456789abcdef0"
    security_group_ids = ["sg-0123456789abcdef0"]
    user_data          = "#!/bin/bash\ntrue\n"
  }

  assert {
    condition     = aws_instance.this.metadata_options[0].http_tokens == "required" && aws_instance.this.metadata_options[0].http_endpoint == "enabled"
    error_message = "IMDSv2 must be required (http_tokens = required)."
  }

  assert {
    condition     = aws_instance.this.metadata_options[0].http_put_response_hop_limit == 1
    error_message = "The IMDS hop limit must be 1."
  }

  assert {
    condition     = aws_instance.this.root_block_device[0].encrypted && aws_instance.this.root_block_device[0].volume_type == "gp3"
    error_message = "The root volume must be encrypted gp3."
  }

  assert {
    condition     = aws_instance.this.vpc_security_group_ids == toset(["sg-0123456789abcdef0"])
    error_message = "The instance must carry exactly the given security groups."
  }

  assert {
    condition     = aws_instance.this.user_data_replace_on_change
    error_message = "A new user_data must replace the instance (it only runs at first boot)."
  }
}

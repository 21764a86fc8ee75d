terraform {
  # 1.9+: variable validations may refer to other variables.
  required_version = ">= 1.9.0"

  # Only the aws provider, so `terraform init -plugin-dir=/opt/tf-plugins` works offline.
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40.0, < 6.0.0"
    }
  }
}

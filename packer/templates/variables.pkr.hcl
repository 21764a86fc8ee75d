# Inputs of the latency AMI build. Every one has a safe default except the
# region, which comes from AWS_REGION / AWS_DEFAULT_REGION when left empty.

variable "region" {
  type        = string
  description = "AWS region to build the AMI in; empty means AWS_REGION / AWS_DEFAULT_REGION."
  default     = env("AWS_REGION")
}

variable "instance_type" {
  type        = string
  description = "Instance type of the temporary build instance (amd64)."
  default     = "t3.micro"
}

variable "latency_version" {
  type        = string
  description = "Version of the latency package baked into the AMI; also names the default .deb path and the AMI."
  default     = "0.1.0"

  validation {
    condition     = can(regex("^[0-9A-Za-z.+~-]+$", var.latency_version))
    error_message = "The latency_version must be a Debian version string such as 0.1.0."
  }
}

variable "deb_path" {
  type        = string
  description = "Path of the built .deb on this machine. Empty means dist/latency_<latency_version>_amd64.deb at the repository root (resolved from the template folder, so any working directory works)."
  default     = ""
}

variable "volume_size" {
  type        = number
  description = "Size in GiB of the encrypted gp3 root volume of the AMI."
  default     = 8
}

variable "kms_key_id" {
  type        = string
  description = "KMS key (id, ARN or alias) that encrypts the AMI's root volume; empty means the account's default EBS key (aws/ebs)."
  default     = ""
}

variable "ami_name_prefix" {
  type        = string
  description = "Prefix of the AMI name; a timestamp and the version are appended."
  default     = "latency"
}

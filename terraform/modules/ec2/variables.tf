variable "name" {
  type        = string
  description = "Name tag of the instance."
}

variable "ami_id" {
  type        = string
  description = "AMI the instance boots."
}

variable "instance_type" {
  type        = string
  description = "EC2 instance type."
  default     = "t3.micro"
}

variable "subnet_id" {
  type        = string
  description = "Subnet the instance runs in."
}

variable "private_ip" {
  type        = string
  description = "Fixed private IPv4 address in subnet_id; null lets AWS pick one."
  default     = null
}

variable "security_group_ids" {
  type        = list(string)
  description = "Security groups of the instance's network interface."

  validation {
    condition     = length(var.security_group_ids) > 0
    error_message = "The security_group_ids must name at least one security group."
  }
}

variable "key_name" {
  type        = string
  description = "EC2 key pair for SSH; null means none."
  default     = null
}

variable "user_data" {
  type        = string
  description = "First-boot script (cloud-init user_data); null means none. A change replaces the instance."
  default     = null
}

variable "root_volume_size" {
  type        = number
  description = "Size in GiB of the encrypted gp3 root volume."
  default     = 8
}

variable "detailed_monitoring" {
  type        = bool
  description = "Enable CloudWatch detailed (1-minute) monitoring."
  default     = true
}

variable "associate_public_ip_address" {
  type        = bool
  description = "Give the instance a public IPv4 address (the URLs and SSH use it)."
  default     = true
}

variable "region" {
  type        = string
  description = "AWS region both servers run in."
  default     = "eu-west-1"
}

variable "mesh_size" {
  type        = number
  description = "Number of servers of a mesh, each running latency and watching all the others; null (the default) builds the pair: a first server watching a second."
  default     = null

  validation {
    condition     = var.mesh_size == null ? true : floor(var.mesh_size) == var.mesh_size && var.mesh_size >= 2 && var.mesh_size <= 50
    error_message = "The mesh_size must be a whole number from 2 to 50 (at least 2 servers to watch each other, at most 50), or null for the pair."
  }
}

variable "mesh_host_offset" {
  type        = number
  description = "With mesh_size: host number in the subnet of the first server's fixed private IP (cidrhost); server i gets offset + i - 1. Move it when these addresses are taken."
  default     = 10

  validation {
    condition     = floor(var.mesh_host_offset) == var.mesh_host_offset && var.mesh_host_offset >= 4
    error_message = "The mesh_host_offset must be a whole number of at least 4: AWS keeps the first four addresses of a subnet."
  }
}

variable "ami_id_first_server" {
  type        = string
  description = "AMI of the first server, or of every server of a mesh: the one `packer build` printed (Ubuntu 24.04 with latency installed)."

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id_first_server))
    error_message = "The ami_id_first_server must be an AMI id such as ami-0123456789abcdef0 (the one printed by `packer build`)."
  }
}

variable "ami_id_second_server" {
  type        = string
  description = "AMI of the second server; null means the latest Ubuntu 24.04 LTS amd64 image from Canonical."
  default     = null

  validation {
    condition     = var.ami_id_second_server == null || can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id_second_server))
    error_message = "The ami_id_second_server must be null or an AMI id such as ami-0123456789abcdef0."
  }
}

variable "allowed_cidrs" {
  type        = list(string)
  description = "IPv4 CIDRs allowed to reach the HTTP API on TCP 5000, e.g. [\"198.51.100.7/32\"]. Required; 0.0.0.0/0 needs allow_open_cidrs = true."

  validation {
    condition     = length(var.allowed_cidrs) > 0
    error_message = "The allowed_cidrs must list at least one CIDR, e.g. [\"198.51.100.7/32\"] (your own address)."
  }

  validation {
    condition     = alltrue([for c in var.allowed_cidrs : can(cidrnetmask(c))])
    error_message = "Every entry of allowed_cidrs must be an IPv4 CIDR such as 198.51.100.7/32."
  }

  validation {
    condition     = var.allow_open_cidrs || !contains(var.allowed_cidrs, "0.0.0.0/0")
    error_message = "The allowed_cidrs contain 0.0.0.0/0, which opens port 5000 to the whole internet; set allow_open_cidrs = true if you really mean it."
  }
}

variable "ssh_cidrs" {
  type        = list(string)
  description = "IPv4 CIDRs allowed to reach SSH (TCP 22) on both servers. Default: none."
  default     = []

  validation {
    condition     = alltrue([for c in var.ssh_cidrs : can(cidrnetmask(c))])
    error_message = "Every entry of ssh_cidrs must be an IPv4 CIDR such as 198.51.100.7/32."
  }

  validation {
    condition     = var.allow_open_cidrs || !contains(var.ssh_cidrs, "0.0.0.0/0")
    error_message = "The ssh_cidrs contain 0.0.0.0/0, which opens SSH to the whole internet; set allow_open_cidrs = true if you really mean it."
  }
}

variable "allow_open_cidrs" {
  type        = bool
  description = "Allow 0.0.0.0/0 in allowed_cidrs and ssh_cidrs. Off by default."
  default     = false
}

variable "ssh_public_key" {
  type        = string
  description = "Your OpenSSH public key (one line, e.g. the content of ~/.ssh/id_ed25519.pub), registered as an EC2 key pair on both servers. Null: no key pair."
  default     = null

  validation {
    condition     = var.ssh_public_key == null || can(regex("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}( [^\\n]*)?$", trimspace(var.ssh_public_key)))
    error_message = "The ssh_public_key must be one OpenSSH public key line (ssh-ed25519, ssh-rsa or ecdsa-sha2-*), such as the content of ~/.ssh/id_ed25519.pub; never a private key."
  }
}

variable "instance_type" {
  type        = string
  description = "Instance type of both servers (amd64)."
  default     = "t3.micro"
}

variable "root_volume_size" {
  type        = number
  description = "Size in GiB of each server's encrypted gp3 root volume (at least the AMI's snapshot size)."
  default     = 8

  validation {
    condition     = var.root_volume_size >= 8 && var.root_volume_size <= 1024
    error_message = "The root_volume_size must be between 8 and 1024 GiB."
  }
}

variable "detailed_monitoring" {
  type        = bool
  description = "Enable 1-minute CloudWatch detailed monitoring on both servers (small extra cost)."
  default     = true
}

variable "vpc_id" {
  type        = string
  description = "VPC to run in; null means the region's default VPC."
  default     = null
}

variable "subnet_id" {
  type        = string
  description = "Subnet of both servers (in vpc_id); null means the first default subnet of the VPC. It must give instances a public IP for the URLs to work."
  default     = null
}

variable "name_prefix" {
  type        = string
  description = "Prefix of the Name tag of every resource."
  default     = "latency"

  validation {
    condition     = can(regex("^[a-z0-9-]{1,32}$", var.name_prefix))
    error_message = "The name_prefix must be 1-32 lowercase letters, digits or dashes."
  }
}

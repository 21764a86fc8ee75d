variable "name" {
  type        = string
  description = "Name of the EC2 key pair."
}

variable "public_key" {
  type        = string
  description = "OpenSSH public key to register (one line); null registers nothing. Only the public half ever reaches Terraform or its state."
  default     = null

  validation {
    condition     = var.public_key == null || !can(regex("PRIVATE KEY", var.public_key))
    error_message = "The public_key is a private key: pass the .pub file's content instead."
  }
}

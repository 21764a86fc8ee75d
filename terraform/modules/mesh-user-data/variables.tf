variable "servers" {
  type = list(object({
    name       = string
    private_ip = string
  }))
  description = "Every server of the mesh: its Name tag (the target NAME its peers' results lines carry) and private IPv4 address."

  validation {
    condition     = length(distinct([for s in var.servers : s.name])) == length(var.servers)
    error_message = "Each server of the mesh needs a name of its own: a peer is told apart by it."
  }
}

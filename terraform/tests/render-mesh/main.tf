# Test-only root: the user_data of each server of a mesh, rendered by the module the mesh uses
# (modules/mesh-user-data), for addresses the test chooses. No provider, no resources:
#   terraform -chdir=tests/render-mesh init && terraform -chdir=tests/render-mesh apply \
#     -var 'servers=[{name="latency-1",private_ip="203.0.113.11"},...]' && terraform output -json user_data
variable "servers" {
  type = list(object({
    name       = string
    private_ip = string
  }))
  description = "Every server of the mesh: name and private IPv4 address."
}

module "mesh_user_data" {
  source = "../../modules/mesh-user-data"

  servers = var.servers
}

output "user_data" {
  description = "One user_data script per server, in the order of servers."
  value       = module.mesh_user_data.user_data
}

# The first-boot script of each server of a mesh: setup.sh with LATENCY_TARGET naming every
# other server once, as NAME=PRIVATE_IP, and never the server itself. No resources, so the
# end-to-end test renders the very scripts EC2 would receive from its own addresses.
output "user_data" {
  description = "One user_data script per server, in the order of servers."
  value = [
    for s in var.servers : templatefile("${path.module}/../../setup.sh", {
      target_ip = join(",", [for p in var.servers : "${p.name}=${p.private_ip}" if p.name != s.name])
    })
  ]
}

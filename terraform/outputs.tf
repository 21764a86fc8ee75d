output "first_server_public_ip" {
  description = "Public IPv4 address of the first server (runs latency); null for a mesh."
  value       = one(module.first_server[*].public_ip)
}

output "first_server_private_ip" {
  description = "Private IPv4 address of the first server; null for a mesh."
  value       = one(module.first_server[*].private_ip)
}

output "second_server_public_ip" {
  description = "Public IPv4 address of the second server (the ping target); null for a mesh."
  value       = one(module.second_server[*].public_ip)
}

output "second_server_private_ip" {
  description = "Private IPv4 address of the second server: the LATENCY_TARGET of the first; null for a mesh."
  value       = one(module.second_server[*].private_ip)
}

output "latency_url" {
  description = "Ready-to-paste URL of the latest latency figures of the first server (of a mesh: of server 1): curl \"$(terraform output -raw latency_url)\"."
  value       = "http://${local.latency_public_ips[0]}:5000/latency"
}

output "results_url" {
  description = "Ready-to-paste URL of the recorded results of the first server (of a mesh: of server 1): curl \"$(terraform output -raw results_url)\"."
  value       = "http://${local.latency_public_ips[0]}:5000/latency-results"
}

output "latency_urls" {
  description = "http://IP:5000/latency of every server that runs latency: the first server, or each server of a mesh in order."
  value       = [for ip in local.latency_public_ips : "http://${ip}:5000/latency"]
}

output "prometheus_targets" {
  description = "IP:5000 of every server that runs latency (public IPs, in order), for a Prometheus static_configs block."
  value       = [for ip in local.latency_public_ips : "${ip}:5000"]
}

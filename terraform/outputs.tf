output "first_server_public_ip" {
  description = "Public IPv4 address of the first server (runs latency)."
  value       = module.first_server.public_ip
}

output "first_server_private_ip" {
  description = "Private IPv4 address of the first server."
  value       = module.first_server.private_ip
}

output "second_server_public_ip" {
  description = "Public IPv4 address of the second server (the ping target)."
  value       = module.second_server.public_ip
}

output "second_server_private_ip" {
  description = "Private IPv4 address of the second server: the LATENCY_TARGET of the first."
  value       = module.second_server.private_ip
}

output "latency_url" {
  description = "Ready-to-paste URL of the latest latency figures: curl \"$(terraform output -raw latency_url)\"."
  value       = "http://${module.first_server.public_ip}:5000/latency"
}

output "results_url" {
  description = "Ready-to-paste URL of the recorded results: curl \"$(terraform output -raw results_url)\"."
  value       = "http://${module.first_server.public_ip}:5000/latency-results"
}

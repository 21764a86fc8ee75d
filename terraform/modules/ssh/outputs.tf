output "key_name" {
  description = "Name of the registered key pair, or null when no public key was given."
  value       = one(aws_key_pair.this[*].key_name)
}

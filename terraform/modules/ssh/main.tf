# Registers the user's existing public key. No private key is generated here, so
# none can end up in the Terraform state.
resource "aws_key_pair" "this" {
  count = var.public_key == null ? 0 : 1

  key_name   = var.name
  public_key = trimspace(var.public_key)

  tags = {
    Name = var.name
  }
}

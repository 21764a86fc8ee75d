provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project   = "latency"
      ManagedBy = "terraform"
    }
  }
}

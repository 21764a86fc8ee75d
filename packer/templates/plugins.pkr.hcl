# Plugins this build needs, pinned to one exact release so that `packer init`
# installs the same code everywhere. Bump deliberately, after a test build.
packer {
  required_version = ">= 1.10.0"

  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = "= 1.8.0"
    }
  }
}

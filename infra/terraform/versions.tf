terraform {
  # `check`-free, `optional()`-free HCL on purpose: `terraform fmt` of the pinned checker
  # (see infra/README.md) parses it, and any Terraform >= 1.5 applies it.
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4, < 3.0"
    }
    local = {
      source  = "hashicorp/local"
      version = ">= 2.4, < 3.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

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
    # time_sleep: IAM grants and new service agents take about a minute to take effect.
    time = {
      source  = "hashicorp/time"
      version = ">= 0.9, < 1.0"
    }
    # random_password: the web app's API key when it is public (stored in Secret Manager).
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5, < 4.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

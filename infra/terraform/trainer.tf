# The trainer: an Artifact Registry repository for its image (and the web app's), its own
# service account, and the Vertex AI custom job spec, rendered to a file for
# `gcloud ai custom-jobs create --config` (Terraform has no resource for one-off custom jobs).

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:Container images hold no user data; Google-managed encryption is enough here. Add kms_key_name where policy requires CMEK.
  project       = var.project_id
  location      = var.region
  repository_id = local.names.image_repository
  format        = "DOCKER"
  description   = "detectflow images: trainer (GPU) and web app"
  labels        = var.labels

  # Keep the 10 newest versions of each image; untagged leftovers go after 30 days.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "delete-old-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "2592000s"
    }
  }

  depends_on = [time_sleep.apis_settle]
}

resource "google_service_account" "trainer" {
  project      = var.project_id
  account_id   = local.names.trainer_account
  display_name = "detectflow: Vertex AI training jobs"

  depends_on = [time_sleep.apis_settle]
}

# Reads datasets, writes runs (checkpoints, exports) in the training bucket.
resource "google_storage_bucket_iam_member" "trainer_training" {
  bucket = google_storage_bucket.training.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.trainer.email}"
}

# Publishes bundles (<name>/<version>/..., then <name>/LATEST, which it overwrites).
resource "google_storage_bucket_iam_member" "trainer_models" {
  bucket = google_storage_bucket.pipeline["models"].name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.trainer.email}"
}

resource "local_file" "trainer_job_spec" {
  filename        = "${path.module}/${var.trainer_job_spec_path}"
  file_permission = "0644"
  content = join("\n", [
    "# Vertex AI CustomJobSpec, rendered by Terraform (infra/terraform/trainer.tf). Run with:",
    "#   gcloud ai custom-jobs create --project=${var.project_id} --region=${var.region} \\",
    "#     --display-name=${var.name_prefix}-train-${var.model_name} --config=THIS_FILE",
    yamlencode(local.trainer_job_spec),
  ])
}

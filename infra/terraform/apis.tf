# The Google APIs this deployment uses. Left enabled on destroy: other things in the project
# may use them too.
locals {
  services = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",     # builds the function containers
    "cloudfunctions.googleapis.com", # Cloud Run functions (2nd gen)
    "run.googleapis.com",
    "pubsub.googleapis.com",
    "storage.googleapis.com",
    "iam.googleapis.com",
    "aiplatform.googleapis.com", # Vertex AI custom jobs (the trainer)
  ])
}

resource "google_project_service" "enabled" {
  for_each           = local.services
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

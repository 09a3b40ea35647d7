# The Google APIs this deployment uses. Left enabled on destroy: other things in the project
# may use them too. Terraform itself needs the Service Usage and Cloud Resource Manager APIs
# before its first plan (to enable the others and to read the project number), so
# docs/deploy-gcp.md enables those two with gcloud first; they are listed here as well so the
# deployment says everything it relies on.
locals {
  services = toset([
    "serviceusage.googleapis.com",
    "cloudresourcemanager.googleapis.com", # project number, project IAM (data.google_project)
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",     # builds the function containers
    "cloudfunctions.googleapis.com", # Cloud Run functions (2nd gen)
    "run.googleapis.com",
    "pubsub.googleapis.com",
    "storage.googleapis.com",
    "iam.googleapis.com",
    "firestore.googleapis.com",      # the image catalog (catalog.tf)
    "cloudscheduler.googleapis.com", # the periodic reconcile pass (reconcile.tf)
    "secretmanager.googleapis.com",  # the public web app's API key (frontend.tf)
    "aiplatform.googleapis.com",     # Vertex AI custom jobs (the trainer)
  ])
}

resource "google_project_service" "enabled" {
  for_each           = local.services
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# An API answers as soon as it is enabled, but its service agent (the Google-managed account
# that e.g. Pub/Sub mints push tokens with) and IAM on its resources take a while to appear:
# "wait a minute and apply again" was the documented workaround. Everything that creates
# accounts or grants waits on this instead. Re-created (and waited for) when the API list
# changes; a re-apply without changes does not wait.
resource "time_sleep" "apis_settle" {
  create_duration = "60s"
  triggers = {
    services = join(",", sort(tolist(local.services)))
  }

  depends_on = [google_project_service.enabled]
}

# The project number names Google's service agents (Pub/Sub, Cloud Build sources bucket).
data "google_project" "this" {
  project_id = var.project_id
}

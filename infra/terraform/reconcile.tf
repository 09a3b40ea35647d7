# The periodic reconcile pass (issue 10): Cloud Scheduler starts a Cloud Run job that runs
# `detectflow reconcile --stuck` (local.reconcile_command, catalog_schema.tf) in the web app's
# image. It
# finds catalog records stuck in queued/processing for longer than reconcile_older_than_seconds
# and re-drives them (publishes their upload event again; the handlers are idempotent).
#
# A job, not an authenticated HTTP call to the web app (POST /api/admin/reconcile), because it
# needs fewer rights in fewer places:
#   - only the reconcile account may publish to the uploads topic; the web app, which may be
#     public, gets no publisher role and no admin route to guard;
#   - Cloud Scheduler's account may run this one job (roles/run.invoker on the job) and nothing
#     else; a call to a public web app would have to carry the API key, and a Scheduler job
#     keeps its headers in plain text in its configuration;
#   - the pass runs under its own timeout, not an HTTP request's, and does not need the web
#     service to be up or scaled.
# The job runs the web image (it has `detectflow` with the cloud extras), so it exists only when
# frontend_image is set.

locals {
  deploy_reconcile = var.frontend_image != ""
  reconcile_reads  = toset(["uploads", "results"]) # lists uploads, checks for a result
}

resource "google_service_account" "reconcile" {
  project      = var.project_id
  account_id   = local.names.reconcile_account
  display_name = "detectflow: reconcile job (re-drives stuck uploads)"

  depends_on = [time_sleep.apis_settle]
}

resource "google_storage_bucket_iam_member" "reconcile_reads" {
  for_each = local.reconcile_reads

  bucket = google_storage_bucket.pipeline[each.key].name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.reconcile.email}"
}

# Re-driving = publishing the upload's event again.
resource "google_pubsub_topic_iam_member" "reconcile_publishes_uploads" {
  project = var.project_id
  topic   = google_pubsub_topic.topic["uploads"].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.reconcile.email}"
}

resource "google_cloud_run_v2_job" "reconcile" {
  count = local.deploy_reconcile ? 1 : 0

  name                = local.names.reconcile_job
  project             = var.project_id
  location            = var.region
  deletion_protection = false
  labels              = var.labels

  template {
    task_count = 1

    template {
      service_account = google_service_account.reconcile.email
      # Shorter than the schedule's period, so two passes do not overlap; the next tick retries.
      timeout     = "900s"
      max_retries = 0

      containers {
        image   = var.frontend_image
        command = ["detectflow"]
        args    = local.reconcile_command

        resources {
          limits = {
            cpu    = "1"
            memory = "1Gi"
          }
        }

        dynamic "env" {
          for_each = local.pipeline_env
          content {
            name  = env.key
            value = env.value
          }
        }
      }
    }
  }

  depends_on = [
    time_sleep.apis_settle,
    google_storage_bucket_iam_member.reconcile_reads,
    google_pubsub_topic_iam_member.reconcile_publishes_uploads,
    google_project_iam_member.catalog,
  ]
}

# Cloud Scheduler calls the Cloud Run Admin API as this account: it may run the job, nothing else.
resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = local.names.scheduler_account
  display_name = "detectflow: Cloud Scheduler, starts the reconcile job"

  depends_on = [time_sleep.apis_settle]
}

resource "google_cloud_run_v2_job_iam_member" "scheduler_runs_reconcile" {
  count = local.deploy_reconcile ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.reconcile[0].name
  # "Cloud Run Invoker (roles/run.invoker) to execute jobs"
  # (https://cloud.google.com/run/docs/execute/jobs-on-schedule), granted on this job only.
  role   = "roles/run.invoker"
  member = "serviceAccount:${google_service_account.scheduler.email}"
}

resource "google_cloud_scheduler_job" "reconcile" {
  count = local.deploy_reconcile ? 1 : 0

  name        = local.names.reconcile_schedule
  project     = var.project_id
  region      = var.region
  description = "Runs the ${local.names.reconcile_job} Cloud Run job: re-drives uploads stuck in queued/processing."
  schedule    = var.reconcile_schedule
  time_zone   = var.reconcile_time_zone
  # The call only starts an execution (a long-running operation), it does not wait for it.
  attempt_deadline = "60s"

  retry_config {
    retry_count = 1 # the next tick runs the pass again anyway
  }

  http_target {
    http_method = "POST"
    # The Cloud Run Admin API's run method, as in Google's "execute jobs on a schedule" sample
    # (terraform-docs-samples run/jobs_execute_jobs_on_schedule): an OAuth token (a Google API),
    # not an OIDC one (a Cloud Run URL).
    uri = "https://${var.region}-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/${data.google_project.this.number}/jobs/${google_cloud_run_v2_job.reconcile[0].name}:run"

    oauth_token {
      service_account_email = google_service_account.scheduler.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  # With oauth_token set, the API adds an Authorization header to http_target.headers; provider
  # versions before GoogleCloudPlatform/magic-modules#17074 kept it in the state and planned to
  # remove it on every apply. We set no headers, so none of theirs is a change of ours.
  lifecycle {
    ignore_changes = [http_target[0].headers]
  }

  depends_on = [google_cloud_run_v2_job_iam_member.scheduler_runs_reconcile]
}

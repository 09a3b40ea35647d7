# The web app as a Cloud Run service (deployed when var.frontend_image is set; the image is
# built from infra/web.Dockerfile and runs `detectflow up --gcp`). It writes uploads (the bucket
# notification starts the pipeline), reads status, results and the served model's manifest,
# lists and filters through the catalog, and deletes an image on request (upload, work object,
# result, catalog record). A public one requires an API key from Secret Manager.

locals {
  deploy_frontend = var.frontend_image != ""
  # Anyone on the internet may call a public web app: it must check a key.
  frontend_api_key = local.deploy_frontend && var.frontend_public
  frontend_bucket_roles = {
    "uploads/create" = { bucket = "uploads", role = "roles/storage.objectCreator" } # new ids only
    "uploads/read"   = { bucket = "uploads", role = "roles/storage.objectViewer" }  # originals, lists
    "work/read"      = { bucket = "work", role = "roles/storage.objectViewer" }     # "preparing" status
    "results/read"   = { bucket = "results", role = "roles/storage.objectViewer" }
    "models/read"    = { bucket = "models", role = "roles/storage.objectViewer" } # the served manifest
  }
  # DELETE /api/images/{id} removes the image everywhere; delete alone, no overwrite of what
  # another identity wrote (objectUser would allow both).
  frontend_deletes_in = toset(["uploads", "work", "results"])
}

resource "google_service_account" "frontend" {
  project      = var.project_id
  account_id   = local.names.frontend_account
  display_name = "detectflow: web app"

  depends_on = [time_sleep.apis_settle]
}

resource "google_storage_bucket_iam_member" "frontend" {
  for_each = local.frontend_bucket_roles

  bucket = google_storage_bucket.pipeline[each.value.bucket].name
  role   = each.value.role
  member = "serviceAccount:${google_service_account.frontend.email}"
}

resource "google_project_iam_custom_role" "object_deleter" {
  project     = var.project_id
  role_id     = local.names.object_deleter_role
  title       = "detectflow object deleter (${var.name_prefix})"
  description = "Delete objects (granted per bucket): the web app's DELETE /api/images/{id}."
  permissions = ["storage.objects.delete"]

  depends_on = [time_sleep.apis_settle]
}

resource "google_storage_bucket_iam_member" "frontend_deletes" {
  for_each = local.frontend_deletes_in

  bucket = google_storage_bucket.pipeline[each.key].name
  role   = google_project_iam_custom_role.object_deleter.name
  member = "serviceAccount:${google_service_account.frontend.email}"
}

# --- the API key of a public web app ---------------------------------------------------------
# Generated here and kept in Secret Manager; the service reads it as DETECTFLOW_API_KEY from the
# secret (not a plain environment variable, which anyone who can view the service can read).
# Read it with `gcloud secrets versions access latest --secret <output api_key_secret>`. The
# value is also in the Terraform state, like every generated secret: keep the state private.

resource "random_password" "api_key" {
  count = local.frontend_api_key ? 1 : 0

  length  = 40
  special = false # sent in a header and typed into the page: letters and digits only
}

resource "google_secret_manager_secret" "api_key" {
  count = local.frontend_api_key ? 1 : 0

  project   = var.project_id
  secret_id = local.names.api_key_secret
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [time_sleep.apis_settle]
}

resource "google_secret_manager_secret_version" "api_key" {
  count = local.frontend_api_key ? 1 : 0

  secret      = google_secret_manager_secret.api_key[0].id
  secret_data = random_password.api_key[0].result
}

resource "google_secret_manager_secret_iam_member" "frontend_reads_api_key" {
  count = local.frontend_api_key ? 1 : 0

  project   = var.project_id
  secret_id = google_secret_manager_secret.api_key[0].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.frontend.email}"
}

resource "google_cloud_run_v2_service" "frontend" {
  count = local.deploy_frontend ? 1 : 0

  name                = local.names.web_service
  project             = var.project_id
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = false
  labels              = var.labels

  template {
    service_account = google_service_account.frontend.email
    # Requests mostly wait on storage, so several share an instance; but an upload body (up to
    # 32 MiB) is held in memory (Cloud Run's disk is memory too): 8 x 32 MiB fits in 1 GiB.
    max_instance_request_concurrency = 8

    scaling {
      min_instance_count = 0
      max_instance_count = var.frontend_max_instances
    }

    containers {
      image = var.frontend_image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "1Gi"
        }
        cpu_idle = true # billed only while serving requests
      }

      dynamic "env" {
        for_each = merge(
          local.pipeline_env,
          # Cloud Run refuses HTTP/1 request bodies over 32 MiB before the app sees them; the
          # app then advertises (GET /api/limits) and enforces the same bound itself.
          { DETECTFLOW_MAX_REQUEST_BYTES = "33554432" },
          var.frontend_env,
        )
        content {
          name  = env.key
          value = env.value
        }
      }

      # Pinned to the version Terraform wrote, so a new key rolls out a new revision.
      dynamic "env" {
        for_each = local.frontend_api_key ? [google_secret_manager_secret_version.api_key[0].version] : []
        content {
          name = "DETECTFLOW_API_KEY"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.api_key[0].secret_id
              version = env.value
            }
          }
        }
      }

      startup_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 2
        failure_threshold = 15
      }

      liveness_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds = 30
      }
    }
  }

  depends_on = [
    time_sleep.apis_settle,
    google_storage_bucket_iam_member.frontend,
    google_secret_manager_secret_iam_member.frontend_reads_api_key,
  ]
}

resource "google_cloud_run_service_iam_member" "frontend_public" {
  #checkov:skip=CKV_GCP_102:Opt-in (var.frontend_public, default false): a public upload page is the point of some deployments, and a public web app always gets an API key from Secret Manager.
  count = local.frontend_api_key ? 1 : 0

  project  = var.project_id
  location = var.region
  service  = google_cloud_run_v2_service.frontend[0].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

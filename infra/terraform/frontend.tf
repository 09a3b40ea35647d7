# The web app as a Cloud Run service (deployed when var.frontend_image is set; the image is
# built from infra/web.Dockerfile and runs `detectflow up --gcp`). It only talks to storage: it writes uploads (the bucket notification starts the pipeline) and reads status,
# results and the served model's manifest.

locals {
  deploy_frontend = var.frontend_image != ""
  frontend_bucket_roles = {
    "uploads/create" = { bucket = "uploads", role = "roles/storage.objectCreator" } # new ids only
    "uploads/read"   = { bucket = "uploads", role = "roles/storage.objectViewer" }  # originals, lists
    "work/read"      = { bucket = "work", role = "roles/storage.objectViewer" }     # "preparing" status
    "results/read"   = { bucket = "results", role = "roles/storage.objectViewer" }
    "models/read"    = { bucket = "models", role = "roles/storage.objectViewer" } # the served manifest
  }
}

resource "google_service_account" "frontend" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-frontend"
  display_name = "detectflow: web app"
}

resource "google_storage_bucket_iam_member" "frontend" {
  for_each = local.frontend_bucket_roles

  bucket = google_storage_bucket.pipeline[each.value.bucket].name
  role   = each.value.role
  member = "serviceAccount:${google_service_account.frontend.email}"
}

resource "google_cloud_run_v2_service" "frontend" {
  count = local.deploy_frontend ? 1 : 0

  name                = "${var.name_prefix}-web"
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

  depends_on = [google_project_service.enabled, google_storage_bucket_iam_member.frontend]
}

resource "google_cloud_run_service_iam_member" "frontend_public" {
  #checkov:skip=CKV_GCP_102:Opt-in (var.frontend_public, default false): a public upload page is the point of some deployments; set DETECTFLOW_API_KEY (frontend_env) to require a key on /api.
  count = local.deploy_frontend && var.frontend_public ? 1 : 0

  project  = var.project_id
  location = var.region
  service  = google_cloud_run_v2_service.frontend[0].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

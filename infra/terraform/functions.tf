# The pipeline's functions as Cloud Run functions (2nd gen), one per topology function.
#
# Sources: `bash infra/package_function.sh` stages build/functions/<source>/ = the function
# folder (main.py, requirements.txt) + the modules of the `detectflow` package that its main.py
# imports (infra/function_modules.py), since detectflow is not on PyPI. Terraform zips each staged tree and uploads it under its
# content hash, so a code change redeploys and an unchanged tree does not.

data "archive_file" "function_source" {
  for_each = local.function_sources

  type             = "zip"
  source_dir       = "${path.module}/${var.function_source_dir}/${basename(each.value)}"
  output_path      = "${path.module}/${var.function_source_dir}/${basename(each.value)}.zip"
  output_file_mode = "0644"
  excludes         = ["__pycache__", ".pytest_cache"]

  lifecycle {
    precondition {
      condition     = fileexists("${path.module}/${var.function_source_dir}/${basename(each.value)}/main.py")
      error_message = "No staged source for ${each.value}: run `bash infra/package_function.sh` from the repository root first."
    }
  }
}

resource "google_storage_bucket_object" "function_source" {
  for_each = local.function_sources

  bucket = google_storage_bucket.function_sources.name
  name   = "${basename(each.value)}-${data.archive_file.function_source[each.value].output_md5}.zip"
  source = data.archive_file.function_source[each.value].output_path
}

# One identity per function; its roles come from the topology (locals.tf, iam below).
resource "google_service_account" "function" {
  for_each = local.functions

  project      = var.project_id
  account_id   = local.function_accounts[each.key]
  display_name = "detectflow function: ${each.key}"

  depends_on = [time_sleep.apis_settle]
}

# Cloud Build builds the function containers as this account, not the default compute one.
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = local.names.build_account
  display_name = "detectflow: builds the function containers"

  depends_on = [time_sleep.apis_settle]
}

resource "google_project_iam_member" "build" {
  for_each = toset([
    "roles/logging.logWriter",       # build logs
    "roles/artifactregistry.writer", # pushes the built function image (gcf-artifacts)
  ])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_reads_sources" {
  bucket = google_storage_bucket.function_sources.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# A 2nd gen build does not read our bucket: Cloud Functions first copies the source into its own
# gcf-v2-sources-<project number>-<region> bucket, and the build fetches it from there. Without
# read on that bucket every build fails with "Access to bucket gcf-v2-sources-... denied. You
# must grant Storage Object Viewer permission to <build account>"
# (terraform-provider-google#20571). The bucket appears only with the first function, so no
# bucket-level grant can exist before it; the provider's `cloudfunctions2_basic_builder` example
# grants storage at project level. This is that grant, narrowed by an IAM condition to that one
# bucket and its objects (resource names projects/_/buckets/<bucket>[/objects/<object>]).
resource "google_project_iam_member" "build_reads_gcf_sources" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = "serviceAccount:${google_service_account.build.email}"

  condition {
    title       = "gcf-v2-sources only"
    description = "The bucket Cloud Functions (2nd gen) copies function sources into for the build."
    expression  = "resource.name == \"projects/_/buckets/${local.gcf_sources_bucket}\" || resource.name.startsWith(\"projects/_/buckets/${local.gcf_sources_bucket}/\")"
  }
}

locals {
  gcf_sources_bucket = "gcf-v2-sources-${data.google_project.this.number}-${var.region}"
}

# "builder permissions need to stabilize before it can pull the source zip": the
# `cloudfunctions2_basic_builder` example waits 60 s between the build account's grants and the
# function. Waits again whenever the build account is replaced.
resource "time_sleep" "build_grants_settle" {
  create_duration = "60s"
  triggers = {
    build_account = google_service_account.build.email
  }

  depends_on = [
    google_project_iam_member.build,
    google_project_iam_member.build_reads_gcf_sources,
    google_storage_bucket_iam_member.build_reads_sources,
  ]
}

resource "google_cloudfunctions2_function" "function" {
  for_each = local.functions

  name        = local.function_names[each.key]
  project     = var.project_id
  location    = var.region
  description = "detectflow ${each.key}: ${each.value.target} from ${each.value.source}"
  labels      = var.labels

  build_config {
    runtime         = var.function_runtime
    entry_point     = each.value.target
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.function_sources.name
        object = google_storage_bucket_object.function_source[each.value.source].name
      }
    }
  }

  service_config {
    service_account_email = google_service_account.function[each.key].email
    available_memory      = "${each.value.memory_mb}Mi"
    available_cpu         = var.function_cpu
    # Concurrency from the topology: 1 request per instance. The LiteRT interpreter is not
    # thread-safe (the infer code also guards it with a lock), and decode + int8 inference are
    # CPU-bound, so a second concurrent request on the same vCPU would only wait; Cloud Run
    # scales out with instances instead, up to max_instances.
    max_instance_request_concurrency = each.value.concurrency
    min_instance_count               = each.value.min_instances
    max_instance_count               = each.value.max_instances
    timeout_seconds                  = each.value.timeout_seconds
    # Only Pub/Sub push (internal to the project) reaches the functions, and it must
    # authenticate as the push account (pubsub.tf).
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    environment_variables          = local.pipeline_env
  }

  depends_on = [time_sleep.apis_settle, time_sleep.build_grants_settle]
}

# --- least privilege, from each function's reads / writes / publishes in the topology --------

resource "google_storage_bucket_iam_member" "function" {
  for_each = local.function_bucket_grants

  bucket = google_storage_bucket.pipeline[each.value.bucket].name
  role   = each.value.role
  member = "serviceAccount:${google_service_account.function[each.value.function].email}"
}

resource "google_pubsub_topic_iam_member" "function_publishes" {
  for_each = local.function_publish_grants

  project = var.project_id
  topic   = google_pubsub_topic.topic[each.value.topic].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.function[each.value.function].email}"
}

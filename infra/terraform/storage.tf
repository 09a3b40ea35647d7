# The four pipeline buckets by role (detectflow/layout.py says what goes where), the
# uploads -> Pub/Sub notification, and two deployment-only buckets (function sources, datasets).

resource "google_storage_bucket" "pipeline" {
  #checkov:skip=CKV_GCP_62:Access logs would be a fifth bucket written on every pipeline read; Cloud Audit Logs (Data Access) are the place to turn on object-level auditing.
  #checkov:skip=CKV_GCP_78:Versioning is set from the topology: on for models (rollback), off for uploads/work/results, whose keys are written once (results are if-absent and append-only by IAM) or are scratch data.
  for_each = local.buckets

  name                        = local.bucket_names[each.key]
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = merge(var.labels, { role = each.key })

  versioning {
    enabled = each.value.versioning
  }

  # Scratch buckets keep no soft-deleted copies (one write and one delete per image would
  # otherwise be billed for 7 more days); the others keep Google's default.
  dynamic "soft_delete_policy" {
    for_each = contains(local.scratch_buckets, each.key) ? [0] : []
    content {
      retention_duration_seconds = soft_delete_policy.value
    }
  }

  # uploads (originals) and work (prepared tensors) are transient: delete them after N days.
  dynamic "lifecycle_rule" {
    for_each = each.value.delete_after_days == null ? [] : [each.value.delete_after_days]
    content {
      condition {
        age = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }

  # Versioned buckets (models): keep the 5 newest replaced versions of each object for rollback.
  dynamic "lifecycle_rule" {
    for_each = each.value.versioning ? [5] : []
    content {
      condition {
        num_newer_versions = lifecycle_rule.value
        with_state         = "ARCHIVED"
      }
      action {
        type = "Delete"
      }
    }
  }

  depends_on = [time_sleep.apis_settle]
}

# ---------------------------------------------------------------------------------------------
# Storage -> Pub/Sub: OBJECT_FINALIZE of the buckets that have a notify_topic (uploads).
# The Cloud Storage service agent publishes the notifications, so it needs publisher on the topic.
# ---------------------------------------------------------------------------------------------

data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

resource "google_pubsub_topic_iam_member" "gcs_publishes_notifications" {
  for_each = local.notifying_buckets

  project = var.project_id
  topic   = google_pubsub_topic.topic[local.topic_role_by_name[each.value.notify_topic]].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_storage_notification" "finalize" {
  for_each = local.notifying_buckets

  bucket         = google_storage_bucket.pipeline[each.key].name
  topic          = google_pubsub_topic.topic[local.topic_role_by_name[each.value.notify_topic]].id
  payload_format = "JSON_API_V1"
  # Only new objects: metadata updates and deletes must not start the pipeline again.
  event_types = ["OBJECT_FINALIZE"]

  depends_on = [google_pubsub_topic_iam_member.gcs_publishes_notifications]
}

# ---------------------------------------------------------------------------------------------
# Deployment-only buckets.
# ---------------------------------------------------------------------------------------------

# Zipped function sources (uploaded by Terraform, read by Cloud Build).
resource "google_storage_bucket" "function_sources" {
  #checkov:skip=CKV_GCP_62:Build inputs only; Cloud Audit Logs cover access.
  name                        = local.names.function_sources_bucket
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  # Each archive is named by its content hash; keep old ones for a while for rollbacks.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [time_sleep.apis_settle]
}

# The Vertex AI trainer's bucket: datasets/<name>/ (Pascal VOC folders) and runs/<name>/ (checkpoints,
# plots, exported bundles). Jobs see it as /gcs/<bucket>/ (Cloud Storage FUSE).
resource "google_storage_bucket" "training" {
  #checkov:skip=CKV_GCP_62:Used by training jobs only; Cloud Audit Logs cover access.
  name                        = local.names.training_bucket
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  versioning {
    enabled = true
  }

  depends_on = [time_sleep.apis_settle]
}

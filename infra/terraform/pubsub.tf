# Topics and push subscriptions, exactly as in detectflow/topology.py (cloud profile).
#
# Why push subscriptions to HTTP functions, not Eventarc triggers: with our own subscriptions
# the retry policy and the dead-letter policy are plain Terraform, and the functions receive the
# same Pub/Sub push requests as on the local emulators (functions-framework turns them into
# CloudEvents). An Eventarc trigger creates its own subscription, whose dead-letter policy
# would have to be patched outside Terraform.

locals {
  # Google's Pub/Sub service agent: it forwards dead letters and mints push tokens.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "topic" {
  #checkov:skip=CKV_GCP_83:Messages are references (bucket/object names, ids), encrypted at rest with Google-managed keys; add kms_key_name where an organisation policy requires CMEK.
  for_each = local.topics

  name                       = local.topic_names[each.key]
  project                    = var.project_id
  labels                     = merge(var.labels, { role = each.key })
  message_retention_duration = local.topic_retention[each.key] # null: no topic-level retention

  depends_on = [time_sleep.apis_settle]
}

# Pub/Sub signs each push with an OIDC token of this account; only it may invoke the functions.
resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = local.names.push_account
  display_name = "detectflow: Pub/Sub push to the functions"

  depends_on = [time_sleep.apis_settle]
}

resource "google_cloud_run_service_iam_member" "push_invokes_function" {
  for_each = local.functions

  project  = var.project_id
  location = var.region
  # A 2nd gen function runs as the Cloud Run service of the same name.
  service = google_cloudfunctions2_function.function[each.key].name
  role    = "roles/run.invoker"
  member  = "serviceAccount:${google_service_account.push.email}"
}

# The Pub/Sub service agent mints the push tokens for the push account. The agent exists once
# the Pub/Sub API is enabled and has settled; a grant to it before that fails with "Service
# account service-...@gcp-sa-pubsub... does not exist" (terraform-provider-google#7281), hence
# the wait, and the topics (which need the API) first.
resource "google_service_account_iam_member" "pubsub_agent_mints_push_tokens" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent

  depends_on = [time_sleep.apis_settle, google_pubsub_topic.topic]
}

resource "google_pubsub_subscription" "push" {
  for_each = local.subscriptions

  name    = local.subscription_names[each.key]
  project = var.project_id
  topic   = google_pubsub_topic.topic[local.topic_role_by_name[each.value.topic]].id
  labels  = var.labels

  # For push, the ack deadline is how long Pub/Sub waits for the function's HTTP answer.
  ack_deadline_seconds = each.value.ack_deadline_seconds
  # Unacknowledged messages are kept as long as the topology says, up to the 7 days a
  # subscription allows.
  message_retention_duration = "${min(604800, local.topics[local.topic_role_by_name[each.value.topic]].message_retention_seconds)}s"

  push_config {
    # The topic in the URL path lets functions-framework name the CloudEvent's source.
    push_endpoint = format(
      "%s%s",
      google_cloudfunctions2_function.function[each.value.push_function].service_config[0].uri,
      replace(replace(var.topology.notes.push_endpoint_path, "{project}", var.project_id), "{topic}", local.scoped[each.value.topic]),
    )
    oidc_token {
      service_account_email = google_service_account.push.email
      # Cloud Run accepts tokens whose audience is the service's URL. Left out, the audience
      # is "the push endpoint URL" (PushConfig.OidcToken in the Pub/Sub API), here the URL
      # plus the /projects/.../topics/... path.
      audience = google_cloudfunctions2_function.function[each.value.push_function].service_config[0].uri
    }
  }

  # A 5xx (a transient error the function raised) is redelivered with exponential backoff.
  retry_policy {
    minimum_backoff = "${each.value.retry.minimum_backoff_seconds}s"
    maximum_backoff = "${each.value.retry.maximum_backoff_seconds}s"
  }

  # After max_delivery_attempts the message moves to the dead-letter topic, whose own push
  # subscription writes an error record for the upload (nothing is lost silently).
  dynamic "dead_letter_policy" {
    for_each = each.value.dead_letter_topic == null ? [] : [each.value]
    content {
      dead_letter_topic     = google_pubsub_topic.topic[local.topic_role_by_name[dead_letter_policy.value.dead_letter_topic]].id
      max_delivery_attempts = dead_letter_policy.value.max_delivery_attempts
    }
  }

  # Never expire for inactivity: a quiet week must not delete the pipeline.
  expiration_policy {
    ttl = ""
  }

  depends_on = [google_service_account_iam_member.pubsub_agent_mints_push_tokens]
}

# Dead-lettering needs the Pub/Sub service agent to publish to the dead-letter topic and to
# pull (acknowledge) from the source subscription.
resource "google_pubsub_topic_iam_member" "pubsub_agent_publishes_dead_letters" {
  for_each = local.dead_letter_topic_roles

  project = var.project_id
  topic   = google_pubsub_topic.topic[each.key].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_forwards_dead_letters" {
  for_each = local.dead_lettering_subscriptions

  project      = var.project_id
  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

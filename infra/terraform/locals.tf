# Everything below is derived from var.topology (generated from detectflow/topology.py), so the
# cloud deployment has exactly the buckets, topics, subscriptions and functions the local
# emulator setup has. Only variables in here, no resources: tests/test_infra.py evaluates these
# locals with `terraform console`, which needs no provider.

locals {
  bucket_prefix = var.bucket_prefix != "" ? var.bucket_prefix : var.project_id

  # Deployment-only buckets and identities whose names other files need before they exist.
  function_sources_bucket_name = "${local.bucket_prefix}-${var.name_prefix}-function-sources"
  training_bucket_name         = "${local.bucket_prefix}-${var.name_prefix}-training"
  trainer_service_account      = "${var.name_prefix}-trainer@${var.project_id}.iam.gserviceaccount.com"

  buckets      = { for b in var.topology.buckets : b.role => b }
  bucket_names = { for role, b in local.buckets : role => "${local.bucket_prefix}-${b.name}" }

  topics             = { for t in var.topology.topics : t.role => t }
  topic_role_by_name = { for t in var.topology.topics : t.name => t.role }

  subscriptions = { for s in var.topology.subscriptions : s.name => s }
  # Subscriptions with a dead-letter policy: the Pub/Sub service agent must be able to pull
  # from them and publish to their dead-letter topic, or messages are never forwarded.
  dead_lettering_subscriptions = {
    for name, s in local.subscriptions : name => s if s.dead_letter_topic != null
  }
  dead_letter_topic_roles = toset([
    for s in values(local.dead_lettering_subscriptions) : local.topic_role_by_name[s.dead_letter_topic]
  ])

  notifying_buckets = { for role, b in local.buckets : role => b if b.notify_topic != null }

  functions = { for f in var.topology.functions : f.name => f }
  # One deployable source tree per source folder (the dead-letter function shares preprocess's).
  function_sources = toset([for f in var.topology.functions : f.source])

  # What each function may do, straight from the topology's reads / writes / publishes.
  #   reads  -> roles/storage.objectViewer (get + list: list finds <model>/LATEST)
  #   writes -> roles/storage.objectUser (create, overwrite, delete objects; no bucket or IAM
  #             admin), except in append-only buckets (below)
  # The results bucket is append-only: every record is written if-absent (ifGenerationMatch=0),
  # exactly one per upload, so roles/storage.objectCreator is enough, and no function can
  # overwrite or delete a result, even a buggy one.
  append_only_buckets = toset(["results"])
  function_read_grants = flatten([
    for f in var.topology.functions : [
      for bucket in f.reads : { function = f.name, bucket = bucket, role = "roles/storage.objectViewer" }
    ]
  ])
  function_write_grants = flatten([
    for f in var.topology.functions : [
      for bucket in f.writes : {
        function = f.name
        bucket   = bucket
        role     = contains(local.append_only_buckets, bucket) ? "roles/storage.objectCreator" : "roles/storage.objectUser"
      }
    ]
  ])
  function_bucket_grants = {
    for g in concat(local.function_read_grants, local.function_write_grants) :
    "${g.function}/${g.bucket}/${g.role}" => g
  }
  function_publish_grants = {
    for g in flatten([
      for f in var.topology.functions : [for role in f.publishes : { function = f.name, topic = role }]
    ]) : "${g.function}/${g.topic}" => g
  }

  # The settings every deployed detectflow process reads (detectflow/settings.py: DETECTFLOW_*).
  pipeline_env = merge(
    {
      GOOGLE_CLOUD_PROJECT  = var.project_id
      DETECTFLOW_STORAGE    = "gcs"
      DETECTFLOW_BUS        = "pubsub"
      DETECTFLOW_MODEL_NAME = var.model_name
    },
    { for k, v in { DETECTFLOW_MODEL_VERSION = var.model_version } : k => v if v != "" },
    { for role, name in local.bucket_names : "DETECTFLOW_${upper(role)}_BUCKET" => name },
    { for role, t in local.topics : "DETECTFLOW_${upper(role)}_TOPIC" => t.name },
  )
}

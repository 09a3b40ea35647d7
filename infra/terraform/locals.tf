# Everything below is derived from var.topology (generated from detectflow/topology.py), so the
# cloud deployment has exactly the buckets, topics, subscriptions and functions the local
# emulator setup has. Only variables in here, no resources: tests/project/test_infra.py
# evaluates these locals with `terraform console`, which needs no provider.

locals {
  bucket_prefix = var.bucket_prefix != "" ? var.bucket_prefix : var.project_id

  buckets       = { for b in var.topology.buckets : b.role => b }
  topics        = { for t in var.topology.topics : t.role => t }
  subscriptions = { for s in var.topology.subscriptions : s.name => s }
  functions     = { for f in var.topology.functions : f.name => f }

  # ---------------------------------------------------------------------------------------------
  # Names. Every resource takes its name from here (tests/project/test_infra.py checks it), and
  # every name starts with var.name_prefix (after the global bucket prefix for buckets), so two
  # deployments with different prefixes can share a project. The topology's own names all start
  # with its name_prefix (e.g. detectflow-uploads); a deployment swaps that for var.name_prefix.
  # With the default prefix the names are the topology's, so existing deployments keep them.
  # ---------------------------------------------------------------------------------------------
  topology_names = distinct(concat( # a bucket and a topic may share a name
    [for b in var.topology.buckets : b.name],
    [for t in var.topology.topics : t.name],
    [for s in var.topology.subscriptions : s.name],
  ))
  scoped = {
    for name in local.topology_names : name => "${var.name_prefix}${trimprefix(name, var.topology.name_prefix)}"
  }

  bucket_names       = { for role, b in local.buckets : role => "${local.bucket_prefix}-${local.scoped[b.name]}" }
  topic_names        = { for role, t in local.topics : role => local.scoped[t.name] }
  subscription_names = { for name, s in local.subscriptions : name => local.scoped[name] }
  function_names     = { for name, f in local.functions : name => "${var.name_prefix}-${name}" }
  function_accounts  = { for name, f in local.functions : name => "${var.name_prefix}-fn-${name}" }

  # Custom role ids allow letters, digits, '_' and '.', no '-'.
  role_prefix = replace(var.name_prefix, "-", "_")

  names = {
    function_sources_bucket = "${local.bucket_prefix}-${var.name_prefix}-function-sources"
    training_bucket         = "${local.bucket_prefix}-${var.name_prefix}-training"
    image_repository        = var.name_prefix
    web_service             = "${var.name_prefix}-web"
    reconcile_job           = "${var.name_prefix}-reconcile"
    reconcile_schedule      = "${var.name_prefix}-reconcile"
    api_key_secret          = "${var.name_prefix}-api-key"
    catalog_database        = "${var.name_prefix}-catalog"
    # Service account ids (6-30 characters).
    push_account      = "${var.name_prefix}-push"
    build_account     = "${var.name_prefix}-build"
    frontend_account  = "${var.name_prefix}-frontend"
    trainer_account   = "${var.name_prefix}-trainer"
    reconcile_account = "${var.name_prefix}-reconcile"
    scheduler_account = "${var.name_prefix}-scheduler"
    # Custom roles (catalog.tf, frontend.tf).
    catalog_recorder_role   = "${local.role_prefix}_catalog_recorder"
    catalog_reconciler_role = "${local.role_prefix}_catalog_reconciler"
    catalog_editor_role     = "${local.role_prefix}_catalog_editor"
    object_deleter_role     = "${local.role_prefix}_object_deleter"
  }

  # Deployment-only buckets and identities whose names other files need before they exist.
  function_sources_bucket_name = local.names.function_sources_bucket
  training_bucket_name         = local.names.training_bucket
  trainer_service_account      = "${local.names.trainer_account}@${var.project_id}.iam.gserviceaccount.com"

  # ---------------------------------------------------------------------------------------------
  # Pub/Sub
  # ---------------------------------------------------------------------------------------------
  topic_role_by_name = { for t in var.topology.topics : t.name => t.role }

  # Subscriptions with a dead-letter policy: the Pub/Sub service agent must be able to pull
  # from them and publish to their dead-letter topic, or messages are never forwarded.
  dead_lettering_subscriptions = {
    for name, s in local.subscriptions : name => s if s.dead_letter_topic != null
  }
  dead_letter_topic_roles = toset([
    for s in values(local.dead_lettering_subscriptions) : local.topic_role_by_name[s.dead_letter_topic]
  ])

  # Topic-level retention keeps every message (acknowledged or not) for replay, and is billed
  # as storage. It is worth it only where a subscription can seek back to re-drive; a topic
  # nobody subscribes to (results: notices for whoever wants them) keeps nothing. A
  # subscription keeps its own unacknowledged messages either way.
  subscribed_topic_names = toset([for s in var.topology.subscriptions : s.topic])
  topic_retention = {
    for role, t in local.topics : role => (
      contains(local.subscribed_topic_names, t.name) ? "${t.message_retention_seconds}s" : null
    )
  }

  notifying_buckets = { for role, b in local.buckets : role => b if b.notify_topic != null }

  # ---------------------------------------------------------------------------------------------
  # Storage
  # ---------------------------------------------------------------------------------------------
  # Soft delete keeps deleted objects (billed) for 7 days by default. The work bucket writes and
  # deletes one object per image: scratch data nobody will want back, so it keeps none.
  scratch_buckets = toset(["work"])

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

  # The settings every deployed detectflow process reads (detectflow/settings.py: DETECTFLOW_*),
  # including the catalog's (catalog_schema.tf).
  pipeline_env = merge(
    {
      GOOGLE_CLOUD_PROJECT  = var.project_id
      DETECTFLOW_STORAGE    = "gcs"
      DETECTFLOW_BUS        = "pubsub"
      DETECTFLOW_MODEL_NAME = var.model_name
    },
    { for k, v in { DETECTFLOW_MODEL_VERSION = var.model_version } : k => v if v != "" },
    { for role, name in local.bucket_names : "DETECTFLOW_${upper(role)}_BUCKET" => name },
    { for role, name in local.topic_names : "DETECTFLOW_${upper(role)}_TOPIC" => name },
    local.catalog_env,
  )
}

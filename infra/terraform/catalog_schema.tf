# The image catalog's contract with the code, in one place: the Firestore database and
# collection, the document fields its queries filter and sort on, the composite indexes those
# queries need, the environment that points detectflow at them, and the Firestore permissions
# each identity gets. When the catalog code (detectflow/catalog/) changes a query or a field
# name, change it here. Only locals: tests/project/test_infra.py evaluates them with
# `terraform console`. The resources are in catalog.tf.

locals {
  catalog = {
    # A database of its own per deployment: IAM can be limited to one database (conditions
    # below), not to one collection, so two deployments sharing a project cannot touch each
    # other's catalog. (The Firestore free tier goes to the first database of a project,
    # named or not: https://cloud.google.com/firestore/quotas.)
    database = local.names.catalog_database
    # The code's default collection is "detectflow-images", this with the default prefix.
    collection = "${var.name_prefix}-images"
    location   = var.catalog_location != "" ? var.catalog_location : var.region
    # One document per image (detectflow/catalog/firestore.py; its document id is the image id
    # with its random half first, against write hot spots, so the sort uses the image_id field,
    # not the document id). The fields the queries filter and sort on:
    fields = {
      created  = "created_ms" # upload time, unix ms: the gallery lists newest first by (created_ms, image_id)
      image_id = "image_id"   # the tie-breaker of that order, and the cursor's second half
      status   = "status"     # queued | processing | done | failed
      labels   = "labels"     # array of the classes with at least one detection: the label= filter
      updated  = "updated"    # unix seconds of the last status change: the stuck-record scan
    }
  }

  # Composite indexes, one per query shape of FirestoreCatalog (page, stuck). `since=`/`until=`
  # are ranges on created_ms, the first sort field, and need none of their own; count() by
  # status and sum() of class_counts.<label> use the automatic single-field indexes. A label
  # filter is never combined with a status one (only done images have labels). Each index ends
  # with the document id (`__name__`) in the direction of the field before it: the API adds it
  # to every index anyway ("the last field entry is always for the field path __name__",
  # Index.fields in the Firestore Admin API), so a config without it would differ from what
  # the provider reads back.
  catalog_indexes = {
    # the gallery, newest first (two sort fields: a composite index even without a filter)
    "newest" = [
      { field = local.catalog.fields.created, order = "DESCENDING", array_config = null },
      { field = local.catalog.fields.image_id, order = "DESCENDING", array_config = null },
      { field = "__name__", order = "DESCENDING", array_config = null },
    ]
    # ?status=S, newest first
    "status-newest" = [
      { field = local.catalog.fields.status, order = "ASCENDING", array_config = null },
      { field = local.catalog.fields.created, order = "DESCENDING", array_config = null },
      { field = local.catalog.fields.image_id, order = "DESCENDING", array_config = null },
      { field = "__name__", order = "DESCENDING", array_config = null },
    ]
    # ?label=L (array-contains), newest first
    "label-newest" = [
      { field = local.catalog.fields.labels, order = null, array_config = "CONTAINS" },
      { field = local.catalog.fields.created, order = "DESCENDING", array_config = null },
      { field = local.catalog.fields.image_id, order = "DESCENDING", array_config = null },
      { field = "__name__", order = "DESCENDING", array_config = null },
    ]
    # reconcile --stuck: status in (queued, processing) and updated < cutoff, oldest first
    "stuck-oldest" = [
      { field = local.catalog.fields.status, order = "ASCENDING", array_config = null },
      { field = local.catalog.fields.updated, order = "ASCENDING", array_config = null },
      { field = "__name__", order = "ASCENDING", array_config = null },
    ]
  }

  # What detectflow reads (detectflow/settings.py): every deployed process gets it (locals.tf
  # merges it into pipeline_env).
  catalog_env = {
    DETECTFLOW_CATALOG            = "firestore"
    DETECTFLOW_FIRESTORE_DATABASE = local.catalog.database
    DETECTFLOW_CATALOG_COLLECTION = local.catalog.collection
  }

  # The scheduled reconcile pass (reconcile.tf): the Cloud Run job's arguments after
  # `detectflow`. `--stuck`: the periodic pass, which asks the catalog for records stuck in
  # queued/processing and lists no bucket; the full bucket-against-catalog pass (which also
  # deletes catalog records of vanished images) is for start-up, backfill and on demand.
  reconcile_command = [
    "--log-json", "reconcile", "--stuck",
    "--older-than", tostring(var.reconcile_older_than_seconds), "--json",
  ]

  # Least privilege on the catalog. Firestore has no per-collection IAM and no predefined role
  # without delete, so three custom roles, from the method -> permission table of
  # https://cloud.google.com/firestore/docs/security/iam : get/batchGet/runQuery/
  # runAggregationQuery need entities.get, listDocuments also entities.list, a commit that
  # creates or sets without precondition entities.create, an update with exists=true
  # entities.update, a delete entities.delete, beginTransaction/rollback databases.get.
  catalog_recorder_permissions = [
    "datastore.databases.get",
    "datastore.entities.get",
    "datastore.entities.create",
    "datastore.entities.update",
  ]
  catalog_roles = {
    # The functions: record queued -> processing -> done/failed; never list, never delete.
    recorder = {
      title       = "detectflow catalog recorder (${var.name_prefix})"
      permissions = local.catalog_recorder_permissions
    }
    # The reconcile job (--stuck): also lists; never deletes (only the full pass, run by an
    # operator with their own credentials, removes records of images that are gone).
    reconciler = {
      title       = "detectflow catalog reconciler (${var.name_prefix})"
      permissions = concat(local.catalog_recorder_permissions, ["datastore.entities.list"])
    }
    # The web app: also deletes (DELETE /api/images/{id}).
    editor = {
      title       = "detectflow catalog editor (${var.name_prefix})"
      permissions = concat(local.catalog_recorder_permissions, ["datastore.entities.list", "datastore.entities.delete"])
    }
  }

  # Every catalog grant holds on this deployment's database only: "Configure per-database
  # access permissions" with an IAM condition on the database's resource name
  # (https://cloud.google.com/firestore/native/docs/manage-databases).
  catalog_iam_condition = "resource.name == \"projects/${var.project_id}/databases/${local.catalog.database}\""
}

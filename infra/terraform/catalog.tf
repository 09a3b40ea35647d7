# The image catalog: a Firestore database (native mode) of its own, the composite indexes its
# queries need, and who may do what in it. The contract with the code (collection, fields,
# indexes, environment, permissions) is in catalog_schema.tf.

resource "google_firestore_database" "catalog" {
  project     = var.project_id
  name        = local.names.catalog_database
  location_id = local.catalog.location
  type        = "FIRESTORE_NATIVE"

  delete_protection_state = var.catalog_delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # The provider's default, ABANDON, leaves the database behind on `terraform destroy`; the
  # next apply then fails because the id is taken. DELETE removes it (unless protected above).
  deletion_policy = "DELETE"

  depends_on = [time_sleep.apis_settle]
}

resource "google_firestore_index" "catalog" {
  for_each = local.catalog_indexes

  project     = var.project_id
  database    = google_firestore_database.catalog.name
  collection  = local.catalog.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value
    content {
      field_path   = fields.value.field
      order        = fields.value.order
      array_config = fields.value.array_config
    }
  }
}

resource "google_project_iam_custom_role" "catalog" {
  for_each = local.catalog_roles

  project     = var.project_id
  role_id     = local.names["catalog_${each.key}_role"]
  title       = each.value.title
  description = "Documents in the ${local.catalog.database} Firestore database (granted with a condition on that database)."
  permissions = each.value.permissions

  depends_on = [time_sleep.apis_settle]
}

locals {
  # Who gets which catalog role: the functions record outcomes, the reconcile job finds and
  # re-drives stuck images, the web app also deletes.
  catalog_grants = merge(
    {
      for name in keys(local.functions) : "function/${name}" => {
        role   = "recorder"
        member = "serviceAccount:${google_service_account.function[name].email}"
      }
    },
    {
      reconcile = { role = "reconciler", member = "serviceAccount:${google_service_account.reconcile.email}" }
      frontend  = { role = "editor", member = "serviceAccount:${google_service_account.frontend.email}" }
    },
  )
}

resource "google_project_iam_member" "catalog" {
  for_each = local.catalog_grants

  project = var.project_id
  role    = google_project_iam_custom_role.catalog[each.value.role].name
  member  = each.value.member

  condition {
    title       = "${local.catalog.database} only"
    description = "The ${local.catalog.database} Firestore database of this deployment, no other."
    expression  = local.catalog_iam_condition
  }
}

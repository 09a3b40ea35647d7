output "buckets" {
  description = "Bucket name by role (uploads, work, results, models), plus the deployment-only ones."
  value = merge(
    { for role, b in google_storage_bucket.pipeline : role => b.name },
    {
      function_sources = google_storage_bucket.function_sources.name
      training         = google_storage_bucket.training.name
    },
  )
}

output "topics" {
  description = "Topic id by role (uploads, prepared, results, dead_letter)."
  value       = { for role, t in google_pubsub_topic.topic : role => t.id }
}

output "function_urls" {
  description = "Function URL by name (internal ingress: only the Pub/Sub push subscriptions reach them)."
  value       = { for name, f in google_cloudfunctions2_function.function : name => f.service_config[0].uri }
}

output "frontend_url" {
  description = "URL of the web app (empty when frontend_image is not set)."
  value       = local.deploy_frontend ? google_cloud_run_v2_service.frontend[0].uri : ""
}

output "image_repository" {
  description = "Artifact Registry path for `docker push` (trainer and web app images)."
  value       = local.image_repository
}

output "trainer_image" {
  description = "The trainer image the job spec runs."
  value       = local.trainer_image
}

output "trainer_service_account" {
  description = "Service account the Vertex AI job runs as (pass with --service-account if you override the spec)."
  value       = google_service_account.trainer.email
}

output "trainer_job_spec" {
  description = "Path of the rendered Vertex AI custom job spec."
  value       = local_file.trainer_job_spec.filename
}

output "env" {
  description = "The DETECTFLOW_* environment of the deployed processes: export it to point `detectflow` at this deployment."
  value       = local.pipeline_env
}

output "catalog" {
  description = "The image catalog: Firestore database, collection, the fields the queries use, the composite indexes (catalog_schema.tf)."
  value = {
    database   = google_firestore_database.catalog.name
    collection = local.catalog.collection
    fields     = local.catalog.fields
    indexes    = { for name, index in google_firestore_index.catalog : name => index.name }
  }
}

output "api_key_secret" {
  description = "Secret Manager secret that holds the public web app's API key (empty unless frontend_public)."
  value       = local.frontend_api_key ? google_secret_manager_secret.api_key[0].secret_id : ""
}

output "reconcile_job" {
  description = "Cloud Run job of the periodic reconcile pass (empty without frontend_image); run it now with `gcloud run jobs execute`."
  value       = local.deploy_reconcile ? google_cloud_run_v2_job.reconcile[0].name : ""
}

output "reconcile_schedule" {
  description = "Cloud Scheduler job that starts the reconcile job (empty without frontend_image)."
  value       = local.deploy_reconcile ? google_cloud_scheduler_job.reconcile[0].name : ""
}

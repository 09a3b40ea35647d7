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

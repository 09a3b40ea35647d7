# The Vertex AI custom job spec for the trainer (rendered to a file by trainer.tf). Only
# variables and locals in here, no resources: tests/project/test_infra.py renders it with
# `terraform console` (no provider needed) and parses its arguments with `detectflow train`.

locals {
  image_repository = "${var.region}-docker.pkg.dev/${var.project_id}/${local.names.image_repository}"
  trainer_image    = "${local.image_repository}/trainer:${var.trainer_image_tag}"
  trainer_data     = var.trainer_data_uri != "" ? var.trainer_data_uri : "/gcs/${local.training_bucket_name}/datasets/${var.model_name}"

  trainer_machine = {
    machineType      = var.trainer_machine_type
    acceleratorType  = var.trainer_accelerator_type
    acceleratorCount = var.trainer_gpus_per_replica
  }
  trainer_container = {
    imageUri = local.trainer_image
    # The image's entrypoint is `detectflow train`; these are its arguments. Every replica
    # runs the same command; with several machines, TF_CONFIG (set by Vertex AI: pool 0 is
    # the "chief", pool 1 the "worker"s) makes it MultiWorkerMirroredStrategy.
    args = concat([
      "--data", local.trainer_data,
      "--out", "/gcs/${local.training_bucket_name}/runs/${var.model_name}",
      "--name", var.model_name,
    ], var.trainer_args)
  }

  # Worker pool 0: the chief, exactly one replica. Worker pool 1: the other N-1 machines.
  trainer_job_spec = {
    workerPoolSpecs = concat(
      [{ machineSpec = local.trainer_machine, replicaCount = 1, containerSpec = local.trainer_container }],
      [for pool in range(var.trainer_replicas > 1 ? 1 : 0) : {
        machineSpec   = local.trainer_machine
        replicaCount  = var.trainer_replicas - 1
        containerSpec = local.trainer_container
      }],
    )
    serviceAccount = local.trainer_service_account
  }
}


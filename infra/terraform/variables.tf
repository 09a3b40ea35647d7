# ---------------------------------------------------------------------------------------------
# Where and under which names.
# ---------------------------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project that holds everything."
  type        = string
}

variable "region" {
  description = "Region of the buckets, the functions, the web app and the trainer jobs."
  type        = string
  default     = "europe-west1"
}

variable "name_prefix" {
  description = "Prefix of every name: topics, subscriptions, buckets (after bucket_prefix), service accounts, functions, web app, jobs, catalog database, secret, image repository. Two deployments with different prefixes can share a project."
  type        = string
  default     = "detectflow"

  validation {
    # 15 at most: "<prefix>-fn-dead-letter" is a service account id, which allows 30.
    # Letter first, no '-' last: Firestore database ids and Cloud Run names require it.
    condition     = can(regex("^[a-z][a-z0-9-]{0,13}[a-z0-9]$", var.name_prefix))
    error_message = "The name_prefix must be 2-15 characters: lower-case letters, digits and '-', starting with a letter and not ending with '-' (it ends up in service account ids, which allow 30)."
  }
}

variable "bucket_prefix" {
  description = "Prefix of the bucket names (bucket names are global). Empty: the project id."
  type        = string
  default     = ""
}

variable "labels" {
  description = "Labels set on buckets, topics, functions and the web app."
  type        = map(string)
  default     = { app = "detectflow" }
}

# ---------------------------------------------------------------------------------------------
# The pipeline topology: GENERATED from detectflow/topology.py into topology.auto.tfvars.json
# (`python infra/topology_tfvars.py`). Edit the Python, never the JSON: the local emulator
# setup reads the same description, and tests/project/test_infra.py fails when the two differ.
# ---------------------------------------------------------------------------------------------

variable "topology" {
  description = "Buckets, topics, push subscriptions and functions of the event pipeline (generated)."
  type = object({
    profile = string
    buckets = list(object({
      role              = string
      name              = string
      versioning        = bool
      delete_after_days = number
      notify_topic      = string
    }))
    topics = list(object({
      role                      = string
      name                      = string
      message_retention_seconds = number
    }))
    subscriptions = list(object({
      name                 = string
      topic                = string
      push_function        = string
      ack_deadline_seconds = number
      retry = object({
        minimum_backoff_seconds = number
        maximum_backoff_seconds = number
      })
      dead_letter_topic     = string
      max_delivery_attempts = number
    }))
    functions = list(object({
      name            = string
      source          = string
      target          = string
      reads           = list(string)
      writes          = list(string)
      publishes       = list(string)
      memory_mb       = number
      concurrency     = number
      min_instances   = number
      max_instances   = number
      timeout_seconds = number
    }))
    notes       = map(string)
    name_prefix = string
  })

  validation {
    condition     = var.topology.profile == "cloud"
    error_message = "The topology must be the \"cloud\" profile: regenerate topology.auto.tfvars.json with `python infra/topology_tfvars.py`."
  }

  # locals.tf swaps the topology's name_prefix for var.name_prefix; a name without it would
  # keep its topology name and collide with another deployment's.
  validation {
    condition = alltrue([
      for name in concat(
        [for b in var.topology.buckets : b.name],
        [for t in var.topology.topics : t.name],
        [for s in var.topology.subscriptions : s.name],
      ) : substr(name, 0, length(var.topology.name_prefix) + 1) == "${var.topology.name_prefix}-"
    ])
    error_message = "Every bucket, topic and subscription name in the topology must start with its name_prefix and '-'."
  }
}

# ---------------------------------------------------------------------------------------------
# Functions (Cloud Run functions, 2nd gen). Memory, concurrency and instance counts come from
# the topology; these are the cloud-only knobs.
# ---------------------------------------------------------------------------------------------

variable "function_runtime" {
  description = "Python runtime of the functions (detectflow needs >= 3.11)."
  type        = string
  default     = "python312"
}

variable "function_cpu" {
  description = "vCPUs per function instance. Decoding and int8 inference are CPU-bound: one full vCPU per request (concurrency 1) is the unit that scales."
  type        = string
  default     = "1"
}

variable "function_source_dir" {
  description = "Staging folder with one deployable source tree per function source (built by infra/package_function.sh)."
  type        = string
  default     = "../../build/functions"
}

variable "model_name" {
  description = "Model the infer function serves from the models bucket (<name>/LATEST names the version)."
  type        = string
  default     = "bccd"
}

variable "model_version" {
  description = "Pin a model version; empty follows <model_name>/LATEST in the models bucket."
  type        = string
  default     = ""
}

# ---------------------------------------------------------------------------------------------
# The web app (Cloud Run service).
# ---------------------------------------------------------------------------------------------

variable "frontend_image" {
  description = "Container image of the web app, built from infra/web.Dockerfile (e.g. <image_repository output>/web:TAG). Empty: the web app is not deployed (the pipeline works without it: upload with `gcloud storage cp`)."
  type        = string
  default     = ""
}

variable "frontend_public" {
  description = "Let anyone on the internet call the web app (roles/run.invoker for allUsers). A public web app always requires an API key: Terraform generates one into Secret Manager (output api_key_secret) and hands it to the app as DETECTFLOW_API_KEY."
  type        = bool
  default     = false
}

variable "frontend_env" {
  description = "Extra environment variables of the web app, e.g. { DETECTFLOW_TITLE = \"cells\" }. Not for secrets: the API key comes from Secret Manager (frontend_public)."
  type        = map(string)
  default     = {}

  validation {
    # A plain environment variable is readable by anyone who can view the service.
    condition     = !contains(keys(var.frontend_env), "DETECTFLOW_API_KEY")
    error_message = "Do not pass DETECTFLOW_API_KEY in frontend_env: set frontend_public = true and the key is generated into Secret Manager (output api_key_secret)."
  }
}

variable "frontend_max_instances" {
  description = "Most web app instances."
  type        = number
  default     = 5
}

# ---------------------------------------------------------------------------------------------
# The image catalog (Firestore) and the periodic reconcile pass. What the code must match
# (collection, fields, indexes, environment) is in catalog_schema.tf.
# ---------------------------------------------------------------------------------------------

variable "catalog_location" {
  description = "Firestore location of the catalog database (a region such as europe-west1, or a multi-region such as eur3). Empty: var.region. Cannot change after creation."
  type        = string
  default     = ""
}

variable "catalog_delete_protection" {
  description = "Refuse to delete the catalog database (also through `terraform destroy`). Off by default: the catalog is an index that `detectflow catalog rebuild` recreates from the buckets, which stay protected."
  type        = bool
  default     = false
}

variable "reconcile_schedule" {
  description = "When Cloud Scheduler starts the reconcile job (cron, in reconcile_time_zone). The job exists only with frontend_image (it runs that image)."
  type        = string
  default     = "*/15 * * * *"
}

variable "reconcile_time_zone" {
  description = "Time zone of reconcile_schedule (tz database name)."
  type        = string
  default     = "Etc/UTC"
}

variable "reconcile_older_than_seconds" {
  description = "An upload still queued/processing after this long is re-driven. Longer than Pub/Sub's own redelivery of one message (5 attempts, 10-600 s backoff, ack deadline up to 120 s: about 13 minutes), so reconcile does not race retries that are still coming."
  type        = number
  default     = 1800

  validation {
    condition     = tonumber(var.reconcile_older_than_seconds) >= 900
    error_message = "The reconcile_older_than_seconds must be at least 900 (Pub/Sub may still be redelivering younger messages)."
  }
}

# ---------------------------------------------------------------------------------------------
# The trainer: image repository and the Vertex AI custom job spec.
# ---------------------------------------------------------------------------------------------

variable "trainer_image_tag" {
  description = "Tag of the trainer image in the Artifact Registry repository."
  type        = string
  default     = "latest"
}

variable "trainer_machine_type" {
  description = "Machine type of each trainer replica (must accept the accelerator)."
  type        = string
  default     = "n1-standard-8"
}

variable "trainer_accelerator_type" {
  description = "GPU type per replica, a Vertex AI AcceleratorType (NVIDIA_TESLA_T4, NVIDIA_L4, NVIDIA_TESLA_V100, ...)."
  type        = string
  default     = "NVIDIA_TESLA_T4"
}

variable "trainer_gpus_per_replica" {
  description = "GPUs per machine. More than one: MirroredStrategy inside the machine."
  type        = number
  default     = 1

  validation {
    # tonumber(): some Terraform versions validate a -var value before converting it.
    condition     = contains([1, 2, 4, 8], tonumber(var.trainer_gpus_per_replica))
    error_message = "The trainer_gpus_per_replica must be 1, 2, 4 or 8."
  }
}

variable "trainer_replicas" {
  description = "Machines in the job. More than one: one chief + (N-1) workers, MultiWorkerMirroredStrategy from the TF_CONFIG that Vertex AI sets."
  type        = number
  default     = 1

  validation {
    condition     = tonumber(var.trainer_replicas) >= 1 && tonumber(var.trainer_replicas) == floor(var.trainer_replicas)
    error_message = "The trainer_replicas must be a whole number >= 1."
  }
}

variable "trainer_data_uri" {
  description = "Pascal-VOC dataset the job trains on. As the job sees it: /gcs/<bucket>/<path> (Cloud Storage FUSE). Empty: /gcs/<training bucket>/datasets/<model_name>."
  type        = string
  default     = ""
}

variable "trainer_args" {
  description = "Extra `detectflow train` arguments, e.g. [\"--epochs\", \"120\"]."
  type        = list(string)
  default     = []
}

variable "trainer_job_spec_path" {
  description = "Where Terraform writes the rendered Vertex AI custom job spec (for `gcloud ai custom-jobs create --config`)."
  type        = string
  default     = "../../build/trainer-job.yaml"
}

"""The one description of detectflow's cloud topology: buckets, topics, subscriptions, functions.

The local emulator setup (`detectflow/launcher/emulators.py`) creates exactly this, and the
Terraform variables for Google Cloud are generated from `Topology.to_dict()` (see infra/), so
local and cloud cannot drift. Names here are logical and all start with `name_prefix`; on Google
Cloud a deployment replaces that prefix with its own (Terraform's `name_prefix`, so two deployments
can share a project), and bucket names also get a project prefix (bucket names are global).

    uploads bucket --(OBJECT_FINALIZE notification)--> uploads topic
        --(push subscription "preprocess")--> preprocess_image  --> work bucket
        --> prepared topic --(push subscription "infer")--> detect_objects --> results bucket
        --> results topic (notices, for whoever wants them)
    both push subscriptions --(after max_delivery_attempts)--> dead-letter topic
        --(push subscription "dead-letter")--> record_dead_letter --> an error record
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

BucketRole = Literal["uploads", "work", "results", "models"]
TopicRole = Literal["uploads", "prepared", "results", "dead_letter"]
Profile = Literal["cloud", "local"]


# Every logical bucket, topic and subscription name below starts with "<NAME_PREFIX>-"
# (Terraform checks it, and swaps in a deployment's own prefix).
NAME_PREFIX = "detectflow"


@dataclass(frozen=True, slots=True)
class BucketSpec:
    role: BucketRole
    name: str
    versioning: bool = False
    delete_after_days: int | None = None  # lifecycle rule; None keeps objects
    notify_topic: str | None = None  # OBJECT_FINALIZE notifications, JSON_API_V1 payload


@dataclass(frozen=True, slots=True)
class TopicSpec:
    role: TopicRole
    name: str
    message_retention_seconds: int = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Pub/Sub exponential backoff between redeliveries of a nacked (HTTP 5xx) push."""

    minimum_backoff_seconds: float
    maximum_backoff_seconds: float


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    name: str
    topic: str
    push_function: str | None  # FunctionSpec.name that receives the push; None = pull
    ack_deadline_seconds: int
    retry: RetryPolicy
    dead_letter_topic: str | None = None
    max_delivery_attempts: int | None = None  # Pub/Sub allows 5..100


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A Cloud Run function (2nd gen) built from `source` with entry point `target`."""

    name: str
    source: str  # folder, relative to the repository root
    target: str
    reads: tuple[BucketRole, ...]
    writes: tuple[BucketRole, ...]
    publishes: tuple[TopicRole, ...]
    memory_mb: int = 512
    # One request at a time per instance: the TFLite interpreter is serialized anyway, and
    # Cloud Run scales out with instances instead (functions-framework THREADS=1 locally).
    concurrency: int = 1
    min_instances: int = 0
    max_instances: int = 10
    timeout_seconds: int = 60


@dataclass(frozen=True, slots=True)
class Topology:
    profile: Profile
    buckets: tuple[BucketSpec, ...]
    topics: tuple[TopicSpec, ...]
    subscriptions: tuple[SubscriptionSpec, ...]
    functions: tuple[FunctionSpec, ...]
    notes: dict[str, str] = field(default_factory=dict)
    # Every bucket, topic and subscription name starts with "<name_prefix>-".
    name_prefix: str = NAME_PREFIX

    def bucket(self, role: BucketRole) -> BucketSpec:
        return next(b for b in self.buckets if b.role == role)

    def topic(self, role: TopicRole) -> TopicSpec:
        return next(t for t in self.topics if t.role == role)

    def function(self, name: str) -> FunctionSpec:
        return next(f for f in self.functions if f.name == name)

    def subscription_for(self, function_name: str) -> SubscriptionSpec:
        return next(s for s in self.subscriptions if s.push_function == function_name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


# Logical names. Settings may rename buckets (DETECTFLOW_UPLOADS_BUCKET, ...); Terraform
# prefixes them with the project.
BUCKET_NAMES: dict[BucketRole, str] = {
    "uploads": "detectflow-uploads",
    "work": "detectflow-work",
    "results": "detectflow-results",
    "models": "detectflow-models",
}
TOPIC_NAMES: dict[TopicRole, str] = {
    "uploads": "detectflow-uploads",
    "prepared": "detectflow-prepared",
    "results": "detectflow-results",
    "dead_letter": "detectflow-dead-letter",
}
MAX_DELIVERY_ATTEMPTS = 5  # the Pub/Sub minimum: a poison message costs 5 tries, not more

# The only intended difference between the profiles: how long redeliveries wait. On Google
# Cloud, backoff rides out an outage; locally a test waits seconds, not minutes, for a poison
# message to reach the dead-letter topic.
RETRY: dict[Profile, RetryPolicy] = {
    "cloud": RetryPolicy(minimum_backoff_seconds=10, maximum_backoff_seconds=600),
    "local": RetryPolicy(minimum_backoff_seconds=0.5, maximum_backoff_seconds=5),
}


def default_topology(profile: Profile = "cloud") -> Topology:
    retry = RETRY[profile]
    dead_letter = TOPIC_NAMES["dead_letter"]
    buckets = (
        BucketSpec("uploads", BUCKET_NAMES["uploads"], delete_after_days=30,
                   notify_topic=TOPIC_NAMES["uploads"]),
        BucketSpec("work", BUCKET_NAMES["work"], delete_after_days=1),
        BucketSpec("results", BUCKET_NAMES["results"]),
        BucketSpec("models", BUCKET_NAMES["models"], versioning=True),
    )
    topics = tuple(TopicSpec(role, name) for role, name in TOPIC_NAMES.items())
    subscriptions = (
        SubscriptionSpec(
            name="detectflow-preprocess", topic=TOPIC_NAMES["uploads"],
            push_function="preprocess", ack_deadline_seconds=60, retry=retry,
            dead_letter_topic=dead_letter, max_delivery_attempts=MAX_DELIVERY_ATTEMPTS,
        ),
        SubscriptionSpec(
            name="detectflow-infer", topic=TOPIC_NAMES["prepared"],
            push_function="infer", ack_deadline_seconds=120, retry=retry,
            dead_letter_topic=dead_letter, max_delivery_attempts=MAX_DELIVERY_ATTEMPTS,
        ),
        # No dead-letter policy on the dead-letter subscription itself: writing an error
        # record is retried until it succeeds.
        SubscriptionSpec(
            name="detectflow-dead-letter", topic=dead_letter,
            push_function="dead-letter", ack_deadline_seconds=60, retry=retry,
        ),
    )
    functions = (
        FunctionSpec(
            name="preprocess", source="functions/preprocess", target="preprocess_image",
            reads=("uploads", "results", "models"), writes=("work", "results"),
            publishes=("prepared",), memory_mb=512,
        ),
        FunctionSpec(
            name="infer", source="functions/infer", target="detect_objects",
            reads=("work", "results", "models", "uploads"), writes=("results", "work"),
            publishes=("results",), memory_mb=1024, timeout_seconds=120,
        ),
        FunctionSpec(
            # writes work: once its record is written it deletes the work object and the
            # failure note (detectflow/pipeline/outcomes.py), like infer does.
            name="dead-letter", source="functions/preprocess", target="record_dead_letter",
            reads=("uploads", "work", "results"), writes=("results", "work"),
            publishes=("results",), memory_mb=256, max_instances=2,
        ),
    )
    return Topology(
        profile=profile, buckets=buckets, topics=topics, subscriptions=subscriptions,
        functions=functions,
        notes={
            "uploads_notification": "OBJECT_FINALIZE only, payload JSON_API_V1",
            "push_endpoint_path": "/projects/{project}/topics/{topic}",
            "dead_letter_iam": "the Pub/Sub service agent needs roles/pubsub.publisher on the "
            "dead-letter topic and roles/pubsub.subscriber on the source subscriptions",
        },
    )

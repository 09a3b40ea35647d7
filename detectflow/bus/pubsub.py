"""Google Cloud Pub/Sub (or its emulator): publishing, and creating the topology locally."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from detectflow.topology import Topology

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 30.0


def _emulator_kwargs(emulator_host: str | None, transport_cls: Any) -> dict[str, Any]:
    """Clients for an explicit emulator host (the library itself only reads the env var)."""
    if not emulator_host:
        return {}
    import grpc

    return {"transport": transport_cls(channel=grpc.insecure_channel(emulator_host))}


class PubSubBus:
    """Publishes to `projects/<project>/topics/<topic>`; waits for the server's ack, so a
    publish that returns is durable (and one that raises makes the caller's handler retry).

    Uses the plain gRPC (GAPIC) client, not the batching `pubsub_v1.PublisherClient`: each
    stage publishes one message and waits for it anyway, and the batching machinery cost
    1.8 ms CPU and 9 ms per publish against 0.5 ms and 2 ms (measured on the emulator).
    """

    def __init__(self, project: str, emulator_host: str | None = None) -> None:
        from google.pubsub_v1 import PublisherClient
        from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

        self.project = project
        self._client = PublisherClient(**_emulator_kwargs(emulator_host, PublisherGrpcTransport))

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        from google.pubsub_v1 import PubsubMessage

        response = self._client.publish(
            topic=self.topic_path(topic),
            messages=[PubsubMessage(data=data, attributes=attributes or {})],
            timeout=PUBLISH_TIMEOUT_S)  # transient errors are retried by the client
        message_id: str = response.message_ids[0]
        return message_id


def make_subscriber(emulator_host: str | None = None) -> Any:
    """A SubscriberClient (for pull subscriptions: tools, tests, benchmarks)."""
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    return pubsub_v1.SubscriberClient(**_emulator_kwargs(emulator_host, SubscriberGrpcTransport))


def provision(topology: Topology, project: str, push_endpoints: dict[str, str],
              emulator_host: str | None = None) -> None:
    """Create the topology's topics and subscriptions (idempotent). On Google Cloud, Terraform
    does this from the same Topology; this is for the emulator and for tests.

    `push_endpoints` maps a function name to the URL its subscription pushes to.
    """
    from google.api_core import exceptions
    from google.cloud import pubsub_v1
    from google.protobuf import duration_pb2
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

    publisher = pubsub_v1.PublisherClient(
        **_emulator_kwargs(emulator_host, PublisherGrpcTransport))
    subscriber = make_subscriber(emulator_host)

    def seconds(value: float) -> duration_pb2.Duration:
        return duration_pb2.Duration(seconds=int(value), nanos=int((value % 1) * 1e9))

    for topic in topology.topics:
        with contextlib.suppress(exceptions.AlreadyExists):
            publisher.create_topic(name=f"projects/{project}/topics/{topic.name}")
    for sub in topology.subscriptions:
        request: dict[str, Any] = {
            "name": f"projects/{project}/subscriptions/{sub.name}",
            "topic": f"projects/{project}/topics/{sub.topic}",
            "ack_deadline_seconds": sub.ack_deadline_seconds,
            "retry_policy": {
                "minimum_backoff": seconds(sub.retry.minimum_backoff_seconds),
                "maximum_backoff": seconds(sub.retry.maximum_backoff_seconds),
            },
        }
        if sub.push_function is not None:
            request["push_config"] = {"push_endpoint": push_endpoints[sub.push_function]}
        if sub.dead_letter_topic:
            request["dead_letter_policy"] = {
                "dead_letter_topic": f"projects/{project}/topics/{sub.dead_letter_topic}",
                "max_delivery_attempts": sub.max_delivery_attempts,
            }
        with contextlib.suppress(exceptions.AlreadyExists):
            subscriber.create_subscription(request=request)
        log.debug("subscription ready", extra={"subscription": sub.name})

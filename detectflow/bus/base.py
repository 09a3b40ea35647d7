"""The event-bus port: publish messages to named topics (Pub/Sub semantics: at least once)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# Attributes Pub/Sub adds to a message it moves to a dead-letter topic (same names here).
DEAD_LETTER_SOURCE_SUBSCRIPTION = "CloudPubSubDeadLetterSourceSubscription"
DEAD_LETTER_DELIVERY_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery of a published message, whichever bus carried it."""

    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    message_id: str = ""
    publish_time: float = field(default_factory=time.time)  # unix seconds
    delivery_attempt: int = 1


Handler = Callable[[Message], object]
"""Returns (anything) to acknowledge; raises to have the message redelivered later."""


@runtime_checkable
class EventBus(Protocol):
    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        """Publish and wait until the bus has the message; returns its id."""
        ...

"""Event buses: the `EventBus` port, the in-process default and Google Cloud Pub/Sub."""

from __future__ import annotations

from typing import TYPE_CHECKING

from detectflow.bus.base import EventBus, Handler, Message
from detectflow.bus.memory import InProcessBus, SubscriptionOptions

if TYPE_CHECKING:
    from detectflow.settings import Settings

__all__ = ["EventBus", "Handler", "InProcessBus", "Message", "SubscriptionOptions", "make_bus"]


def make_bus(settings: Settings) -> EventBus:
    """The publishing side of the bus the settings name (in-process: a fresh, empty bus)."""
    if settings.bus == "pubsub":
        from detectflow.bus.pubsub import PubSubBus

        if not settings.project:
            raise ValueError("Pub/Sub needs a project")
        return PubSubBus(settings.project, settings.pubsub_emulator_host)
    return InProcessBus()

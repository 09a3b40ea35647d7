"""The three handlers behind one object, for both ways events arrive.

  * `*_message(Message)`: the in-process bus (embedded pipeline).
  * `*_event(event_type, data)`: a CloudEvent from functions-framework (deployed functions and
    the emulator stack), direct storage trigger or Pub/Sub push.
Malformed deliveries are logged and acknowledged: retrying cannot fix them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from detectflow.bus import EventBus, Message
from detectflow.catalog import Catalog
from detectflow.imaging import ImageLimits
from detectflow.model.registry import ModelRegistry
from detectflow.pipeline.deadletter import DeadLetterRecorder
from detectflow.pipeline.events import (
    PUBSUB_PUBLISHED,
    MalformedEvent,
    PreparedNotice,
    message_from_cloud_event,
    storage_object_from_cloud_event,
    storage_object_from_message,
)
from detectflow.pipeline.infer import Inferrer
from detectflow.pipeline.outcomes import Outcome
from detectflow.pipeline.preprocess import Preprocessor
from detectflow.settings import Settings
from detectflow.storage import Buckets

log = logging.getLogger(__name__)


class PipelineHandlers:
    def __init__(self, buckets: Buckets, bus: EventBus, registry: ModelRegistry,
                 prepared_topic: str, results_topic: str, limits: ImageLimits,
                 catalog: Catalog | None = None, score_threshold: float | None = None) -> None:
        self.buckets = buckets
        self.registry = registry
        self.catalog = catalog
        self.preprocessor = Preprocessor(buckets, bus, registry, prepared_topic, results_topic,
                                         limits, catalog)
        self.inferrer = Inferrer(buckets, bus, registry, results_topic, limits, catalog,
                                 score_threshold)
        self.dead_letters = DeadLetterRecorder(buckets, bus, results_topic, catalog)

    @classmethod
    def from_settings(cls, settings: Settings, buckets: Buckets, bus: EventBus,
                      registry: ModelRegistry | None = None, catalog: Catalog | None = None
                      ) -> PipelineHandlers:
        registry = registry or ModelRegistry(
            buckets.models, settings.model_name, settings.model_cache_dir,
            version=settings.model_version, check_seconds=settings.model_check_seconds)
        return cls(buckets, bus, registry, settings.prepared_topic, settings.results_topic,
                   settings.image_limits, catalog, settings.score_threshold)

    # In-process bus -------------------------------------------------------------------
    def preprocess_message(self, message: Message) -> Outcome:
        return _acking_malformed(lambda: self._preprocess_message(message))

    def _preprocess_message(self, message: Message) -> Outcome:
        obj = storage_object_from_message(message)
        return "ignored" if obj is None else self.preprocessor.handle(obj)

    def infer_message(self, message: Message) -> Outcome:
        return _acking_malformed(
            lambda: self.inferrer.handle(PreparedNotice.from_message(message)))

    def dead_letter_message(self, message: Message) -> Outcome:
        return _acking_malformed(lambda: self.dead_letters.handle(message))

    # CloudEvents (functions-framework) --------------------------------------------------
    def preprocess_event(self, event_type: str, data: Any) -> Outcome:
        def run() -> Outcome:
            obj = storage_object_from_cloud_event(event_type, data)
            return "ignored" if obj is None else self.preprocessor.handle(obj)
        return _acking_malformed(run)

    def infer_event(self, event_type: str, data: Any) -> Outcome:
        return _acking_malformed(
            lambda: self.infer_message(_pubsub_message(event_type, data)))

    def dead_letter_event(self, event_type: str, data: Any) -> Outcome:
        return _acking_malformed(
            lambda: self.dead_letter_message(_pubsub_message(event_type, data)))


def _pubsub_message(event_type: str, data: Any) -> Message:
    if event_type != PUBSUB_PUBLISHED:
        raise MalformedEvent(f"expected a Pub/Sub message event, got {event_type!r}")
    return message_from_cloud_event(data)


def _acking_malformed(run: Callable[[], Outcome]) -> Outcome:
    try:
        result: Outcome = run()
    except MalformedEvent as err:
        log.error("malformed event acknowledged and dropped", extra={"reason": str(err)})
        return "ignored"
    return result

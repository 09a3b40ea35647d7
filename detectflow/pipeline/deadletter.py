"""The last stop: a message that failed every delivery still leaves an error record behind."""

from __future__ import annotations

import logging

from detectflow.bus import EventBus, Message
from detectflow.bus.base import DEAD_LETTER_DELIVERY_COUNT, DEAD_LETTER_SOURCE_SUBSCRIPTION
from detectflow.catalog import Catalog
from detectflow.layout import image_id_for_upload
from detectflow.pipeline.events import PreparedNotice, storage_object_from_message
from detectflow.pipeline.outcomes import (
    Outcome,
    error_record,
    read_failure_note,
    record_outcome,
    result_exists,
)
from detectflow.records import SourceObject
from detectflow.storage import Buckets

log = logging.getLogger(__name__)


class DeadLetterRecorder:
    def __init__(self, buckets: Buckets, bus: EventBus, results_topic: str,
                 catalog: Catalog | None = None) -> None:
        self.buckets = buckets
        self.catalog = catalog
        self.bus = bus
        self.results_topic = results_topic

    def handle(self, message: Message) -> Outcome:
        """Raises only when storage fails (then the dead letter itself is retried)."""
        found = self._identify(message)
        if found is None:
            log.error("dead letter names no upload; dropped",
                      extra={"message_id": message.message_id,
                             "attributes": message.attributes})
            return "ignored"
        image_id, source, stage = found
        if result_exists(self.buckets, image_id):
            return "duplicate"
        attempts = message.attributes.get(DEAD_LETTER_DELIVERY_COUNT, "several")
        note = read_failure_note(self.buckets.work, image_id)
        reason = f": {note['error']}" if note and note.get("error") else " (see the logs)"
        text = (f"Processing failed {attempts} times in the {stage} stage and was given "
                f"up{reason}")
        log.error("upload dead-lettered", extra={
            "image_id": image_id, "stage": stage, "delivery_attempts": attempts,
            "subscription": message.attributes.get(DEAD_LETTER_SOURCE_SUBSCRIPTION)})
        record = error_record(image_id, source, "processing_failed", text)
        return record_outcome(self.buckets, self.bus, self.results_topic, record, self.catalog)

    def _identify(self, message: Message) -> tuple[str, SourceObject, str] | None:
        """(image id, source, stage) of a dead-lettered upload event or prepared notice."""
        try:
            if "image_id" in message.attributes:
                notice = PreparedNotice.from_message(message)
                return notice.image_id, notice.source, "infer"
            obj = storage_object_from_message(message)
        except ValueError:
            return None
        if obj is None or obj.bucket != self.buckets.uploads.bucket:
            return None
        return image_id_for_upload(obj.name, obj.generation), obj.to_source(), "preprocess"

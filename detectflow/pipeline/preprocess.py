"""Stage 1: an upload -> validated, oriented, letterboxed pixels in the work bucket -> notice."""

from __future__ import annotations

import logging
import time

from detectflow.bus import EventBus
from detectflow.catalog import Catalog, NullCatalog, upload_entry
from detectflow.imaging import ImageError, ImageLimits
from detectflow.layout import image_id_for_upload, work_key
from detectflow.model.registry import ModelNotFound, ModelRegistry
from detectflow.pipeline.events import PreparedNotice, StorageObject
from detectflow.pipeline.outcomes import (
    Outcome,
    error_record,
    index,
    note_failure,
    record_outcome,
    result_exists,
)
from detectflow.pipeline.prepare import encode_prepared, prepare_image
from detectflow.storage import BlobNotFound, Buckets

log = logging.getLogger(__name__)


class Preprocessor:
    def __init__(self, buckets: Buckets, bus: EventBus, registry: ModelRegistry,
                 prepared_topic: str, results_topic: str, limits: ImageLimits,
                 catalog: Catalog | None = None) -> None:
        self.buckets = buckets
        self.catalog = catalog or NullCatalog()
        self.bus = bus
        self.registry = registry
        self.prepared_topic = prepared_topic
        self.results_topic = results_topic
        self.limits = limits

    def handle(self, obj: StorageObject) -> Outcome:
        """Idempotent. Bad images get an error record (permanent); anything unexpected is
        noted and raised, so the bus redelivers and finally dead-letters the event."""
        if obj.bucket != self.buckets.uploads.bucket:
            log.warning("event for another bucket ignored",
                        extra={"bucket": obj.bucket, "object": obj.name})
            return "ignored"
        image_id = image_id_for_upload(obj.name, obj.generation)
        if result_exists(self.buckets, image_id):
            log.info("duplicate delivery acknowledged", extra={"image_id": image_id,
                                                               "stage": "preprocess"})
            return "duplicate"
        # Also the catalog's first record of a file copied into the bucket by other means.
        index(self.catalog, upload_entry(
            image_id, obj.name, "processing", filename=obj.metadata.get("filename"),
            time_created=obj.time_created, generation=obj.generation))
        try:
            return self._prepare(image_id, obj)
        except ImageError as err:
            record = error_record(image_id, obj.to_source(), err.code, str(err))
            return record_outcome(self.buckets, self.bus, self.results_topic, record,
                                  self.catalog)
        except Exception as err:
            note_failure(self.buckets.work, image_id, "preprocess", err)
            raise

    def _prepare(self, image_id: str, obj: StorageObject) -> Outcome:
        started = time.time()
        if obj.size == 0:
            raise ImageError("empty", "The file is empty (0 bytes).")
        if obj.size is not None and obj.size > self.limits.max_bytes:  # do not even download
            raise ImageError("too_large", f"The file is {obj.size / 1e6:.1f} MB; the limit is "
                             f"{self.limits.max_bytes / 1e6:.0f} MB.")
        manifest = self.registry.manifest()
        if manifest is None:
            raise ModelNotFound(f"no model {self.registry.name!r} published yet")
        try:
            data = self.buckets.uploads.get(obj.name)
        except BlobNotFound:
            raise ImageError("upload_missing",
                             "The upload was deleted before it could be processed.") from None
        prepared = prepare_image(data, (manifest.input.width, manifest.input.height),
                                 self.limits)
        key = work_key(image_id)
        self.buckets.work.put(key, encode_prepared(prepared.pixels, prepared.placement),
                              content_type="application/x-npz", metadata={"image_id": image_id})
        notice = PreparedNotice(image_id=image_id, work_key=key, source=obj.to_source(),
                                timings_ms={**prepared.timings_ms, "preprocess_ms": round(
                                    (time.time() - started) * 1e3, 3)},
                                uploaded_at=obj.time_created)
        self.bus.publish(self.prepared_topic, *notice.to_message())
        log.info("image prepared", extra={"image_id": image_id, **prepared.timings_ms})
        return "prepared"


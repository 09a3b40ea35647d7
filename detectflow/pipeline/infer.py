"""Stage 2: prepared pixels -> detections with the int8 model -> the result record -> notice."""

from __future__ import annotations

import logging
import time

from detectflow.bus import EventBus
from detectflow.catalog import Catalog
from detectflow.imaging import ImageError, ImageLimits
from detectflow.model.registry import ModelRegistry
from detectflow.pipeline.events import PreparedNotice
from detectflow.pipeline.outcomes import (
    Outcome,
    error_record,
    note_failure,
    record_outcome,
    result_exists,
)
from detectflow.pipeline.prepare import (
    PreparedImage,
    decode_prepared,
    fit_to_input,
    prepare_image,
)
from detectflow.records import ImageSize, ModelRef, ResultRecord
from detectflow.storage import BlobNotFound, Buckets

log = logging.getLogger(__name__)


class _AlreadyDone(Exception):
    """The result was written by an earlier delivery."""


class Inferrer:
    def __init__(self, buckets: Buckets, bus: EventBus, registry: ModelRegistry,
                 results_topic: str, limits: ImageLimits, catalog: Catalog | None = None,
                 score_threshold: float | None = None) -> None:
        self.buckets = buckets
        self.catalog = catalog
        self.bus = bus
        self.registry = registry
        self.results_topic = results_topic
        self.limits = limits
        # None: the served model's own (its manifest's decoding.score_threshold).
        self.score_threshold = score_threshold

    def handle(self, notice: PreparedNotice) -> Outcome:
        """Idempotent: the result is written once (`if_absent`). The happy path does not ask
        first whether a result exists (one request less per image); a late duplicate finds
        the work object gone and the result there, a racing one loses the conditional write."""
        try:
            return self._infer(notice)
        except _AlreadyDone:
            log.info("duplicate delivery acknowledged", extra={"image_id": notice.image_id,
                                                               "stage": "infer"})
            return "duplicate"
        except ImageError as err:
            record = error_record(notice.image_id, notice.source, err.code, str(err))
            return self._finish(record)
        except Exception as err:
            note_failure(self.buckets.work, notice.image_id, "infer", err)
            raise

    def _infer(self, notice: PreparedNotice) -> Outcome:
        started = time.time()
        detector = self.registry.detector()
        load_start = time.perf_counter()
        prepared = self._load_prepared(notice, detector.input_size)
        pixels, placement = fit_to_input(prepared.pixels, prepared.placement,
                                         detector.input_size)
        load_ms = (time.perf_counter() - load_start) * 1e3
        # The Detector serializes its interpreter; decoding runs in parallel, and
        # `last_timings` is per thread, so what we read is this call's.
        detections = detector.detect_prepared(pixels, placement, self.score_threshold)
        stage = detector.last_timings.to_dict()
        now = time.time()
        timings = {**notice.timings_ms, **prepared.timings_ms, "load_work_ms": round(load_ms, 3),
                   "inference_ms": stage["inference_ms"],
                   "postprocess_ms": stage["postprocess_ms"],
                   "infer_stage_ms": round((now - started) * 1e3, 3)}
        if notice.uploaded_at:
            timings["upload_to_result_ms"] = round((now - notice.uploaded_at) * 1e3, 3)
        width, height = placement.original_size
        record = ResultRecord(
            image_id=notice.image_id, status="done", source=notice.source,
            image=ImageSize(width=width, height=height),
            detections=detections,
            model=ModelRef(name=detector.manifest.name, version=detector.manifest.version),
            timings_ms=timings,
        )
        return self._finish(record)

    def _load_prepared(self, notice: PreparedNotice, input_size: tuple[int, int]
                       ) -> PreparedImage:
        try:
            data = self.buckets.work.get(notice.work_key)
        except BlobNotFound:
            if result_exists(self.buckets, notice.image_id):
                raise _AlreadyDone from None
            # Gone (lifecycle rule, manual cleanup): prepare again from the upload itself.
            log.warning("work object missing; preparing again from the upload",
                        extra={"image_id": notice.image_id})
            try:
                upload = self.buckets.uploads.get(notice.source.name)
            except BlobNotFound:
                raise ImageError("upload_missing", "The upload was deleted before it could "
                                 "be processed.") from None
            return prepare_image(upload, input_size, self.limits)
        pixels, placement = decode_prepared(data)
        return PreparedImage(pixels, placement, {})

    def _finish(self, record: ResultRecord) -> Outcome:
        return record_outcome(self.buckets, self.bus, self.results_topic, record, self.catalog)

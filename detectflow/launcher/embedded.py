"""The whole pipeline in one process: local folders (or any BlobStore) and the in-process bus.

Same handlers, same topology (subscriptions, retries, dead letters) as the emulator stack and
Google Cloud; only the transport differs.

    with EmbeddedPipeline(Buckets.local("var/detectflow"), settings) as pipeline:
        pipeline.buckets.uploads.put(upload_key(new_image_id(), "cells.jpg"), data)
        pipeline.wait_idle()
"""

from __future__ import annotations

import dataclasses
import logging
from types import TracebackType

from detectflow.bus import InProcessBus, SubscriptionOptions
from detectflow.launcher.watcher import NotifyingBlobStore, UploadNotifier, UploadsWatcher
from detectflow.layout import image_id_for_upload
from detectflow.model.registry import ModelRegistry
from detectflow.pipeline.handlers import PipelineHandlers
from detectflow.pipeline.outcomes import result_exists
from detectflow.settings import Settings
from detectflow.storage import Buckets, LocalBlobStore
from detectflow.topology import Topology, default_topology

log = logging.getLogger(__name__)


class EmbeddedPipeline:
    """`buckets` (after construction) is what callers write uploads to: its uploads store
    announces every put to the pipeline."""

    def __init__(self, buckets: Buckets, settings: Settings, workers: int = 1,
                 watch: bool = True, watch_interval: float = 0.5,
                 registry: ModelRegistry | None = None,
                 topology: Topology | None = None) -> None:
        self.settings = settings
        self.workers = workers
        self.topology = topology or default_topology("local")
        self.bus = InProcessBus()
        self.notifier = UploadNotifier(self.bus, settings.uploads_topic, buckets.uploads.bucket)
        self.buckets = dataclasses.replace(
            buckets, uploads=NotifyingBlobStore(buckets.uploads, self.notifier))
        self.registry = registry or ModelRegistry(
            buckets.models, settings.model_name, settings.model_cache_dir,
            version=settings.model_version, check_seconds=settings.model_check_seconds,
            per_thread=workers > 1)
        self.handlers = PipelineHandlers.from_settings(settings, self.buckets, self.bus,
                                                       self.registry)
        self.watcher: UploadsWatcher | None = None
        if watch and isinstance(buckets.uploads, LocalBlobStore):
            self.watcher = UploadsWatcher(buckets.uploads, buckets.uploads.root, self.notifier,
                                          self._is_done, interval=watch_interval)
        self._started = False

    def _is_done(self, key: str, generation: str) -> bool:
        return result_exists(self.buckets, image_id_for_upload(key, generation))

    def _options(self, function: str) -> SubscriptionOptions:
        spec = self.topology.subscription_for(function)
        return SubscriptionOptions(
            workers=self.workers if function != "dead-letter" else 1, retry=spec.retry,
            dead_letter_topic=spec.dead_letter_topic,
            max_delivery_attempts=spec.max_delivery_attempts)

    def start(self) -> EmbeddedPipeline:
        settings, handlers = self.settings, self.handlers
        self.bus.subscribe("preprocess", settings.uploads_topic, handlers.preprocess_message,
                           self._options("preprocess"))
        self.bus.subscribe("infer", settings.prepared_topic, handlers.infer_message,
                           self._options("infer"))
        self.bus.subscribe("dead-letter", settings.dead_letter_topic,
                           handlers.dead_letter_message, self._options("dead-letter"))
        if self.watcher is not None:
            self.watcher.start()
        self._started = True
        log.info("embedded pipeline started", extra={
            "workers": self.workers, "watching": self.watcher is not None})
        return self

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True once no message is queued, in flight or waiting for a retry."""
        return self.bus.wait_idle(timeout)

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        self.bus.close()
        self._started = False

    def __enter__(self) -> EmbeddedPipeline:
        return self if self._started else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

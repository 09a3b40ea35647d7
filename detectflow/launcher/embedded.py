"""The whole pipeline in one process: local folders (or any BlobStore) and the in-process bus.

Same handlers, same topology (subscriptions, retries, dead letters) as the emulator stack and
Google Cloud; only the transport differs.

    with EmbeddedPipeline(Buckets.local("var/detectflow"), settings) as pipeline:
        pipeline.buckets.uploads.put(upload_key(new_image_id(), "cells.jpg"), data)
        pipeline.wait_idle()

With `watch` (the default), it also listens for files dropped into a local uploads folder; with
`reconcile` (by default: as `watch`) it reconciles in the background: once at start (uploads
the last run left without a result), then the catalog's stuck records every
`settings.reconcile_interval_seconds`.
"""

from __future__ import annotations

import dataclasses
import logging
from types import TracebackType

from detectflow.bus import InProcessBus, SubscriptionOptions
from detectflow.catalog import Catalog, NullCatalog
from detectflow.launcher.reconciling import ReconcileLoop
from detectflow.launcher.watcher import NotifyingBlobStore, UploadNotifier, UploadsWatcher
from detectflow.model.registry import ModelRegistry
from detectflow.pipeline.events import StorageObject, storage_notification
from detectflow.pipeline.handlers import PipelineHandlers
from detectflow.pipeline.reconcile import Reconciler
from detectflow.settings import Settings
from detectflow.storage import Buckets, LocalBlobStore
from detectflow.topology import Topology, default_topology

log = logging.getLogger(__name__)


class EmbeddedPipeline:
    """`buckets` (after construction) is what callers write uploads to: its uploads store
    announces every put to the pipeline."""

    def __init__(self, buckets: Buckets, settings: Settings, workers: int = 1,
                 watch: bool = True, settle_seconds: float = 0.5,
                 registry: ModelRegistry | None = None,
                 topology: Topology | None = None, catalog: Catalog | None = None,
                 reconcile: bool | None = None) -> None:
        self.settings = settings
        self.workers = workers
        self.topology = topology or default_topology("local")
        self.catalog = catalog or NullCatalog()
        self.bus = InProcessBus()
        self.notifier = UploadNotifier(self.bus, settings.uploads_topic, buckets.uploads.bucket)
        self.buckets = dataclasses.replace(
            buckets, uploads=NotifyingBlobStore(buckets.uploads, self.notifier))
        self.registry = registry or ModelRegistry(
            buckets.models, settings.model_name, settings.model_cache_dir,
            version=settings.model_version, check_seconds=settings.model_check_seconds,
            per_thread=workers > 1)
        self.handlers = PipelineHandlers.from_settings(settings, self.buckets, self.bus,
                                                       self.registry, self.catalog)
        self.reconciler = Reconciler(self.buckets, self.catalog, self.redrive)
        self.watcher: UploadsWatcher | None = None
        self.reconcile_loop: ReconcileLoop | None = None
        if watch if reconcile is None else reconcile:
            self.reconcile_loop = ReconcileLoop(self.reconciler,
                                                settings.reconcile_interval_seconds,
                                                settings.reconcile_older_than_seconds,
                                                settle_seconds)
        if watch and isinstance(buckets.uploads, LocalBlobStore):
            self.watcher = UploadsWatcher(buckets.uploads, buckets.uploads.root,
                                          self.notifier, settle_seconds=settle_seconds)
        self._started = False

    def redrive(self, obj: StorageObject) -> None:
        """Publish an upload's notification again (reconcile): the normal path runs it."""
        self.bus.publish(self.settings.uploads_topic, *storage_notification(obj))

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
            self.watcher.start()  # before the start-up scan, so nothing falls in between
            self.watcher.ready.wait(10)
        if self.reconcile_loop is not None:
            self.reconcile_loop.start()
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
        if self.reconcile_loop is not None:
            self.reconcile_loop.stop()
        self.bus.close()
        self._started = False

    def __enter__(self) -> EmbeddedPipeline:
        return self if self._started else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

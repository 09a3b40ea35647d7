"""Lazy, per-process pipeline objects for the deployed functions (GCP's "lazy globals" tip).

Built on the first event, after functions-framework's gunicorn has forked its workers (gRPC
channels must not cross a fork), from the environment (see detectflow/settings.py).
"""

from __future__ import annotations

import threading

from detectflow.bus import make_bus
from detectflow.catalog import make_catalog
from detectflow.pipeline.handlers import PipelineHandlers
from detectflow.settings import load_function_settings
from detectflow.storage import make_buckets

_handlers: PipelineHandlers | None = None
_lock = threading.Lock()


def handlers() -> PipelineHandlers:
    global _handlers
    if _handlers is None:
        with _lock:
            if _handlers is None:
                settings = load_function_settings()
                _handlers = PipelineHandlers.from_settings(
                    settings, make_buckets(settings), make_bus(settings),
                    catalog=make_catalog(settings))
    return _handlers

"""`/api/stats`: how many images are in each status, and detections per class, for the page
header. From the catalog's counters (SQLite) or count/sum aggregations (Firestore), cached for
a moment so a busy page does not turn into a stream of aggregation queries."""

from __future__ import annotations

import threading
import time

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from detectflow.catalog import STATUSES, Catalog, CatalogStats
from frontend.deps import CatalogDep, ManifestDep
from frontend.schemas import Stats

router = APIRouter(prefix="/api", tags=["stats"])

CACHE_SECONDS = 2.0


class StatsCache:
    """The last stats per set of classes, for CACHE_SECONDS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, ...], tuple[float, CatalogStats]] = {}

    def get(self, catalog: Catalog, labels: tuple[str, ...]) -> CatalogStats:
        now = time.monotonic()
        with self._lock:
            cached = self._entries.get(labels)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        stats = catalog.stats(labels)
        with self._lock:
            self._entries[labels] = (now, stats)
        return stats


def _cache(request: Request) -> StatsCache:
    cache: StatsCache | None = getattr(request.app.state, "stats_cache", None)
    if cache is None:
        cache = request.app.state.stats_cache = StatsCache()
    return cache


@router.get("/stats", response_model=Stats, summary="Images by status, detections by class")
async def get_stats(request: Request, catalog: CatalogDep, manifest: ManifestDep) -> Stats:
    """Counts over the whole gallery (not a filter); a second or two behind at most."""
    labels = tuple(manifest.classes) if manifest else ()
    stats = await run_in_threadpool(_cache(request).get, catalog, labels)
    images: dict[str, int] = {status: stats.images_by_status.get(status, 0)
                              for status in STATUSES}
    return Stats(images=images, total=sum(images.values()),
                 detections={**dict.fromkeys(labels, 0), **stats.detections_by_class})

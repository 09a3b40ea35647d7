"""Reconcile in the background of `detectflow up`: the full pass once at start-up (what was in
flight when the last run stopped, and files that arrived meanwhile), then the catalog's stuck
records every `interval` seconds (never a bucket listing)."""

from __future__ import annotations

import logging
import threading

from detectflow.pipeline.reconcile import Reconciler

log = logging.getLogger(__name__)


class ReconcileLoop:
    def __init__(self, reconciler: Reconciler, interval: float, older_than: float,
                 settle_seconds: float = 0.5) -> None:
        self.reconciler = reconciler
        self.settle_seconds = settle_seconds
        self.interval = interval
        self.older_than = older_than
        self.started_up = threading.Event()  # set once the start-up pass is over
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ReconcileLoop:
        self._thread = threading.Thread(target=self._run, name="reconcile", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            # Nothing of this process is in flight yet: every upload without a result is due.
            self.reconciler.full(older_than=0.0, settle_seconds=self.settle_seconds)
        except Exception:
            log.warning("start-up reconcile failed", exc_info=True)
        finally:
            self.started_up.set()
        while self.interval > 0 and not self._stop.wait(self.interval):
            try:
                self.reconciler.stuck(self.older_than)
            except Exception:  # the next pass tries again
                log.warning("reconcile pass failed", exc_info=True)

"""Clients waiting for an image's status (long-poll `?wait`, `/events`), woken when it changes.

Each waiting request used to read the image's status itself every 20-100 ms: 200 clients on
one queued image were thousands of storage reads a second, and slowed the pipeline sharing the
machine by ~40 %. Here one background thread reads the status of each image somebody waits
on, once per tick however many clients wait on it, and wakes them all when it changes. The
waiting clients are counted; past `max_clients` a new one is refused (503), so a crowd of
them cannot exhaust connections, memory or the event loop.

Wake-ups cross threads and event loops (`loop.call_soon_threadsafe`), so the watch works
under any ASGI server and in tests that run each request on its own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from frontend.schemas import ImageDetail

log = logging.getLogger(__name__)

# What a status read gives: the image as GET /api/images/{id} shows it, None when it is gone.
StatusProbe = Callable[[str], ImageDetail | None]
GONE = "not_found"


class TooManyWaiting(Exception):
    """`max_clients` clients are already waiting."""


def status_of(detail: ImageDetail | None) -> str:
    return GONE if detail is None else detail.status


@dataclass
class _Watched:
    """One image somebody waits on."""

    clients: int = 0
    read: bool = False  # the thread has read it at least once
    latest: ImageDetail | None = None
    waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = field(
        default_factory=list)


class StatusWatch:
    """The images clients wait on, read by one thread every `tick_s` while any are waited on."""

    def __init__(self, probe: StatusProbe, tick_s: float, max_clients: int) -> None:
        self.probe = probe
        self.tick_s = tick_s
        self.max_clients = max_clients
        self._lock = threading.Lock()
        self._watched: dict[str, _Watched] = {}
        self._clients = 0
        self._thread: threading.Thread | None = None

    @property
    def clients(self) -> int:
        return self._clients

    @contextmanager
    def waiting(self, image_ids: list[str]) -> Iterator[None]:
        """Count one client waiting on `image_ids` for the block; TooManyWaiting when full."""
        with self._lock:
            if self._clients >= self.max_clients:
                raise TooManyWaiting
            self._clients += 1
            for image_id in image_ids:
                self._watched.setdefault(image_id, _Watched()).clients += 1
            self._start_thread()
        try:
            yield
        finally:
            with self._lock:
                self._clients -= 1
                for image_id in image_ids:
                    entry = self._watched[image_id]
                    entry.clients -= 1
                    if entry.clients == 0:
                        del self._watched[image_id]

    async def change(self, image_id: str, seen: str, timeout: float) -> bool:
        """True once the image's status is no longer `seen` (at once if it already is not;
        `latest` then tells what it is), False after `timeout` s without a change. Only
        inside `waiting([image_id, ...])`."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                entry = self._watched[image_id]
                if entry.read and status_of(entry.latest) != seen:
                    return True
                future: asyncio.Future[None] = loop.create_future()
                entry.waiters.append((loop, future))
            try:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                await asyncio.wait_for(future, remaining)
            except TimeoutError:
                return False
            finally:
                with self._lock:
                    if (loop, future) in entry.waiters:
                        entry.waiters.remove((loop, future))

    def latest(self, image_id: str) -> ImageDetail | None:
        """The image as last read (None: gone). Only inside `waiting([image_id, ...])`."""
        with self._lock:
            return self._watched[image_id].latest

    # --- the reading thread -------------------------------------------------------------------

    def _start_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="status-watch", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                image_ids = list(self._watched)
                if not image_ids:
                    self._thread = None  # a later client starts a new one
                    return
            started = time.monotonic()
            for image_id in image_ids:
                try:
                    detail = self.probe(image_id)
                except Exception:  # storage hiccup: keep the last known status, try again
                    log.warning("status read failed", exc_info=True,
                                extra={"image_id": image_id})
                    continue
                self._publish(image_id, detail)
            # Rest at least as long as the pass took: with many images watched, reading them
            # never takes more than half of this thread's time (and of the GIL).
            time.sleep(max(self.tick_s, time.monotonic() - started))

    def _publish(self, image_id: str, detail: ImageDetail | None) -> None:
        with self._lock:
            entry = self._watched.get(image_id)
            if entry is None:
                return
            changed = not entry.read or status_of(entry.latest) != status_of(detail)
            entry.read, entry.latest = True, detail
            if not changed:
                return
            waiters, entry.waiters = entry.waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that request's loop is gone: no one waits
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

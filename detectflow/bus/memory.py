"""An in-process event bus with Pub/Sub's delivery rules: the embedded default (no emulator).

Each subscription has its own queue and worker threads. A handler that raises gets the message
again after an exponential backoff; after `max_delivery_attempts` the message moves to the
dead-letter topic with the attributes Pub/Sub would add. Messages live in memory only: after a
crash, the embedded pipeline re-finds unfinished uploads by scanning the buckets on start.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, replace

from detectflow.bus.base import (
    DEAD_LETTER_DELIVERY_COUNT,
    DEAD_LETTER_SOURCE_SUBSCRIPTION,
    Handler,
    Message,
)
from detectflow.topology import RetryPolicy

log = logging.getLogger(__name__)


DEFAULT_RETRY = RetryPolicy(minimum_backoff_seconds=0.2, maximum_backoff_seconds=5)


@dataclass(frozen=True, slots=True)
class SubscriptionOptions:
    workers: int = 1
    retry: RetryPolicy = DEFAULT_RETRY
    dead_letter_topic: str | None = None
    max_delivery_attempts: int | None = None


class _Subscription:
    def __init__(self, bus: InProcessBus, name: str, handler: Handler,
                 options: SubscriptionOptions) -> None:
        self.bus = bus
        self.name = name
        self.handler = handler
        self.options = options
        self.queue: queue.Queue[Message | None] = queue.Queue()
        self.threads: list[threading.Thread] = []
        self.timers: set[threading.Timer] = set()

    def start(self) -> None:
        for index in range(self.options.workers):
            thread = threading.Thread(
                target=self._work, name=f"bus-{self.name}-{index}", daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def deliver(self, message: Message) -> None:
        self.bus._outstanding_add(1)
        self.queue.put(message)

    def _work(self) -> None:
        while True:
            message = self.queue.get()
            if message is None:
                return
            if self.bus.closed:  # closing: drop what is left, the buckets keep the truth
                self.bus._outstanding_add(-1)
                continue
            try:
                self.handler(message)
            except Exception as err:
                self._nack(message, err)
            finally:
                self.bus._outstanding_add(-1)

    def _nack(self, message: Message, err: Exception) -> None:
        attempts = message.delivery_attempt
        limit = self.options.max_delivery_attempts
        log.warning("delivery failed", extra={
            "subscription": self.name, "message_id": message.message_id,
            "delivery_attempt": attempts, "error": f"{type(err).__name__}: {err}"})
        if limit is not None and self.options.dead_letter_topic and attempts >= limit:
            self.bus.publish(self.options.dead_letter_topic, message.data, {
                **message.attributes,
                DEAD_LETTER_SOURCE_SUBSCRIPTION: self.name,
                DEAD_LETTER_DELIVERY_COUNT: str(attempts),
            })
            return
        retry = self.options.retry
        delay = min(retry.maximum_backoff_seconds,
                    retry.minimum_backoff_seconds * 2 ** (attempts - 1))
        again = replace(message, delivery_attempt=attempts + 1)
        self.bus._outstanding_add(1)
        timer = threading.Timer(delay, self._redeliver, args=(again,))
        timer.daemon = True
        self.timers.add(timer)
        timer.start()

    def _redeliver(self, message: Message) -> None:
        self.timers.discard(threading.current_thread())
        if self.bus.closed:
            self.bus._outstanding_add(-1)
            return
        self.queue.put(message)

    def stop(self) -> None:
        for timer in list(self.timers):
            timer.cancel()
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            thread.join(timeout=30)


class InProcessBus:
    """Topics and subscriptions in one process. Publishing to a topic without subscriptions
    drops the message, as Pub/Sub does."""

    def __init__(self) -> None:
        self._subscriptions: dict[str, list[_Subscription]] = defaultdict(list)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._outstanding = 0  # queued + being handled + waiting for a retry
        self.closed = False

    def subscribe(self, name: str, topic: str, handler: Handler,
                  options: SubscriptionOptions | None = None) -> None:
        subscription = _Subscription(self, name, handler, options or SubscriptionOptions())
        self._subscriptions[topic].append(subscription)
        subscription.start()

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        if self.closed:
            raise RuntimeError("the bus is closed")
        message_id = str(next(self._ids))
        message = Message(data=data, attributes=dict(attributes or {}), message_id=message_id)
        for subscription in self._subscriptions.get(topic, []):
            subscription.deliver(message)
        return message_id

    def _outstanding_add(self, delta: int) -> None:
        with self._idle:
            self._outstanding += delta
            if self._outstanding == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every message is handled (or dead-lettered). False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._outstanding:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        """Stop the workers; messages not yet handled are dropped (the buckets keep the truth)."""
        self.closed = True
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription.stop()

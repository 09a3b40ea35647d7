"""The in-process bus keeps Pub/Sub's promises: at-least-once, backoff, dead letters."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from detectflow.bus import InProcessBus, Message, SubscriptionOptions
from detectflow.bus.base import DEAD_LETTER_DELIVERY_COUNT, DEAD_LETTER_SOURCE_SUBSCRIPTION
from detectflow.topology import RetryPolicy

FAST = RetryPolicy(minimum_backoff_seconds=0.01, maximum_backoff_seconds=0.05)


@pytest.fixture
def bus() -> Iterator[InProcessBus]:
    """A bus whose worker threads stop when the test ends, whether it passed or not."""
    bus = InProcessBus()
    try:
        yield bus
    finally:
        bus.close()


def test_every_subscription_gets_every_message(bus: InProcessBus) -> None:
    seen: dict[str, list[bytes]] = {"a": [], "b": []}
    bus.subscribe("a", "topic", lambda m: seen["a"].append(m.data))
    bus.subscribe("b", "topic", lambda m: seen["b"].append(m.data))
    for i in range(20):
        bus.publish("topic", str(i).encode(), {"n": str(i)})
    bus.publish("nobody-listens", b"dropped")
    assert bus.wait_idle(5)
    assert sorted(seen["a"]) == sorted(seen["b"]) == sorted(str(i).encode() for i in range(20))


def test_failed_deliveries_are_retried_with_increasing_attempts(bus: InProcessBus) -> None:
    attempts: list[int] = []

    def flaky(message: Message) -> None:
        attempts.append(message.delivery_attempt)
        if message.delivery_attempt < 3:
            raise ConnectionError("storage hiccup")

    bus.subscribe("s", "t", flaky, SubscriptionOptions(retry=FAST))
    bus.publish("t", b"x")
    assert bus.wait_idle(5)
    assert attempts == [1, 2, 3]


def test_poison_message_moves_to_the_dead_letter_topic(bus: InProcessBus) -> None:
    dead: list[Message] = []
    calls = 0

    def poison(message: Message) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("always fails")

    bus.subscribe("work", "t", poison, SubscriptionOptions(
        retry=FAST, dead_letter_topic="dlq", max_delivery_attempts=5))
    bus.subscribe("dead", "dlq", dead.append)
    bus.publish("t", b"poison", {"image_id": "abc"})
    assert bus.wait_idle(5)
    assert calls == 5
    assert len(dead) == 1
    assert dead[0].data == b"poison"
    assert dead[0].attributes["image_id"] == "abc"
    assert dead[0].attributes[DEAD_LETTER_SOURCE_SUBSCRIPTION] == "work"
    assert dead[0].attributes[DEAD_LETTER_DELIVERY_COUNT] == "5"


def test_workers_run_in_parallel(bus: InProcessBus) -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def slow(message: Message) -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1

    bus.subscribe("s", "t", slow, SubscriptionOptions(workers=3))
    for _ in range(9):
        bus.publish("t", b"x")
    assert bus.wait_idle(5)
    assert peak == 3


def test_wait_idle_times_out_while_work_is_pending(bus: InProcessBus) -> None:
    release = threading.Event()
    bus.subscribe("s", "t", lambda m: release.wait(5))
    bus.publish("t", b"x")
    assert bus.wait_idle(0.1) is False
    release.set()
    assert bus.wait_idle(5) is True

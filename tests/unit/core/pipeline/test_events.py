"""Both delivery shapes of an upload, and the messages between stages, from hand-built events
(the payloads are the ones fake-gcs-server and functions-framework produce; see the notes)."""

from __future__ import annotations

import base64
import json

import pytest

from detectflow.bus import Message
from detectflow.pipeline.events import (
    PUBSUB_PUBLISHED,
    STORAGE_FINALIZED,
    MalformedEvent,
    PreparedNotice,
    StorageObject,
    message_from_cloud_event,
    storage_notification,
    storage_object_from_cloud_event,
    storage_object_from_message,
)
from detectflow.records import SourceObject

RESOURCE = {
    "name": "18ec0430bedb01f5cc58a954350c998a/cells.jpg",
    "bucket": "detectflow-uploads",
    "generation": "1795814958828063",
    "contentType": "image/jpeg",
    "size": "21217",
    "md5Hash": "abc==",
    "metadata": {"filename": "my cells.jpg"},
    "timeCreated": "2026-11-27T21:29:18.828Z",
}
ATTRIBUTES = {
    "eventType": "OBJECT_FINALIZE",
    "bucketId": RESOURCE["bucket"],
    "objectId": RESOURCE["name"],
    "objectGeneration": RESOURCE["generation"],
    "payloadFormat": "JSON_API_V1",
    "eventTime": "2026-11-27T21:29:18.828Z",
}


def pubsub_event_data(data: bytes, attributes: dict[str, str]) -> dict[str, object]:
    """What functions-framework hands a CloudEvent function for a Pub/Sub push."""
    return {"message": {"data": base64.b64encode(data).decode(), "attributes": attributes,
                        "messageId": "123", "publishTime": "2026-11-27T21:29:18.9Z"},
            "subscription": "projects/p/subscriptions/detectflow-preprocess"}


def check(obj: StorageObject | None) -> None:
    assert obj is not None
    assert obj.bucket == "detectflow-uploads"
    assert obj.name == RESOURCE["name"]
    assert obj.generation == "1795814958828063"


def test_direct_storage_trigger() -> None:
    obj = storage_object_from_cloud_event(STORAGE_FINALIZED, RESOURCE)
    check(obj)
    assert obj is not None
    assert obj.size == 21217 and obj.content_type == "image/jpeg"
    assert obj.time_created == pytest.approx(1795814958.828)
    assert obj.to_source().filename == "my cells.jpg"


def test_pubsub_push_of_a_gcs_notification() -> None:
    data = pubsub_event_data(json.dumps(RESOURCE).encode(), ATTRIBUTES)
    check(storage_object_from_cloud_event(PUBSUB_PUBLISHED, data))


def test_notification_without_payload_uses_attributes() -> None:
    attributes = {**ATTRIBUTES, "payloadFormat": "NONE"}
    check(storage_object_from_cloud_event(PUBSUB_PUBLISHED, pubsub_event_data(b"", attributes)))


def test_other_storage_events_are_ignored() -> None:
    deleted = {**ATTRIBUTES, "eventType": "OBJECT_DELETE"}
    assert storage_object_from_cloud_event(
        PUBSUB_PUBLISHED, pubsub_event_data(json.dumps(RESOURCE).encode(), deleted)) is None
    assert storage_object_from_cloud_event(
        "google.cloud.storage.object.v1.deleted", RESOURCE) is None


@pytest.mark.parametrize("event_type,data", [
    (STORAGE_FINALIZED, {"bucket": "b"}),  # no name
    (STORAGE_FINALIZED, b"not json"),
    (PUBSUB_PUBLISHED, {"no": "message"}),
    (PUBSUB_PUBLISHED, {"message": {"data": "%%% not base64", "attributes": {}}}),
    (PUBSUB_PUBLISHED, pubsub_event_data(b"[1, 2]", ATTRIBUTES)),  # JSON, not an object
    ("com.example.something.else", {}),
])
def test_malformed_events_raise_malformed_event(event_type: str, data: object) -> None:
    with pytest.raises(MalformedEvent):
        storage_object_from_cloud_event(event_type, data)


def test_embedded_notifications_have_the_gcs_shape() -> None:
    obj = StorageObject.from_resource(RESOURCE)
    data, attributes = storage_notification(obj)
    assert attributes["eventType"] == "OBJECT_FINALIZE"
    assert attributes["objectId"] == obj.name
    again = storage_object_from_message(Message(data=data, attributes=attributes))
    assert again == obj


def test_prepared_notice_roundtrip_and_delivery_attempt() -> None:
    notice = PreparedNotice(image_id="a" * 32, work_key="a" * 32 + ".npz",
                            source=SourceObject(bucket="u", name="x/y.jpg"),
                            timings_ms={"decode_ms": 1.5})
    data, attributes = notice.to_message()
    event = pubsub_event_data(data, attributes)
    event["deliveryAttempt"] = 3
    message = message_from_cloud_event(event)
    assert message.delivery_attempt == 3
    assert PreparedNotice.from_message(message) == notice
    with pytest.raises(MalformedEvent):
        PreparedNotice.from_message(Message(data=b'{"image_id": 1}'))

"""What travels between the stages, and how to read it from every delivery shape.

Uploads arrive as either
  * a direct storage trigger: CloudEvent `google.cloud.storage.object.v1.finalized` whose data
    is the object resource (Eventarc on Google Cloud), or
  * a Pub/Sub message (push converted by functions-framework to a CloudEvent of type
    `google.cloud.pubsub.topic.v1.messagePublished`, or delivered by the in-process bus) that
    wraps a GCS notification: attributes eventType/bucketId/objectId/objectGeneration/
    payloadFormat, data = the object resource as JSON (JSON_API_V1) or empty (NONE).
Between stages we publish our own small JSON messages: `PreparedNotice`, `ResultNotice`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from detectflow.bus.base import Message
from detectflow.records import SourceObject

STORAGE_FINALIZED = "google.cloud.storage.object.v1.finalized"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
OBJECT_FINALIZE = "OBJECT_FINALIZE"


class MalformedEvent(ValueError):
    """The delivery cannot be understood; retrying will not help (logged, then acknowledged)."""


@dataclass(frozen=True, slots=True)
class StorageObject:
    bucket: str
    name: str
    generation: str | None = None
    content_type: str | None = None
    size: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    time_created: float | None = None  # unix seconds (for upload -> result latency)

    @classmethod
    def from_resource(cls, resource: dict[str, Any]) -> StorageObject:
        """From a GCS object resource (JSON API v1 field names)."""
        try:
            bucket, name = str(resource["bucket"]), str(resource["name"])
        except (KeyError, TypeError) as err:
            raise MalformedEvent(f"storage object without bucket/name: {resource!r:.200}") from err
        size = resource.get("size")
        generation = resource.get("generation")
        return cls(
            bucket=bucket,
            name=name,
            generation=None if generation is None else str(generation),
            content_type=resource.get("contentType"),
            size=None if size is None else int(size),
            metadata={str(k): str(v) for k, v in (resource.get("metadata") or {}).items()},
            time_created=_rfc3339(resource.get("timeCreated")),
        )

    def to_resource(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "name": self.name, "generation": self.generation,
                "contentType": self.content_type,
                "size": None if self.size is None else str(self.size),
                "metadata": self.metadata,
                "timeCreated": None if self.time_created is None else datetime.fromtimestamp(
                    self.time_created, UTC).isoformat().replace("+00:00", "Z")}

    def to_source(self) -> SourceObject:
        filename = self.metadata.get("filename") or self.name.rsplit("/", 1)[-1]
        return SourceObject(bucket=self.bucket, name=self.name, generation=self.generation,
                            filename=filename, content_type=self.content_type, size=self.size)


def storage_notification(obj: StorageObject) -> tuple[bytes, dict[str, str]]:
    """(data, attributes) of the Pub/Sub message GCS sends for a finalized object."""
    attributes = {
        "eventType": OBJECT_FINALIZE,
        "bucketId": obj.bucket,
        "objectId": obj.name,
        "objectGeneration": obj.generation or "",
        "payloadFormat": "JSON_API_V1",
    }
    return json.dumps(obj.to_resource()).encode(), attributes


def storage_object_from_message(message: Message) -> StorageObject | None:
    """The finalized object a GCS notification names; None for other event types."""
    attrs = message.attributes
    event_type = attrs.get("eventType", OBJECT_FINALIZE)
    if event_type != OBJECT_FINALIZE:
        return None
    if message.data and attrs.get("payloadFormat", "JSON_API_V1") == "JSON_API_V1":
        return StorageObject.from_resource(_json_object(message.data))
    if "bucketId" in attrs and "objectId" in attrs:
        return StorageObject(bucket=attrs["bucketId"], name=attrs["objectId"],
                             generation=attrs.get("objectGeneration") or None)
    raise MalformedEvent("Pub/Sub message is not a storage notification")


def message_from_cloud_event(data: Any) -> Message:
    """The Pub/Sub message inside a `messagePublished` CloudEvent's data."""
    if isinstance(data, bytes | str):
        data = _json_object(data)
    try:
        inner = data["message"]
        payload = inner.get("data") or ""
        attributes = {str(k): str(v) for k, v in (inner.get("attributes") or {}).items()}
        message_id = str(inner.get("messageId") or inner.get("message_id") or "")
        attempt = int(data.get("deliveryAttempt") or inner.get("deliveryAttempt") or 1)
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise MalformedEvent(f"not a Pub/Sub message event: {data!r:.200}") from err
    try:
        raw = base64.b64decode(payload, validate=True) if payload else b""
    except (binascii.Error, ValueError) as err:
        raise MalformedEvent("Pub/Sub message data is not base64") from err
    return Message(data=raw, attributes=attributes, message_id=message_id,
                   delivery_attempt=attempt)


def storage_object_from_cloud_event(event_type: str, data: Any) -> StorageObject | None:
    """Both delivery shapes of an upload -> the object (None: not a finalize, ignore)."""
    if event_type == STORAGE_FINALIZED:
        return StorageObject.from_resource(
            _json_object(data) if isinstance(data, bytes | str) else data)
    if event_type == PUBSUB_PUBLISHED:
        return storage_object_from_message(message_from_cloud_event(data))
    if event_type.startswith("google.cloud.storage.object.v1."):
        return None  # deleted, archived, metadataUpdated: nothing to do
    raise MalformedEvent(f"unexpected event type {event_type!r}")


def _rfc3339(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _json_object(data: bytes | str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise MalformedEvent(f"payload is not JSON: {data!r:.100}") from err
    if not isinstance(value, dict):
        raise MalformedEvent(f"payload is not a JSON object: {data!r:.100}")
    return value


class PreparedNotice(BaseModel):
    """preprocess -> infer: where the prepared image is, and what it came from."""

    image_id: str
    work_key: str
    source: SourceObject
    timings_ms: dict[str, float] = {}
    uploaded_at: float | None = None  # unix seconds, when known (for upload->result latency)

    def to_message(self) -> tuple[bytes, dict[str, str]]:
        return self.model_dump_json().encode(), {"image_id": self.image_id}

    @classmethod
    def from_message(cls, message: Message) -> PreparedNotice:
        try:
            return cls.model_validate_json(message.data)
        except ValidationError as err:
            raise MalformedEvent(f"not a prepared-image notice: {err}") from err


class ResultNotice(BaseModel):
    """infer -> results topic: a result record was written (for whoever listens)."""

    image_id: str
    status: str
    result_key: str

    def to_message(self) -> tuple[bytes, dict[str, str]]:
        return self.model_dump_json().encode(), {"image_id": self.image_id,
                                                 "status": self.status}

"""The deployable functions, as functions-framework serves them, with hand-built events
(Google's Cloud Functions samples test the same way): both delivery shapes, HTTP answers
that drive Pub/Sub's retries, and no TensorFlow on the import path."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.paths import REPO_ROOT

from detectflow.imaging import DEFAULT_LIMITS
from detectflow.layout import image_id_for_upload, new_image_id, upload_key, work_key
from detectflow.model.registry import ModelRegistry, publish_bundle
from detectflow.pipeline import image_status, runtime
from detectflow.pipeline.handlers import PipelineHandlers
from detectflow.storage import Buckets

PREPROCESS = REPO_ROOT / "functions" / "preprocess" / "main.py"
INFER = REPO_ROOT / "functions" / "infer" / "main.py"
PROJECT_TOPIC = "/projects/test-project/topics/detectflow-uploads"


class RecordingBus:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str]]] = []
        self._lock = threading.Lock()

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        with self._lock:
            self.published.append((topic, data, attributes or {}))
            return str(len(self.published))

    def on(self, topic: str) -> list[tuple[bytes, dict[str, str]]]:
        return [(d, a) for t, d, a in self.published if t == topic]


@pytest.fixture
def env(tmp_path: Path, model_bundle: Path, monkeypatch: pytest.MonkeyPatch
        ) -> Iterator[tuple[Buckets, RecordingBus]]:
    """The functions' lazy runtime, pointed at local buckets and a recording bus."""
    buckets = Buckets.local(tmp_path / "data")
    name = publish_bundle(buckets.models, model_bundle).name
    bus = RecordingBus()
    registry = ModelRegistry(buckets.models, name, tmp_path / "cache", check_seconds=0)
    handlers = PipelineHandlers(buckets, bus, registry, "detectflow-prepared",
                                "detectflow-results", DEFAULT_LIMITS)
    monkeypatch.setattr(runtime, "_handlers", handlers)
    yield buckets, bus


def client(source: Path, target: str) -> Any:
    import functions_framework

    return functions_framework.create_app(target, str(source), "cloudevent").test_client()


def push_body(data: bytes, attributes: dict[str, str]) -> dict[str, Any]:
    """A Pub/Sub push request body, as the emulator and Pub/Sub send it."""
    return {"message": {"data": base64.b64encode(data).decode(), "attributes": attributes,
                        "messageId": "42", "publishTime": "2026-11-27T21:29:18.9Z"},
            "subscription": "projects/test-project/subscriptions/detectflow-preprocess"}


def stored_upload(buckets: Buckets, data: bytes) -> dict[str, Any]:
    info = buckets.uploads.put(upload_key(new_image_id(), "cells.jpg"), data, "image/jpeg")
    return {"bucket": buckets.uploads.bucket, "name": info.key, "generation": info.generation,
            "contentType": "image/jpeg", "size": str(info.size)}


def test_preprocess_handles_a_direct_storage_trigger(env: tuple[Buckets, RecordingBus],
                                                     samples_dir: Path) -> None:
    buckets, bus = env
    resource = stored_upload(buckets, next((samples_dir / "JPEGImages").glob("*.jpg"))
                             .read_bytes())
    response = client(PREPROCESS, "preprocess_image").post("/", json=resource, headers={
        "ce-specversion": "1.0", "ce-id": "1", "ce-type": "google.cloud.storage.object.v1."
        "finalized", "ce-source": "//storage.googleapis.com/projects/_/buckets/uploads",
        "ce-subject": f"objects/{resource['name']}"})
    assert response.status_code == 200, response.data
    image_id = image_id_for_upload(resource["name"], resource["generation"])
    assert buckets.work.stat(work_key(image_id)) is not None
    assert [a["image_id"] for _, a in bus.on("detectflow-prepared")] == [image_id]


def test_pubsub_push_flows_through_both_functions(env: tuple[Buckets, RecordingBus],
                                                  samples_dir: Path) -> None:
    buckets, bus = env
    resource = stored_upload(buckets, next((samples_dir / "JPEGImages").glob("*.jpg"))
                             .read_bytes())
    attributes = {"eventType": "OBJECT_FINALIZE", "bucketId": resource["bucket"],
                  "objectId": resource["name"], "objectGeneration": resource["generation"],
                  "payloadFormat": "JSON_API_V1"}
    response = client(PREPROCESS, "preprocess_image").post(
        PROJECT_TOPIC, json=push_body(json.dumps(resource).encode(), attributes))
    assert response.status_code == 200, response.data
    (notice, notice_attributes), = bus.on("detectflow-prepared")
    response = client(INFER, "detect_objects").post(
        "/projects/test-project/topics/detectflow-prepared",
        json=push_body(notice, notice_attributes))
    assert response.status_code == 200, response.data
    image_id = notice_attributes["image_id"]
    status, record = image_status(buckets, image_id)
    assert status == "done" and record is not None and record.model is not None
    assert [json.loads(d)["image_id"] for d, _ in bus.on("detectflow-results")] == [image_id]


def test_transient_failure_answers_500_so_pubsub_retries(env: tuple[Buckets, RecordingBus],
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    buckets, _ = env
    resource = stored_upload(buckets, b"\xff\xd8 whatever")

    def storage_down(key: str) -> bytes:
        raise ConnectionError("storage unavailable")

    monkeypatch.setattr(buckets.uploads, "get", storage_down)
    response = client(PREPROCESS, "preprocess_image").post(
        PROJECT_TOPIC, json=push_body(json.dumps(resource).encode(), {}))
    assert response.status_code == 500
    assert image_status(buckets, image_id_for_upload(resource["name"],
                                                     resource["generation"]))[0] == "queued"


def test_permanent_failure_is_recorded_and_acknowledged(env: tuple[Buckets, RecordingBus]
                                                        ) -> None:
    buckets, _ = env
    resource = stored_upload(buckets, b"GIF89a but not really")
    response = client(PREPROCESS, "preprocess_image").post(
        PROJECT_TOPIC, json=push_body(json.dumps(resource).encode(), {}))
    assert response.status_code == 200
    status, record = image_status(
        buckets, image_id_for_upload(resource["name"], resource["generation"]))
    assert status == "failed" and record is not None and record.error is not None


def test_malformed_message_is_acknowledged_not_retried(env: tuple[Buckets, RecordingBus]
                                                       ) -> None:
    response = client(INFER, "detect_objects").post(
        "/projects/test-project/topics/detectflow-prepared",
        json=push_body(b"this is not a notice", {}))
    assert response.status_code == 200


def test_dead_letter_function_writes_the_error_record(env: tuple[Buckets, RecordingBus]
                                                      ) -> None:
    buckets, bus = env
    resource = stored_upload(buckets, b"\xff\xd8 whatever")
    attributes = {"eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1",
                  "CloudPubSubDeadLetterSourceDeliveryCount": "5",
                  "CloudPubSubDeadLetterSourceSubscription": "detectflow-preprocess"}
    response = client(PREPROCESS, "record_dead_letter").post(
        "/projects/test-project/topics/detectflow-dead-letter",
        json=push_body(json.dumps(resource).encode(), attributes))
    assert response.status_code == 200
    status, record = image_status(
        buckets, image_id_for_upload(resource["name"], resource["generation"]))
    assert status == "failed" and record is not None and record.error is not None
    assert record.error.code == "processing_failed"
    assert len(bus.on("detectflow-results")) == 1


def test_infer_function_never_imports_tensorflow(tmp_path: Path, model_bundle: Path,
                                                 samples_dir: Path) -> None:
    """Cold start matters: load the infer function and run a detection in a fresh process,
    then check TensorFlow was never imported."""
    script = f"""
import json, sys
from pathlib import Path
from detectflow.layout import new_image_id, upload_key
from detectflow.model.registry import ModelRegistry, publish_bundle
from detectflow.pipeline import runtime, image_status
from detectflow.pipeline.handlers import PipelineHandlers
from detectflow.imaging import DEFAULT_LIMITS
from detectflow.bus import InProcessBus
from detectflow.storage import Buckets
import functions_framework

buckets = Buckets.local({str(tmp_path / "data")!r})
name = publish_bundle(buckets.models, {str(model_bundle)!r}).name
bus = InProcessBus()
prepared = []
bus.subscribe("capture", "p", prepared.append)
runtime._handlers = PipelineHandlers(buckets, bus, ModelRegistry(
    buckets.models, name, {str(tmp_path / "cache")!r}), "p", "r", DEFAULT_LIMITS)
data = Path({str(next((samples_dir / "JPEGImages").glob("*.jpg")))!r}).read_bytes()
info = buckets.uploads.put(upload_key(new_image_id(), "a.jpg"), data)
resource = {{"bucket": "uploads", "name": info.key, "generation": info.generation}}
headers = {{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "//storage",
           "ce-type": "google.cloud.storage.object.v1.finalized"}}
pre = functions_framework.create_app("preprocess_image", {str(PREPROCESS)!r}, "cloudevent")
assert pre.test_client().post("/", json=resource, headers=headers).status_code == 200
bus.wait_idle(10)
import base64
msg = prepared[0]
push = {{"message": {{"data": base64.b64encode(msg.data).decode(),
         "attributes": msg.attributes, "messageId": "1"}}, "subscription": "s"}}
inf = functions_framework.create_app("detect_objects", {str(INFER)!r}, "cloudevent")
assert inf.test_client().post("/projects/p/topics/p", json=push).status_code == 200
status, record = image_status(buckets, msg.attributes["image_id"])
assert status == "done", status
print(json.dumps({{"tensorflow": sorted(m for m in sys.modules if m.startswith("tensorflow")),
                  "litert": "ai_edge_litert.interpreter" in sys.modules}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"tensorflow": [], "litert": True}


def test_function_requirements_are_minimal() -> None:
    """Each function folder deploys on its own: its requirements name what it imports, and
    neither pulls TensorFlow."""
    for folder in ("preprocess", "infer"):
        text = (REPO_ROOT / "functions" / folder / "requirements.txt").read_text()
        names = {line.split("=")[0].split(">")[0].strip().lower()
                 for line in text.splitlines() if line.strip() and not line.startswith("#")}
        assert "functions-framework" in names and "google-cloud-storage" in names
        assert not any(n.startswith(("tensorflow", "tf-")) for n in names)
    infer = (REPO_ROOT / "functions" / "infer" / "requirements.txt").read_text()
    assert "ai-edge-litert" in infer

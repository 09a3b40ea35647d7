"""The web app over local-folder buckets and a SQLite catalog, for the API tests: a client,
and helpers that write what the pipeline would write (tests/unit/frontend)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from detectflow import layout
from detectflow.catalog import result_entry
from detectflow.catalog.sqlite import SqliteCatalog
from detectflow.detection import Detection
from detectflow.model.manifest import ExportMetrics, InputSpec, Manifest
from detectflow.records import (
    ErrorInfo,
    ImageSize,
    ModelRef,
    ResultRecord,
    SourceObject,
)
from detectflow.storage import Buckets
from frontend import FrontendSettings, create_app

CLASSES = ["RBC", "WBC", "Platelets"]


def sample_manifest() -> Manifest:
    return Manifest(
        name="bccd",
        version="7",
        classes=CLASSES,
        input=InputSpec(width=320, height=320, dtype="int8"),
        exports={
            "int8": ExportMetrics(
                file="model.tflite",
                size_bytes=123_456,
                map50=0.81,
                map50_95=0.52,
                per_class_ap50={"RBC": 0.7, "WBC": 0.97},
            )
        },
    )


def catalog_of(buckets: Buckets) -> SqliteCatalog:
    """The catalog beside the test's buckets (the same file for the app and the helpers)."""
    root = Path(buckets.results.root).parent  # type: ignore[attr-defined]
    return SqliteCatalog(root / "catalog.sqlite3")


def make_client(
    buckets: Buckets, manifest: Manifest | None = None, **settings: object
) -> TestClient:
    app = create_app(buckets, catalog_of(buckets), lambda: manifest,
                     FrontendSettings(**settings))  # type: ignore[arg-type]
    return TestClient(app, raise_server_exceptions=False)


def jpeg_bytes(
    size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="JPEG")
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width`×`height` pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def upload(
    client: TestClient, *files: tuple[str, bytes], content_type: str = "image/jpeg"
) -> list[dict[str, str]]:
    response = client.post(
        "/api/images", files=[("file", (name, data, content_type)) for name, data in files]
    )
    assert response.status_code == 202, response.text
    images: list[dict[str, str]] = response.json()["images"]
    return images


def write_result(
    buckets: Buckets,
    image_id: str,
    status: str = "done",
    detections: list[Detection] | None = None,
    error: ErrorInfo | None = None,
    filename: str = "cells.jpg",
    size: tuple[int, int] = (64, 48),
) -> ResultRecord:
    """What the pipeline writes at the end: the result record, then its catalog entry."""
    record = ResultRecord(
        image_id=image_id,
        status=status,  # type: ignore[arg-type]
        source=SourceObject(bucket="uploads", name=f"{image_id}/{filename}", filename=filename),
        image=ImageSize(width=size[0], height=size[1]) if status == "done" else None,
        detections=detections or [],
        model=ModelRef(name="bccd", version="7") if status == "done" else None,
        timings_ms={"preprocess_ms": 2.5, "inference_ms": 6.0} if status == "done" else {},
        error=error,
    )
    buckets.results.put(
        layout.result_key(image_id), record.model_dump_json().encode(), "application/json"
    )
    catalog_of(buckets).put(result_entry(record))
    return record


DETECTIONS = [
    Detection("RBC", 0, 0.55, (1.0, 2.0, 20.0, 22.0)),
    Detection("WBC", 1, 0.93, (30.0, 10.0, 60.0, 40.0)),
    Detection("Platelets", 2, 0.41, (5.5, 30.25, 12.0, 40.0)),
]


def error_of(response: object) -> dict[str, object]:
    """The JSON error body every failure must have."""
    assert response.headers["content-type"].startswith("application/json")  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and len(body["error"]["message"]) > 10
    error: dict[str, object] = body["error"]
    return error

"""End to end through the API: the real embedded pipeline (in-process bus, local folders) and
the real bundled BCCD model, driven only through HTTP, as a user's program would."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from detectflow.catalog import make_catalog
from detectflow.imaging import DEFAULT_LIMITS
from detectflow.launcher.embedded import EmbeddedPipeline
from detectflow.model.detector import Detector
from detectflow.model.registry import publish_bundle
from detectflow.pipeline.prepare import prepare_image
from detectflow.settings import load_settings
from detectflow.storage import make_buckets
from frontend import create_app

SAMPLES = ("BloodImage_00011.jpg", "BloodImage_00031.jpg", "BloodImage_00065.jpg")


@pytest.fixture
def api(tmp_path: Path, bccd_bundle: Path) -> Iterator[TestClient]:
    settings = load_settings(
        storage="local",
        bus="memory",
        data_dir=tmp_path / "data",
        model_cache_dir=tmp_path / "model-cache",
    )
    buckets = make_buckets(settings)
    publish_bundle(buckets.models, bccd_bundle)
    catalog = make_catalog(settings)
    with EmbeddedPipeline(buckets, settings, watch=False, catalog=catalog) as pipeline:
        app = create_app(pipeline.buckets, catalog, pipeline.registry.manifest)
        with TestClient(app) as client:
            yield client


def test_uploads_become_detections_through_the_api(
    api: TestClient, bccd_bundle: Path, samples_dir: Path
) -> None:
    images = samples_dir / "JPEGImages"
    truncated = (images / SAMPLES[0]).read_bytes()[:3000]  # a valid header, then nothing
    files = [("file", (name, (images / name).read_bytes(), "image/jpeg")) for name in SAMPLES]
    files.append(("file", ("cut.jpg", truncated, "image/jpeg")))
    response = api.post("/api/images", files=files)
    assert response.status_code == 202, response.text
    refs = response.json()["images"]
    assert [r["filename"] for r in refs] == [*SAMPLES, "cut.jpg"]

    results = {r["filename"]: api.get(r["url"], params={"wait": 30}).json() for r in refs}
    assert {name: body["status"] for name, body in results.items()} == {
        **dict.fromkeys(SAMPLES, "done"),
        "cut.jpg": "failed",
    }

    # The damaged file ends in a stored, readable error, not in silence.
    error = results["cut.jpg"]["error"]
    assert error["code"] and len(error["message"]) > 10

    # Each result is exactly what the model gives for that image, boxes in original pixels.
    manifest = api.get("/api/models").json()["models"][0]
    detector = Detector.load(bccd_bundle)
    input_size = (detector.manifest.input.width, detector.manifest.input.height)
    for name in SAMPLES:
        body = results[name]
        assert body["image"] == {"width": 640, "height": 480}
        assert body["model"] == {"name": manifest["name"], "version": manifest["version"]}
        assert body["timings_ms"]
        # The pipeline's own preparation (JPEG draft decode + letterbox), then the model.
        prepared = prepare_image((images / name).read_bytes(), input_size, DEFAULT_LIMITS)
        expected = sorted(
            detector.detect_prepared(prepared.pixels, prepared.placement), key=lambda d: -d.score
        )
        assert len(body["detections"]) == len(expected) > 0
        for got, want in zip(body["detections"], expected, strict=True):
            assert got["label"] == want.label
            assert got["score"] == pytest.approx(want.score, abs=1e-4)
            assert got["box"] == pytest.approx(list(want.box_xyxy), abs=0.02)
            x0, y0, x1, y1 = got["box"]
            assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480
        # Every sample has a white blood cell (tests/data/samples/README.md); the model's
        # best class (WBC AP in the manifest) must find it.
        assert "WBC" in {d["label"] for d in body["detections"]}, name

    # The list shows all four, newest first; the annotated JPEG is the original's size.
    listed = api.get("/api/images").json()["images"]
    assert [i["filename"] for i in listed] == ["cut.jpg", *reversed(SAMPLES)]
    drawn = api.get(f"{refs[0]['url']}/annotated")
    assert drawn.status_code == 200
    assert Image.open(io.BytesIO(drawn.content)).size == (640, 480)
    assert api.get(f"{refs[-1]['url']}/annotated").status_code == 409
    assert api.get("/healthz").json()["model"]["name"] == manifest["name"]

"""REST API of the web app (frontend/), with FastAPI's TestClient over local-folder buckets.

The pipeline is not running here: tests move an image through its states by writing what the
pipeline would write (work object, result record). tests/test_frontend_e2e.py runs the real
embedded pipeline and model.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import ValidationError
from support.api_app import (
    CLASSES,
    DETECTIONS,
    catalog_of,
    error_of,
    jpeg_bytes,
    make_client,
    png_declaring,
    upload,
    write_result,
)

from detectflow import layout
from detectflow.model.manifest import Manifest
from detectflow.records import (
    ErrorInfo,
)
from detectflow.storage import Buckets
from frontend import FrontendSettings

# --- health, limits, models -------------------------------------------------------------------


def test_healthz_names_the_served_model(buckets: Buckets, manifest: Manifest) -> None:
    assert make_client(buckets, manifest).get("/healthz").json() == {
        "status": "ok",
        "model": {"name": "bccd", "version": "7"},
    }
    assert make_client(buckets, None).get("/healthz").json() == {"status": "ok", "model": None}


def test_models_lists_classes_colours_and_metrics(client: TestClient) -> None:
    models = client.get("/api/models").json()["models"]
    assert len(models) == 1
    model = models[0]
    assert (model["name"], model["version"], model["export"]) == ("bccd", "7", "int8")
    assert [c["name"] for c in model["classes"]] == CLASSES
    colours = [c["color"] for c in model["classes"]]
    assert len(set(colours)) == 3 and all(c.startswith("#") and len(c) == 7 for c in colours)
    assert model["metrics"]["map50"] == pytest.approx(0.81)
    assert model["metrics"]["map50_95"] == pytest.approx(0.52)
    assert model["metrics"]["per_class_ap50"]["WBC"] == pytest.approx(0.97)
    assert model["input_size"] == [320, 320]
    assert model["size_bytes"] == 123_456


def test_models_is_empty_without_a_model(buckets: Buckets) -> None:
    assert make_client(buckets, None).get("/api/models").json() == {"models": []}


def test_limits_reflect_settings(buckets: Buckets) -> None:
    limits = (
        make_client(buckets, max_image_bytes=1000, max_files_per_request=3)
        .get("/api/limits")
        .json()
    )
    assert limits["max_upload_bytes"] == 1000
    assert limits["max_files_per_request"] == 3
    assert "JPEG" in limits["accepted_formats"]
    assert limits["api_key_required"] is False


# --- upload -----------------------------------------------------------------------------------


def test_upload_stores_sniffed_type_and_safe_name(client: TestClient, buckets: Buckets) -> None:
    data = jpeg_bytes()
    # The client claims text/plain and a path: the type is read from the bytes, the path dropped.
    (ref,) = upload(client, ("../../etc/blood cells é.jpg", data), content_type="text/plain")
    assert layout.is_image_id(ref["id"])
    assert ref["status"] == "queued"
    assert ref["url"] == f"/api/images/{ref['id']}"
    assert ref["filename"] == "blood cells é.jpg"
    (stored,) = list(buckets.uploads.list())
    assert stored.key == f"{ref['id']}/blood cells é.jpg"
    assert stored.content_type == "image/jpeg"
    assert stored.metadata == {"filename": "blood cells é.jpg"}
    assert buckets.uploads.get(stored.key) == data
    # Nothing else was written anywhere.
    assert not list(buckets.results.list()) and not list(buckets.work.list())


def test_upload_several_files_keeps_request_order(client: TestClient, buckets: Buckets) -> None:
    refs = upload(client, ("a.jpg", jpeg_bytes()), ("b.png", _png()), ("c.jpg", jpeg_bytes()))
    assert [r["filename"] for r in refs] == ["a.jpg", "b.png", "c.jpg"]
    assert len({r["id"] for r in refs}) == 3
    assert [r["id"] for r in refs] == sorted(r["id"] for r in refs)  # time-sortable ids
    types = {info.key.split("/")[1]: info.content_type for info in buckets.uploads.list()}
    assert types == {"a.jpg": "image/jpeg", "b.png": "image/png", "c.jpg": "image/jpeg"}


def _png(size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"hello, this is a text file\n", 415, "not_an_image"),
        (b"", 422, "empty"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", 415, "not_an_image"),
        (png_declaring(100_000, 100_000), 413, "too_many_pixels"),
        (png_declaring(4, 4), 422, "too_small"),
    ],
    ids=["text", "empty", "pdf", "pixel-bomb-header", "tiny"],
)
def test_bad_files_are_refused_with_clear_errors_and_not_stored(
    client: TestClient, buckets: Buckets, data: bytes, status: int, code: str
) -> None:
    response = client.post("/api/images", files=[("file", ("photo.jpg", data, "image/jpeg"))])
    assert response.status_code == status
    error = error_of(response)
    assert error["code"] == code
    assert error["details"] == [
        {"index": 0, "filename": "photo.jpg", "code": code, "message": error["message"]}
    ]
    assert not list(buckets.uploads.list())


def test_one_bad_file_refuses_the_whole_request(client: TestClient, buckets: Buckets) -> None:
    response = client.post(
        "/api/images",
        files=[
            ("file", ("good.jpg", jpeg_bytes(), "image/jpeg")),
            ("file", ("notes.txt", b"not an image", "text/plain")),
        ],
    )
    assert response.status_code == 415
    error = error_of(response)
    assert "1 of 2 files were refused and nothing was stored" in str(error["message"])
    assert error["details"] == [
        {
            "index": 1,
            "filename": "notes.txt",
            "code": "not_an_image",
            "message": "The file is not an image we can read.",
        }
    ]
    assert not list(buckets.uploads.list())


def test_file_over_the_size_limit_is_413(buckets: Buckets) -> None:
    client = make_client(buckets, max_image_bytes=2000)
    response = client.post(
        "/api/images", files=[("file", ("big.jpg", jpeg_bytes((400, 300)), "image/jpeg"))]
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"
    assert not list(buckets.uploads.list())


def test_request_over_the_body_limit_is_413_before_reading(buckets: Buckets) -> None:
    client = make_client(buckets, max_request_bytes=5000)
    response = client.post(
        "/api/images", files=[("file", ("big.jpg", b"\xff" * 20_000, "image/jpeg"))]
    )
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "request_too_large"
    assert not list(buckets.uploads.list())


def test_chunked_body_over_the_limit_is_413_while_streaming(buckets: Buckets) -> None:
    client = make_client(buckets, max_request_bytes=5000)
    boundary = "xyz"

    def body() -> Iterator[bytes]:  # no Content-Length: the limit must count the stream
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        for _ in range(10):
            yield b"\xff" * 1000
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post(
        "/api/images",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"
    assert not list(buckets.uploads.list())


def test_too_many_files_is_413(buckets: Buckets) -> None:
    client = make_client(buckets, max_files_per_request=2)
    files = [("file", (f"{i}.jpg", jpeg_bytes(), "image/jpeg")) for i in range(3)]
    response = client.post("/api/images", files=files)
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_many_files"
    assert not list(buckets.uploads.list())


def test_upload_without_file_field_is_422(client: TestClient) -> None:
    response = client.post("/api/images", data={"other": "x"})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert "No file was sent" in str(error["message"])


# --- status and results -----------------------------------------------------------------------


def test_status_follows_the_pipeline(client: TestClient, buckets: Buckets) -> None:
    (ref,) = upload(client, ("cells.jpg", jpeg_bytes()))
    image_id = ref["id"]
    body = client.get(ref["url"]).json()
    assert (body["status"], body["filename"], body["detections"]) == ("queued", "cells.jpg", [])
    assert body["created"].startswith(time.strftime("%Y", time.gmtime()))

    buckets.work.put(layout.work_key(image_id), b"prepared tensor")
    assert client.get(ref["url"]).json()["status"] == "processing"

    write_result(buckets, image_id, detections=DETECTIONS)
    body = client.get(ref["url"]).json()
    assert body["status"] == "done"
    assert body["box_format"] == "xyxy"
    assert body["image"] == {"width": 64, "height": 48}
    assert body["model"] == {"name": "bccd", "version": "7"}
    assert body["timings_ms"] == {"preprocess_ms": 2.5, "inference_ms": 6.0}
    assert body["error"] is None
    # Best score first, boxes exactly as the record has them (xyxy, original pixels).
    assert [d["label"] for d in body["detections"]] == ["WBC", "RBC", "Platelets"]
    assert body["detections"][0] == {
        "label": "WBC",
        "class_id": 1,
        "score": 0.93,
        "box": [30.0, 10.0, 60.0, 40.0],
    }
    assert body["detections"][2]["box"] == [5.5, 30.25, 12.0, 40.0]
    assert body["links"]["original"] == f"/api/images/{image_id}/original"


def test_failed_image_carries_the_reason(client: TestClient, buckets: Buckets) -> None:
    (ref,) = upload(client, ("cut.jpg", jpeg_bytes()))
    write_result(
        buckets,
        ref["id"],
        status="failed",
        error=ErrorInfo(
            code="corrupt", message="The image could not be decoded (truncated or damaged)."
        ),
    )
    body = client.get(ref["url"]).json()
    assert body["status"] == "failed"
    assert body["error"] == {
        "code": "corrupt",
        "details": [],
        "message": "The image could not be decoded (truncated or damaged).",
    }
    assert body["detections"] == []


def test_unknown_id_is_404(client: TestClient) -> None:
    image_id = layout.new_image_id()
    for path in ("", "/original", "/annotated", "/events"):
        response = client.get(f"/api/images/{image_id}{path}")
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize(
    "bad_id",
    [
        "123",
        "G" * 32,
        "A" * 32,
        "0" * 33,
        "..",
        "%2e%2e",
        "..%2F..%2Fetc%2Fpasswd",
        "a b",
        "0" * 31 + "%00",
    ],
)
def test_malformed_ids_never_reach_storage(
    client: TestClient, buckets: Buckets, bad_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_storage(*args: object, **kwargs: object) -> None:
        raise AssertionError("storage was called with a malformed id")

    for store in (buckets.uploads, buckets.results, buckets.work):
        for method in ("get", "stat", "list"):
            monkeypatch.setattr(store, method, no_storage)
    for suffix in ("", "/original", "/annotated"):
        response = client.get(f"/api/images/{bad_id}{suffix}")
        # 422 for a malformed id; 404 when the path no longer matches a route at all.
        assert response.status_code in (404, 422), (bad_id, suffix, response.status_code)
        error_of(response)


def test_malformed_id_is_422_with_a_clear_message(client: TestClient) -> None:
    response = client.get("/api/images/not-an-id")
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert error["message"] == "That is not an image id: ids are 32 hexadecimal characters."


def test_long_poll_returns_as_soon_as_the_result_lands(
    client: TestClient, buckets: Buckets
) -> None:
    (ref,) = upload(client, ("cells.jpg", jpeg_bytes()))
    timer = threading.Timer(
        0.3, write_result, args=(buckets, ref["id"]), kwargs={"detections": DETECTIONS}
    )
    timer.start()
    started = time.monotonic()
    body = client.get(ref["url"], params={"wait": 10}).json()
    elapsed = time.monotonic() - started
    timer.join()
    assert body["status"] == "done"
    assert 0.25 <= elapsed < 5


def test_long_poll_times_out_with_the_current_status(client: TestClient) -> None:
    (ref,) = upload(client, ("cells.jpg", jpeg_bytes()))
    started = time.monotonic()
    body = client.get(ref["url"], params={"wait": 0.3}).json()
    assert body["status"] == "queued"
    assert time.monotonic() - started >= 0.3
    response = client.get(ref["url"], params={"wait": 31})
    assert response.status_code == 422


def test_events_stream_status_changes_until_done(client: TestClient, buckets: Buckets) -> None:
    (ref,) = upload(client, ("cells.jpg", jpeg_bytes()))
    timer = threading.Timer(
        0.3, write_result, args=(buckets, ref["id"]), kwargs={"detections": DETECTIONS}
    )
    timer.start()
    with client.stream("GET", f"{ref['url']}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    timer.join()
    events = [block for block in text.split("\n\n") if block.startswith("event: status")]
    statuses = [json.loads(_field(e, "data"))["status"] for e in events]
    assert statuses == ["queued", "done"]
    assert len(json.loads(_field(events[-1], "data"))["detections"]) == 3


def _field(event: str, name: str) -> str:
    return next(
        line[len(name) + 2 :] for line in event.splitlines() if line.startswith(f"{name}: ")
    )


# --- listing ----------------------------------------------------------------------------------


def test_list_is_newest_first_and_paginates(client: TestClient, buckets: Buckets) -> None:
    ids = [upload(client, (f"{i}.jpg", jpeg_bytes()))[0]["id"] for i in range(5)]
    write_result(buckets, ids[1], detections=DETECTIONS, filename="1.jpg")
    seen: list[dict[str, object]] = []
    cursor = None
    for _ in range(3):
        params = {"limit": 2} | ({"before": cursor} if cursor else {})
        page = client.get("/api/images", params=params).json()
        seen.extend(page["images"])
        cursor = page["next"]
    assert cursor is None
    assert [s["id"] for s in seen] == list(reversed(ids))
    assert [s["filename"] for s in seen] == ["4.jpg", "3.jpg", "2.jpg", "1.jpg", "0.jpg"]
    by_id = {s["id"]: s for s in seen}
    assert by_id[ids[1]]["status"] == "done" and by_id[ids[1]]["detection_count"] == 3
    assert by_id[ids[0]]["status"] == "queued" and by_id[ids[0]]["detection_count"] is None


def test_list_default_page_size_and_bad_cursor(buckets: Buckets) -> None:
    client = make_client(buckets, page_size=2)
    for i in range(3):
        upload(client, (f"{i}.jpg", jpeg_bytes()))
    page = client.get("/api/images").json()
    assert len(page["images"]) == 2 and page["next"]
    rest = client.get("/api/images", params={"before": page["next"]}).json()
    assert [i["filename"] for i in rest["images"]] == ["0.jpg"] and rest["next"] is None
    for bad in ("../x", page["images"][1]["id"], "12-zz", "x" * 65):
        response = client.get("/api/images", params={"before": bad})
        assert response.status_code == 422, bad
        assert error_of(response)["code"] in ("invalid_cursor", "invalid_request")
    assert client.get("/api/images", params={"limit": 0}).status_code == 422


def test_file_dropped_into_the_bucket_is_listed_once_reconcile_has_seen_it(
    client: TestClient, buckets: Buckets
) -> None:
    """Listing reads the catalog, never the bucket: a file copied into the bucket appears when
    the pipeline (its event) or reconcile (a lost event) catalogues it."""
    from detectflow.pipeline.reconcile import Reconciler

    buckets.uploads.put("scan 1.jpg", jpeg_bytes(), "image/jpeg")
    assert client.get("/api/images").json()["images"] == []
    driven: list[str] = []
    report = Reconciler(buckets, catalog_of(buckets), lambda obj: driven.append(obj.name)).full(
        older_than=0)
    assert driven == ["scan 1.jpg"] and len(report.catalogued) == 1
    (item,) = client.get("/api/images").json()["images"]
    assert item["filename"] == "scan 1.jpg"
    assert item["status"] == "queued"
    assert layout.is_image_id(item["id"])
    assert client.get(item["url"]).json()["status"] == "queued"


# --- pictures ---------------------------------------------------------------------------------


def test_original_is_served_back_exactly(client: TestClient) -> None:
    data = jpeg_bytes()
    (ref,) = upload(client, ("blood cells é.jpg", data))
    response = client.get(f"{ref['url']}/original")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("inline;")
    assert "filename*=UTF-8''blood%20cells%20%C3%A9.jpg" in response.headers["content-disposition"]


def test_annotated_draws_boxes_once_done(client: TestClient, buckets: Buckets) -> None:
    data = jpeg_bytes((64, 48), colour=(255, 255, 255))
    (ref,) = upload(client, ("cells.jpg", data))
    response = client.get(f"{ref['url']}/annotated")
    assert response.status_code == 409
    assert error_of(response)["code"] == "not_ready"

    write_result(buckets, ref["id"], detections=DETECTIONS)
    response = client.get(f"{ref['url']}/annotated")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    drawn = Image.open(io.BytesIO(response.content)).convert("RGB")
    assert drawn.size == (64, 48)
    # The WBC box's left edge (x=30) is coloured; the white background elsewhere is not.
    r, g, b = drawn.getpixel((30, 35))
    assert not (r > 230 and g > 230 and b > 230)
    assert min(drawn.getpixel((62, 46))) > 230

    clean = client.get(f"{ref['url']}/annotated", params={"min_score": 0.99})
    assert min(Image.open(io.BytesIO(clean.content)).convert("RGB").getpixel((30, 35))) > 200


def test_annotated_of_a_failed_image_is_409_with_the_reason(
    client: TestClient, buckets: Buckets
) -> None:
    (ref,) = upload(client, ("cells.jpg", jpeg_bytes()))
    write_result(
        buckets,
        ref["id"],
        status="failed",
        error=ErrorInfo(code="corrupt", message="The image is damaged."),
    )
    response = client.get(f"{ref['url']}/annotated")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "failed"
    assert "The image is damaged." in str(error["message"])


# --- API key, CORS, errors, page, docs --------------------------------------------------------


def test_api_key_guards_the_api_but_not_health_limits_or_page(buckets: Buckets) -> None:
    client = make_client(buckets, api_key="s3cret")
    for path in ("/api/images", "/api/models", f"/api/images/{layout.new_image_id()}"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "X-API-Key" in str(error_of(response)["message"])
        wrong = client.get(path, headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401
        assert error_of(wrong)["message"] == "The API key is not valid."
    response = client.post("/api/images", files=[("file", ("a.jpg", jpeg_bytes(), "image/jpeg"))])
    assert response.status_code == 401
    assert not list(buckets.uploads.list())
    ok = client.post(
        "/api/images",
        headers={"X-API-Key": "s3cret"},
        files=[("file", ("a.jpg", jpeg_bytes(), "image/jpeg"))],
    )
    assert ok.status_code == 202
    assert client.get("/api/images", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/limits").json()["api_key_required"] is True
    assert client.get("/").status_code == 200


def test_cors_only_for_configured_origins(buckets: Buckets) -> None:
    preflight = {
        "Origin": "https://lab.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key",
    }
    allowed = make_client(buckets, cors_origins=["https://lab.example"])
    response = allowed.options("/api/images", headers=preflight)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://lab.example"
    assert "x-api-key" in response.headers["access-control-allow-headers"].lower()
    other = allowed.get("/api/images", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    default = make_client(buckets).get("/api/images", headers={"Origin": "https://lab.example"})
    assert "access-control-allow-origin" not in default.headers


def test_unexpected_errors_are_json_500(
    client: TestClient, buckets: Buckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(buckets.results, "get", broken)
    response = client.get(f"/api/images/{layout.new_image_id()}")
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "internal_error"
    assert "disk on fire" not in str(error["message"])  # internals are logged, not shown


def test_routing_errors_are_json(client: TestClient) -> None:
    assert error_of(client.get("/api/nothing-here"))["code"] == "not_found"
    response = client.delete("/api/images")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_page_and_static_files_are_served_with_a_strict_csp(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="/static/js/main.js"' in page.text
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    # The page's ES modules, found from main.js by their imports, each served as JavaScript.
    modules, pending = {}, ["main.js"]
    while pending:
        name = pending.pop()
        response = client.get(f"/static/js/{name}")
        assert response.status_code == 200 and "javascript" in response.headers["content-type"]
        modules[name] = response.text
        pending += [m for m in re.findall(r'from "\./([\w-]+\.js)"', response.text)
                    if m not in modules and m not in pending]
    assert set(modules) >= {"main.js", "api.js", "state.js", "gallery.js", "viewer.js",
                            "upload.js"}
    # User data reaches the page only as text: no script parses strings as HTML.
    for name, script in modules.items():
        for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write"):
            assert sink not in script, (name, sink)
    # The confidence slider starts where the served model's threshold says, not at a
    # number written into the page.
    assert "score_threshold" in modules["main.js"]
    assert not re.search(r"threshold[^\n]*0\.3\b", page.text + "".join(modules.values()))


def test_openapi_documents_the_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/images",
        "/api/images/{image_id}",
        "/api/images/{image_id}/original",
        "/api/images/{image_id}/annotated",
        "/api/images/{image_id}/events",
        "/api/models",
        "/api/limits",
        "/healthz",
    ):
        assert path in paths, path
    assert set(paths["/api/images"]["post"]["responses"]) >= {"202", "413", "415", "422"}
    box = spec["components"]["schemas"]["DetectionOut"]["properties"]["box"]
    assert "xyxy" in box["description"] and "pixels of the original image" in box["description"]
    assert "X-API-Key" in json.dumps(spec["components"]["securitySchemes"])


def test_docs_pages_use_assets_served_by_the_app(client: TestClient) -> None:
    """/docs and /redoc must not depend on a CDN: every script and stylesheet they load is
    served by the app itself."""
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html.text)
        assert assets, f"{page} loads no script or stylesheet: the test would prove nothing"
        for asset in assets:
            assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
            response = client.get(asset)
            assert response.status_code == 200 and len(response.content) > 10_000, asset


# --- settings ---------------------------------------------------------------------------------


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETECTFLOW_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("DETECTFLOW_API_KEY", "key-9f3e2a")
    monkeypatch.setenv("DETECTFLOW_MAX_FILES_PER_REQUEST", "5")
    settings = FrontendSettings()
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "key-9f3e2a"
    assert "9f3e2a" not in repr(settings)  # the key never shows up in logs
    assert settings.max_files_per_request == 5


def test_settings_fail_fast_on_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETECTFLOW_MAX_IMAGE_BYTES", "-1")
    with pytest.raises(ValidationError, match="max_image_bytes"):
        FrontendSettings()
    monkeypatch.setenv("DETECTFLOW_MAX_IMAGE_BYTES", "lots")
    with pytest.raises(ValidationError, match="max_image_bytes"):
        FrontendSettings()

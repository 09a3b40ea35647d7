"""The web app under hostile or careless clients (issue 11, items 1-5), with TestClient over
local-folder buckets: long names and extreme images never give a 500 or leave half-stored
files; the key is checked before the body; Host and Origin are checked when there is no key;
redirects never carry a foreign host; every HTML page has a CSP; uploads are served under
their real type's name; /annotated is bounded in size, concurrency and memory; waiting
clients share one status read and are capped.

tests/integration/test_hostile_clients.py runs the same checks over real sockets (slow
clients, connection cap, `detectflow up`); benchmarks/hostile_clients.py measures them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import re
import threading
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from support.api_app import (
    DETECTIONS,
    catalog_of,
    error_of,
    jpeg_bytes,
    make_client,
    upload,
    write_result,
)

from detectflow import layout
from detectflow.detection import Detection
from detectflow.drawing import MAX_FONT_SIZE, draw_detections, stroke_sizes
from detectflow.model.manifest import Manifest
from detectflow.storage import Buckets
from frontend import FrontendSettings, create_app
from frontend.annotated import release_freed_memory
from frontend.routes.pictures import named_for_type
from frontend.schemas import ImageDetail
from frontend.views import detail
from frontend.waiting import StatusWatch, TooManyWaiting

CJK_NAME = "图" * 100 + ".jpg"  # 304 bytes of UTF-8 (100 characters)
EMOJI_NAME = "\U0001f600" * 75 + ".jpg"  # 304 bytes (75 characters)


def png_bytes(size: tuple[int, int], mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 128 if mode == "L" else (120, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def leftovers(root: Path) -> list[str]:
    """What a half-stored upload leaves: temporary files, empty folders named after an id."""
    return [str(p) for p in root.rglob("*")
            if (p.name.startswith(".tmp-") and p.name.endswith(".part"))
            or (p.is_dir() and layout.is_image_id(p.name) and not any(p.iterdir()))]


def app_client(buckets: Buckets, manifest: Manifest | None = None, *,
               served_on: str | None = None, base_url: str = "http://testserver",
               **settings: Any) -> TestClient:
    app = create_app(buckets, catalog_of(buckets), lambda: manifest,
                     FrontendSettings(**settings), served_on=served_on)
    return TestClient(app, base_url=base_url, raise_server_exceptions=False)


# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [CJK_NAME, EMOJI_NAME, "a" * 300 + ".jpeg", "x" * 400])
def test_names_are_bounded_in_bytes_at_a_character_boundary(name: str) -> None:
    safe = layout.safe_filename(name)
    assert len(safe.encode()) <= layout.MAX_FILENAME_BYTES
    assert name.startswith(safe.rsplit(".", 1)[0])  # whole characters, from the start
    if "." in name:
        assert safe.endswith(name[name.rindex("."):])  # the extension is kept


def test_short_names_are_kept_as_they_are() -> None:
    assert layout.safe_filename("blood cells é.jpg") == "blood cells é.jpg"
    assert layout.safe_filename("../../etc/passwd") == "passwd"


@pytest.mark.parametrize("name", [CJK_NAME, EMOJI_NAME])
def test_a_300_byte_name_is_stored_shortened_not_a_500(client: TestClient, buckets: Buckets,
                                                       name: str) -> None:
    response = client.post("/api/images", files=[("file", (name, jpeg_bytes(), "image/jpeg"))])
    assert response.status_code == 202, response.text
    (ref,) = response.json()["images"]
    assert ref["filename"].endswith(".jpg") and len(ref["filename"].encode()) <= 200
    (stored,) = buckets.uploads.list(prefix=f"{ref['id']}/")
    assert buckets.uploads.get(stored.key) == jpeg_bytes()
    assert client.get(ref["url"]).json()["filename"] == ref["filename"]
    assert leftovers(Path(buckets.uploads.root)) == []  # type: ignore[attr-defined]


def test_every_file_of_a_request_gets_its_outcome(client: TestClient, buckets: Buckets) -> None:
    response = client.post("/api/images", files=[
        ("file", ("good.jpg", jpeg_bytes(), "image/jpeg")),
        ("file", (CJK_NAME, jpeg_bytes(), "image/jpeg")),
    ])
    assert response.status_code == 202, response.text
    body = response.json()
    assert [ref["filename"][:4] for ref in body["images"]] == ["good", "图图图图"]
    assert body["failed"] == []
    assert len(list(buckets.uploads.list())) == 2


def test_a_file_storage_fails_to_take_is_reported_and_leaves_nothing(
    client: TestClient, buckets: Buckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_put = buckets.uploads.put

    def put(key: str, data: bytes, *args: Any, **kwargs: Any) -> Any:
        if key.endswith("/second.jpg"):
            raise OSError(28, "No space left on device")
        return real_put(key, data, *args, **kwargs)

    monkeypatch.setattr(buckets.uploads, "put", put)
    response = client.post("/api/images", files=[
        ("file", ("first.jpg", jpeg_bytes(), "image/jpeg")),
        ("file", ("second.jpg", jpeg_bytes(), "image/jpeg")),
    ])
    assert response.status_code == 202, response.text
    body = response.json()
    assert [ref["filename"] for ref in body["images"]] == ["first.jpg"]
    (failed,) = body["failed"]
    assert (failed["index"], failed["filename"], failed["code"]) == (1, "second.jpg",
                                                                     "storage_failed")
    # Nothing of the failed file: no object, no catalog entry (the gallery lists one image).
    assert [i.key.rsplit("/", 1)[1] for i in buckets.uploads.list()] == ["first.jpg"]
    listed = client.get("/api/images").json()["images"]
    assert [i["filename"] for i in listed] == ["first.jpg"]

    only_bad = client.post("/api/images", files=[("file", ("second.jpg", jpeg_bytes(),
                                                            "image/jpeg"))])
    assert only_bad.status_code == 503
    error = error_of(only_bad)
    assert error["code"] == "storage_failed"
    assert error["details"] == [{"index": 0, "filename": "second.jpg", "code": "storage_failed",
                                 "message": failed["message"]}]


# --- extreme shapes and the annotated JPEG --------------------------------------------------------


def test_stroke_sizes_are_bounded_for_extreme_shapes() -> None:
    assert stroke_sizes((640, 480)) == (3, 14)  # as before for ordinary images
    line, font = stroke_sizes((4_999_000, 8))
    assert line == 1 and font <= 10
    assert stroke_sizes((60_000, 60_000))[1] == MAX_FONT_SIZE
    drawn = draw_detections(Image.new("RGB", (20_000, 8)),
                            [Detection("RBC", 0, 0.9, (100.0, 1.0, 900.0, 7.0))])
    assert drawn.size == (20_000, 8)


def test_annotated_of_a_4999000x8_png_is_a_bounded_jpeg(client: TestClient,
                                                        buckets: Buckets) -> None:
    (ref,) = upload(client, ("strip.png", png_bytes((4_999_000, 8), "L")),
                    content_type="image/png")
    write_result(buckets, ref["id"], size=(4_999_000, 8),
                 detections=[Detection("RBC", 0, 0.9, (1000.0, 1.0, 900_000.0, 7.0))])
    response = client.get(f"{ref['url']}/annotated")
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == (2048, 1)


def test_annotated_is_drawn_at_a_bounded_size_with_scaled_boxes(
    buckets: Buckets, manifest: Manifest
) -> None:
    client = make_client(buckets, manifest, annotated_max_side=300)
    (ref,) = upload(client, ("wide.jpg", jpeg_bytes((1200, 400), colour=(255, 255, 255))))
    # A box from x=600 to x=1200 of the original: from x=150 at a quarter of the size.
    write_result(buckets, ref["id"], size=(1200, 400),
                 detections=[Detection("WBC", 1, 0.9, (600.0, 100.0, 1199.0, 399.0))])
    drawn = Image.open(io.BytesIO(client.get(f"{ref['url']}/annotated").content)).convert("RGB")
    assert drawn.size == (300, 100)
    pixels = drawn.load()
    assert pixels is not None
    assert not min(pixels[150, 60]) > 230  # type: ignore[arg-type]  # the box's left edge
    assert min(pixels[100, 60]) > 230  # type: ignore[arg-type]  # left of it: still white


def test_annotated_is_rendered_once_and_cached(client: TestClient, buckets: Buckets,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    renderer = client.app.state.context.renderer  # type: ignore[attr-defined]
    calls: list[str] = []
    real_render = renderer.render

    def counting(data: bytes, record: Any, *args: Any) -> bytes:
        calls.append(record.image_id)
        jpeg: bytes = real_render(data, record, *args)
        return jpeg

    monkeypatch.setattr(renderer, "render", counting)
    (ref,) = upload(client, ("cells.jpg", jpeg_bytes()))
    write_result(buckets, ref["id"], detections=DETECTIONS)
    first = client.get(f"{ref['url']}/annotated")
    assert client.get(f"{ref['url']}/annotated").content == first.content
    assert len(calls) == 1
    client.get(f"{ref['url']}/annotated", params={"min_score": 0.9})  # another drawing
    assert len(calls) == 2
    write_result(buckets, ref["id"], detections=DETECTIONS[:1])  # reprocessed: new result
    client.get(f"{ref['url']}/annotated")
    assert len(calls) == 3
    assert client.delete(ref["url"]).status_code == 204
    assert renderer.cache.size_bytes == 0


def test_renders_beyond_the_slots_wait_then_get_a_503(buckets: Buckets, manifest: Manifest,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client(buckets, manifest, annotated_concurrency=1,
                         annotated_wait_seconds=0.2, annotated_cache_bytes=0)
    renderer = client.app.state.context.renderer
    started = threading.Event()
    release = threading.Event()
    real_render = renderer.render

    def slow(*args: Any) -> bytes:
        started.set()
        release.wait(20)
        jpeg: bytes = real_render(*args)
        return jpeg

    monkeypatch.setattr(renderer, "render", slow)
    (ref,) = upload(client, ("cells.jpg", jpeg_bytes()))
    write_result(buckets, ref["id"], detections=DETECTIONS)
    with client:  # one event loop for both requests
        first: dict[str, Any] = {}
        thread = threading.Thread(
            target=lambda: first.setdefault("r", client.get(f"{ref['url']}/annotated")))
        thread.start()
        assert started.wait(20)
        busy = client.get(f"{ref['url']}/annotated")
        release.set()
        thread.join(20)
    assert busy.status_code == 503
    assert error_of(busy)["code"] == "busy" and busy.headers["retry-after"]
    assert first["r"].status_code == 200


def test_memory_is_given_back_after_large_renders(client: TestClient, buckets: Buckets,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[bool] = []
    monkeypatch.setattr("frontend.annotated.release_freed_memory", lambda: trims.append(True))
    release_freed_memory()  # the real one runs (glibc) or does nothing, without error
    (small,) = upload(client, ("small.jpg", jpeg_bytes()))
    (large,) = upload(client, ("large.png", png_bytes((2500, 2000))), content_type="image/png")
    write_result(buckets, small["id"], detections=DETECTIONS)
    write_result(buckets, large["id"], size=(2500, 2000), detections=DETECTIONS)
    assert client.get(f"{small['url']}/annotated").status_code == 200
    assert trims == []
    assert client.get(f"{large['url']}/annotated").status_code == 200
    assert trims == [True]


# --- who may call -----------------------------------------------------------------------------


class _Recorder:
    """An ASGI `send` that keeps what the app answered."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        self.messages.append(dict(message))

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])


def test_a_keyless_upload_is_refused_before_its_body_is_read(buckets: Buckets) -> None:
    app = create_app(buckets, catalog_of(buckets), lambda: None,
                     FrontendSettings(api_key="s3cret"))  # type: ignore[arg-type]
    body_reads: list[str] = []

    async def receive() -> dict[str, Any]:
        body_reads.append("read")
        await asyncio.sleep(3600)  # a client that never sends its body
        raise AssertionError("unreachable")

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/api/images", "raw_path":
             b"/api/images", "query_string": b"", "root_path": "", "server": ("127.0.0.1", 80),
             "client": ("127.0.0.1", 5000), "headers": [
                 (b"host", b"127.0.0.1"), (b"content-length", str(100 * 2**20).encode()),
                 (b"content-type", b"multipart/form-data; boundary=x")]}
    sent = _Recorder()
    asyncio.run(asyncio.wait_for(app(scope, receive, sent), 30))
    assert sent.status == 401 and body_reads == []
    assert (b"connection", b"close") in sent.messages[0]["headers"]
    assert b'"code": "unauthorized"' in sent.messages[1]["body"]


def test_the_key_is_still_documented_and_checked_for_every_api_route(buckets: Buckets) -> None:
    client = make_client(buckets, api_key="s3cret")
    for method, path in (("GET", "/api/stats"), ("GET", "/api/export"),
                         ("DELETE", f"/api/images/{layout.new_image_id()}")):
        response = client.request(method, path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "X-API-Key"
    assert client.get("/api/limits").status_code == 200


@pytest.fixture
def local_app(buckets: Buckets) -> TestClient:
    """The app as `detectflow up` serves it on 127.0.0.1:8000, without a key."""
    return app_client(buckets, served_on="127.0.0.1", base_url="http://127.0.0.1:8000")


def test_without_a_key_a_foreign_host_is_refused(local_app: TestClient) -> None:
    assert local_app.get("/api/stats").status_code == 200
    for host in ("localhost:8000", "[::1]:8000", "127.0.0.1"):
        assert local_app.get("/api/stats", headers={"Host": host}).status_code == 200, host
    for host in ("attacker.example", "attacker.example:8000", "127.0.0.1.attacker.example"):
        refused = local_app.get("/api/stats", headers={"Host": host})
        assert refused.status_code == 400, host
        assert error_of(refused)["code"] == "untrusted_host"
    assert local_app.get("/", headers={"Host": "attacker.example"}).status_code == 400


def test_without_a_key_a_cross_site_request_that_changes_data_is_refused(
    local_app: TestClient, buckets: Buckets
) -> None:
    files = [("file", ("a.jpg", jpeg_bytes(), "image/jpeg"))]
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                    {"Sec-Fetch-Site": "cross-site"}):
        refused = local_app.post("/api/images", headers=headers, files=files)
        assert refused.status_code == 403, headers
        assert error_of(refused)["code"] == "cross_origin_refused"
    assert not list(buckets.uploads.list())
    deleted = local_app.delete(f"/api/images/{layout.new_image_id()}",
                               headers={"Origin": "https://evil.example"})
    assert deleted.status_code == 403
    # The page itself (same origin) and scripts (no Origin) may upload.
    same = local_app.post("/api/images", headers={"Origin": "http://127.0.0.1:8000"},
                          files=files)
    assert same.status_code == 202
    assert local_app.post("/api/images", files=files).status_code == 202
    # Reading is not refused by Origin (the browser keeps other sites from reading answers).
    assert local_app.get("/api/stats", headers={"Origin": "https://evil.example"}
                         ).status_code == 200


def test_origins_allowed_by_cors_may_upload_without_a_key(buckets: Buckets) -> None:
    client = app_client(buckets, served_on="127.0.0.1", base_url="http://127.0.0.1:8000",
                        cors_origins=["https://lab.example"])
    files = [("file", ("a.jpg", jpeg_bytes(), "image/jpeg"))]
    assert client.post("/api/images", headers={"Origin": "https://lab.example"},
                       files=files).status_code == 202


def test_trusted_hosts_follow_the_settings_and_the_bound_address(buckets: Buckets) -> None:
    named = app_client(buckets, served_on="0.0.0.0", base_url="http://detect.lab.example",
                       trusted_hosts="*.lab.example,gpu-box")
    assert named.get("/api/stats").status_code == 200
    assert named.get("/api/stats", headers={"Host": "gpu-box:8000"}).status_code == 200
    assert named.get("/api/stats", headers={"Host": "lab.example.evil"}).status_code == 400
    # Every interface, no names given: the app cannot know its names, so it answers to any
    # (and logs a warning); the Origin check still applies.
    anywhere = app_client(buckets, served_on="0.0.0.0", base_url="http://192.0.2.7:8000")
    assert anywhere.get("/api/stats").status_code == 200
    assert anywhere.post("/api/images", headers={"Origin": "https://evil.example"}, files=[
        ("file", ("a.jpg", jpeg_bytes(), "image/jpeg"))]).status_code == 403
    # With a key, a browser cannot forge the request: any name, any origin (with the key).
    keyed = app_client(buckets, served_on="127.0.0.1", base_url="http://attacker.example",
                       api_key="s3cret")
    assert keyed.post("/api/images", headers={"Origin": "https://evil.example",
                                              "X-API-Key": "s3cret"},
                      files=[("file", ("a.jpg", jpeg_bytes(), "image/jpeg"))]
                      ).status_code == 202
    # Names set explicitly apply with a key too.
    pinned = app_client(buckets, served_on="0.0.0.0", base_url="http://attacker.example",
                        api_key="s3cret", trusted_hosts="detect.lab.example")
    assert pinned.get("/api/stats", headers={"X-API-Key": "s3cret"}).status_code == 400


def test_redirects_never_carry_a_foreign_host(buckets: Buckets) -> None:
    client = app_client(buckets, base_url="http://attacker.example", api_key="s3cret")
    for path in ("/docs/", "/api/images/"):
        response = client.get(path, headers={"X-API-Key": "s3cret"}, follow_redirects=False)
        assert response.status_code == 307, path
        assert response.headers["location"] == path.rstrip("/")


# --- headers of what is served --------------------------------------------------------------------


def test_every_html_page_has_a_csp_that_forbids_framing(client: TestClient) -> None:
    for path in ("/", "/static/index.html", "/docs", "/redoc", "/docs/oauth2-redirect"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html"), path
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, path
        assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0], path
        assert response.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" not in client.get("/healthz").headers


def test_the_docs_csp_allows_exactly_their_inline_scripts(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        response = client.get(path)
        inline = re.findall(r"<script>(.*?)</script>", response.text, re.S)
        allowed = re.findall(r"'sha256-([^']+)'", response.headers["content-security-policy"])
        assert sorted(allowed) == sorted(
            base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in inline)
    assert re.findall(r"'sha256-", client.get("/docs").headers["content-security-policy"])


def test_an_upload_named_like_a_page_is_served_under_its_type(client: TestClient) -> None:
    (ref,) = upload(client, ("evil.html", jpeg_bytes()))
    response = client.get(f"{ref['url']}/original")
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == "nosniff"
    disposition = response.headers["content-disposition"]
    assert 'filename="evil.jpg"' in disposition and ".html" not in disposition


@pytest.mark.parametrize(("name", "fmt", "served"), [
    ("evil.html", "JPEG", "evil.jpg"), ("photo.JPEG", "JPEG", "photo.JPEG"),
    ("scan.tiff", "TIFF", "scan.tiff"), ("noext", "PNG", "noext.png"),
    ("cells.jpg", "PNG", "cells.png"), (".hidden", "GIF", ".hidden.gif"),
])
def test_served_names_carry_their_types_extension(name: str, fmt: str, served: str) -> None:
    assert named_for_type(name, fmt) == served


# --- clients waiting for a result -------------------------------------------------------------


def test_waiting_clients_beyond_the_cap_get_a_503(buckets: Buckets, manifest: Manifest) -> None:
    client = make_client(buckets, manifest, max_waiting_clients=1)
    (ref,) = upload(client, ("cells.jpg", jpeg_bytes()))
    with client, client.stream("GET", f"{ref['url']}/events") as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith("event: status")
        refused = client.get(ref["url"], params={"wait": 5})
        assert refused.status_code == 503
        assert error_of(refused)["code"] == "too_many_waiting_clients"
        assert refused.headers["retry-after"]
        events = client.get(f"{ref['url']}/events")
        assert events.status_code == 503
        # Asking without waiting is still answered, and an upload with ?wait is stored and
        # answered at once.
        assert client.get(ref["url"]).json()["status"] == "queued"
        stored = client.post("/api/images", params={"wait": 5},
                             files=[("file", ("b.jpg", jpeg_bytes(), "image/jpeg"))])
        assert stored.status_code == 202
        assert stored.json()["images"][0]["status"] == "queued"
        write_result(buckets, ref["id"], detections=DETECTIONS)
        assert "id: done" in list(lines)  # the stream goes on to its end
    assert client.get(ref["url"], params={"wait": 0.1}).status_code == 200  # a place again


def test_clients_on_one_image_share_one_status_read() -> None:
    reads: dict[str, int] = {"busy": 0, "quiet": 0}
    status = {"busy": "queued", "quiet": "queued"}

    def probe(image_id: str) -> ImageDetail:
        reads[image_id] += 1
        return detail(image_id, status[image_id], None, None)  # type: ignore[arg-type]

    watch = StatusWatch(probe, tick_s=0.01, max_clients=60)

    async def client(image_id: str) -> str:
        with watch.waiting([image_id]):
            assert await watch.change(image_id, "queued", timeout=30)
            latest = watch.latest(image_id)
            assert latest is not None
            return latest.status

    async def scenario() -> list[str]:
        crowd = [asyncio.create_task(client("busy")) for _ in range(50)]
        alone = asyncio.create_task(client("quiet"))
        while reads["busy"] < 20:
            await asyncio.sleep(0.01)
        status["busy"] = status["quiet"] = "done"
        return await asyncio.gather(*crowd, alone)

    assert asyncio.run(asyncio.wait_for(scenario(), 60)) == ["done"] * 51
    # 50 clients on one image cost what one client on another costs: one read per tick.
    assert abs(reads["busy"] - reads["quiet"]) <= 1
    with pytest.raises(TooManyWaiting):
        full = StatusWatch(probe, tick_s=0.01, max_clients=1)
        with full.waiting(["busy"]), full.waiting(["busy"]):
            pass


def test_a_long_poll_wakes_when_the_result_lands(client: TestClient, buckets: Buckets) -> None:
    (ref,) = upload(client, ("cells.jpg", jpeg_bytes()))
    timer = threading.Timer(0.3, write_result, args=(buckets, ref["id"]))
    timer.start()
    started = time.monotonic()
    assert client.get(ref["url"], params={"wait": 20}).json()["status"] == "done"
    timer.join()
    assert time.monotonic() - started < 15  # woken by the result, not by the 20 s deadline


def test_a_deleted_image_ends_its_long_poll_with_404(client: TestClient) -> None:
    (ref,) = upload(client, ("cells.jpg", jpeg_bytes()))
    timer = threading.Timer(0.3, client.delete, args=(ref["url"],))
    timer.start()
    response = client.get(ref["url"], params={"wait": 20})
    timer.join()
    assert response.status_code == 404


@pytest.fixture
def _no_threads_left() -> Iterator[None]:
    yield
    deadline = time.monotonic() + 10
    while any(t.name == "status-watch" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the status-watch thread did not stop"
        time.sleep(0.05)


@pytest.mark.usefixtures("_no_threads_left")
def test_the_watch_thread_stops_when_nobody_waits(client: TestClient) -> None:
    (ref,) = upload(client, ("cells.jpg", jpeg_bytes()))
    assert client.get(ref["url"], params={"wait": 0.2}).json()["status"] == "queued"

"""Hostile and careless clients over real sockets (issue 11, items 1-5).

First the app under uvicorn as `detectflow up` configures it (frontend.server), in this
process, with short timeouts: half-sent headers, stalled bodies and silent connections are
closed within the configured time, a keyless upload is answered 401 while its body is still
unsent, and connections past the cap get a 503, all in the JSON error shape. Then
`detectflow up` itself (embedded pipeline, bundled model): 300-byte names and a
4,999,000x8 PNG go through upload, detection and /annotated with no 500 and nothing left
half-stored; a foreign Host and a cross-site POST are refused; the settings reach uvicorn.

Deadlines here are generous bounds for "answered or closed at all" (the old server never
did); the seconds themselves are measured by benchmarks/hostile_clients.py.
"""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from support.serving import serving_app

from detectflow import layout
from detectflow.launcher.processes import EmulatorUnavailable
from detectflow.launcher.testing import free_port, start_detectflow_up
from frontend import FrontendSettings

# Longer than any timeout configured below: a connection still open after it never closes.
GIVE_UP_S = 15.0
MB = 1024 * 1024
UP_MAX_CONNECTIONS = 6


@contextmanager
def serving(tmp_path: Path, **settings: Any) -> Iterator[int]:
    """The app as `detectflow up` serves it, with these settings, on a free port."""
    with serving_app(tmp_path, FrontendSettings(**settings)) as port:
        yield port


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=GIVE_UP_S)


def read_until_closed(sock: socket.socket) -> tuple[bytes, bool]:
    """What the server sent, and whether it closed the connection within GIVE_UP_S."""
    received = b""
    deadline = time.monotonic() + GIVE_UP_S
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return received, True
        if not chunk:
            return received, True
        received += chunk
    return received, False


def read_one_response(sock: socket.socket) -> bytes:
    """One whole response (head and Content-Length body): it may arrive in several packets."""
    received = b""
    while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < _length(
            received):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def _length(raw: bytes) -> int:
    for line in raw.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def answer(raw: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def upload_head(port: int, length: int) -> bytes:
    return (f"POST /api/images HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Length: {length}\r\n"
            "Content-Type: multipart/form-data; boundary=XyZ\r\n\r\n"
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()


# --- slow and idle clients --------------------------------------------------------------------


@pytest.fixture
def slow_limits(tmp_path: Path) -> Iterator[int]:
    with serving(tmp_path, header_timeout_seconds=1.0, body_timeout_seconds=1.0,
                 keep_alive_seconds=1) as port:
        yield port


def test_half_sent_headers_get_a_408_and_are_closed(slow_limits: int) -> None:
    with connect(slow_limits) as sock:
        sock.sendall(f"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1:{slow_limits}\r\n".encode())
        raw, closed = read_until_closed(sock)
    assert closed, "a half-sent request head kept its connection open"
    status, body = answer(raw)
    assert status == 408 and body["error"]["code"] == "request_timeout"


def test_headers_trickled_a_byte_at_a_time_are_cut_off(slow_limits: int) -> None:
    request = f"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1:{slow_limits}\r\nX-Pad: {'a' * 60}"
    with connect(slow_limits) as sock:
        sent = 0
        try:
            for byte in request.encode():  # one byte every 0.2 s: never a 1 s pause
                sock.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.2)
        except OSError:
            pass  # closed by the server, as it should be
        raw, closed = read_until_closed(sock)
    assert closed and sent < len(request), "a slowloris kept the connection open"
    assert answer(raw)[0] == 408


def test_a_silent_connection_is_closed(slow_limits: int) -> None:
    with connect(slow_limits) as sock:
        raw, closed = read_until_closed(sock)
    assert closed and raw == b""


def test_a_stalled_body_gets_a_408_and_is_closed(slow_limits: int) -> None:
    with connect(slow_limits) as sock:
        sock.sendall(upload_head(slow_limits, 10 * MB) + b"\0" * 1000)
        raw, closed = read_until_closed(sock)
    assert closed, "a stalled body kept its connection open"
    status, body = answer(raw)
    assert status == 408 and "body" in body["error"]["message"]


def test_an_idle_kept_alive_connection_is_closed(slow_limits: int) -> None:
    with connect(slow_limits) as sock:
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{slow_limits}\r\n\r\n".encode())
        raw, closed = read_until_closed(sock)
    assert closed and raw.startswith(b"HTTP/1.1 200")


def test_a_slow_but_steady_upload_is_not_cut_off(slow_limits: int) -> None:
    image = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(image, format="JPEG")
    data = image.getvalue()
    tail = b"\r\n--XyZ--\r\n"
    with connect(slow_limits) as sock:
        head = upload_head(slow_limits, 0)
        body_start = head.split(b"\r\n\r\n", 1)[1]
        length = len(body_start) + len(data) + len(tail)
        sock.sendall(upload_head(slow_limits, length))
        for start in range(0, len(data), 200):  # 0.4 s between parts: under the 1 s limit
            sock.sendall(data[start:start + 200])
            time.sleep(0.4)
        sock.sendall(tail)
        raw, _ = read_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 202"), raw[:200]


def test_connections_past_the_cap_get_a_503(tmp_path: Path) -> None:
    with serving(tmp_path, max_connections=3, header_timeout_seconds=30) as port:
        held = [connect(port) for _ in range(3)]
        try:
            time.sleep(0.3)  # let the server accept them
            with connect(port) as extra:
                raw, closed = read_until_closed(extra)
            assert closed
            status, body = answer(raw)
            assert status == 503 and body["error"]["code"] == "too_many_connections"
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.3)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_a_keyless_upload_is_answered_401_while_its_body_is_unsent(tmp_path: Path) -> None:
    with serving(tmp_path, api_key="s3cret", body_timeout_seconds=60) as port, \
            connect(port) as sock:
        sock.sendall(upload_head(port, 100 * MB) + b"\0" * 65536)  # then nothing
        sock.settimeout(GIVE_UP_S)
        raw = read_one_response(sock)  # no 60 s body timeout: the key check answered
        status, body = answer(raw)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert b"connection: close" in raw.lower()


# --- detectflow up ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def up(bccd_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("hostile-up")
    port = free_port()
    env = {"DETECTFLOW_MODEL_CACHE_DIR": str(tmp / "model-cache"),
           "DETECTFLOW_MAX_CONNECTIONS": str(UP_MAX_CONNECTIONS)}
    try:
        process = start_detectflow_up(port, tmp / "data", tmp / "server.log", model=bccd_bundle,
                                      env=env)
    except EmulatorUnavailable as err:
        pytest.fail(str(err))
    try:
        yield f"http://127.0.0.1:{port}", tmp / "data"
    finally:
        process.stop(grace=15)


def wait_done(client: httpx.Client, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(url, params={"wait": 20}).json()
        if body["status"] in ("done", "failed"):
            return body
    raise AssertionError(f"{url} not done in 120 s")


def png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("L", size, 128).save(out, format="PNG")
    return out.getvalue()


def test_up_long_names_and_extreme_shapes_never_give_a_500(up: tuple[str, Path],
                                                           samples_dir: Path) -> None:
    base, data_dir = up
    jpeg = (samples_dir / "JPEGImages" / "BloodImage_00031.jpg").read_bytes()
    with httpx.Client(base_url=base, timeout=60) as client:
        files = [("file", ("图" * 100 + ".jpg", jpeg, "image/jpeg")),
                 ("file", ("\U0001f600" * 75 + ".jpg", jpeg, "image/jpeg")),
                 ("file", ("strip.png", png((4_999_000, 8)), "image/png"))]
        response = client.post("/api/images", files=files)
        assert response.status_code == 202, response.text
        refs = response.json()["images"]
        assert len(refs) == 3 and response.json()["failed"] == []
        for ref in refs:
            assert wait_done(client, ref["url"])["status"] == "done", ref
            annotated = client.get(f"{ref['url']}/annotated")
            assert annotated.status_code == 200, annotated.text
            assert max(Image.open(io.BytesIO(annotated.content)).size) <= 2048
    left = [p for p in data_dir.rglob("*")
            if (p.name.startswith(".tmp-") and p.name.endswith(".part"))
            or (p.is_dir() and layout.is_image_id(p.name) and not any(p.iterdir()))]
    assert left == []


def test_up_refuses_foreign_hosts_and_cross_site_posts(up: tuple[str, Path]) -> None:
    base, _ = up
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/api/stats").status_code == 200
        assert client.get("/api/stats", headers={"Host": "attacker.example"}).status_code == 400
        post = client.post("/api/images", headers={"Origin": "https://evil.example"},
                           files=[("file", ("a.jpg", b"\xff\xd8", "image/jpeg"))])
        assert post.status_code == 403
        redirect = client.get("/docs/", headers={"Host": "localhost"})
        assert redirect.status_code == 307 and redirect.headers["location"] == "/docs"


def test_up_serves_with_the_limits_of_its_settings(up: tuple[str, Path]) -> None:
    base, _ = up
    port = int(base.rsplit(":", 1)[1])
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        raw, closed = read_until_closed(sock)  # the default 10 s header timeout
    assert closed and answer(raw)[0] == 408
    held = [connect(port) for _ in range(UP_MAX_CONNECTIONS)]
    try:
        time.sleep(0.3)
        with connect(port) as extra:
            raw, closed = read_until_closed(extra)
        assert closed and answer(raw)[0] == 503  # DETECTFLOW_MAX_CONNECTIONS reached uvicorn
    finally:
        for sock in held:
            sock.close()

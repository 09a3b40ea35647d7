"""`detectflow up` (embedded): one command serves the app and runs the pipeline; Ctrl-C stops
both. Driven as a user would: a subprocess, HTTP, and a file copied into the uploads folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from detectflow.launcher.testing import free_port


def get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as response:
        data: dict[str, object] = json.load(response)
        return data


def post_image(base: str, filename: str, data: bytes) -> str:
    boundary = "detectflowtestboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() + data + (
        f"\r\n--{boundary}--\r\n").encode()
    request = urllib.request.Request(f"{base}/api/images", data=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        image_id: str = json.load(response)["images"][0]["id"]
        return image_id


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_up_serves_the_app_and_processes_uploads(storage: str, tmp_path: Path,
                                                 model_bundle: Path, samples_dir: Path,
                                                 request: pytest.FixtureRequest) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    env = {**os.environ, "DETECTFLOW_MODEL_CACHE_DIR": str(tmp_path / "cache")}
    if storage == "s3":  # S3-compatible storage (moto's server here; MinIO for a user)
        env.update({"DETECTFLOW_STORAGE": "s3", "AWS_ACCESS_KEY_ID": "test",
                    "AWS_SECRET_ACCESS_KEY": "test",
                    "DETECTFLOW_S3_ENDPOINT_URL": request.getfixturevalue("s3_endpoint")})
    process = subprocess.Popen(
        [sys.executable, "-m", "detectflow.cli", "up", "--port", str(port), "--data-dir",
         str(data_dir), "--model", str(model_bundle)],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if get_json(f"{base}/healthz"):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("detectflow up never answered /healthz")
        image = samples_dir / "JPEGImages" / "BloodImage_00011.jpg"
        uploaded = post_image(base, image.name, image.read_bytes())
        if storage == "local":
            shutil.copy(image, data_dir / "uploads" / "dropped in.jpg")  # the folder route
        else:
            post_image(base, "second.jpg", image.read_bytes())

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            listing = get_json(f"{base}/api/images")["images"]
            assert isinstance(listing, list)
            if len(listing) == 2 and all(i["status"] == "done" for i in listing):
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"uploads not processed: {listing}")
        detail = get_json(f"{base}/api/images/{uploaded}")
        assert detail["status"] == "done" and detail["detections"]
        if storage == "local":
            assert len(list((data_dir / "results").glob("*.json"))) == 2
        else:
            # Every blob went to the S3 endpoint; only the catalog (an index) is local.
            assert [p.name for p in data_dir.iterdir() if not p.name.startswith(
                "catalog.sqlite3")] == []
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    assert process.returncode == 0, stderr[-2000:]


def test_up_help_explains_the_modes() -> None:
    done = subprocess.run([sys.executable, "-m", "detectflow.cli", "up", "--help"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    for words in ("--emulators", "--gcp", "--data-dir", "--instances", "uploads"):
        assert words in done.stdout


def test_an_explicit_model_is_served_and_the_default_never_replaces_one(
    bccd_bundle: Path, tmp_path: Path
) -> None:
    """`up --model B` serves B (published, made LATEST); the bundled default is published only
    into a bucket without a version of the configured model."""
    import shutil

    from detectflow.cli.up import _ensure_model
    from detectflow.model import Manifest
    from detectflow.model.registry import latest_version
    from detectflow.settings import Settings
    from detectflow.storage import LocalBlobStore

    models = LocalBlobStore(tmp_path / "models")
    settings = Settings(data_dir=tmp_path)
    assert _ensure_model(models, settings, bccd_bundle) == "bccd"
    bundled_version = Manifest.read(bccd_bundle).version
    assert latest_version(models, "bccd") == bundled_version

    mine = tmp_path / "mine"
    shutil.copytree(bccd_bundle, mine)
    manifest = Manifest.read(mine)
    manifest.name, manifest.version = "mine", "2.0.0"
    manifest.write(mine)
    assert _ensure_model(models, settings, mine, explicit=True) == "mine"
    assert latest_version(models, "mine") == "2.0.0"

    newer = tmp_path / "newer"
    shutil.copytree(bccd_bundle, newer)
    manifest = Manifest.read(newer)
    manifest.version = "9.9.9"
    manifest.write(newer)
    assert _ensure_model(models, settings, newer) == "bccd"  # not explicit: bucket wins
    assert latest_version(models, "bccd") == bundled_version

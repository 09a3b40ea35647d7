"""Fixtures shared by every test file (keep this small: one fixture per shared resource)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # `from support.x import y` from any test

from support.paths import REPO_ROOT, SAMPLES_DIR
from support.services import unavailable
from support.synthetic import make_voc_dataset

from detectflow.launcher.processes import EmulatorUnavailable
from detectflow.launcher.services import start_fake_gcs_server, start_firestore_emulator
from detectflow.launcher.testing import free_port

BCCD_BUNDLE = REPO_ROOT / "models" / "bccd"


@pytest.fixture
def voc_root(tmp_path: Path) -> Path:
    """A clean synthetic dataset in the standard VOC layout: 10 images, 3 classes (~40 ms)."""
    return make_voc_dataset(tmp_path / "voc", n_images=10)


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """Four BCCD test-split images with their VOC XML (tests/data/samples/README.md)."""
    return SAMPLES_DIR


@pytest.fixture(scope="session")
def bccd_bundle() -> Path:
    """The committed BCCD model bundle; under CI=true its absence is a failure, not a skip."""
    if not (BCCD_BUNDLE / "manifest.json").is_file():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the committed model bundle {BCCD_BUNDLE} is missing")
        pytest.skip(f"{BCCD_BUNDLE} not committed yet")
    return BCCD_BUNDLE


@pytest.fixture(scope="session")
def model_bundle(request: pytest.FixtureRequest) -> Path:
    """The committed BCCD bundle (DETECTFLOW_TEST_BUNDLE points at another one)."""
    override = os.environ.get("DETECTFLOW_TEST_BUNDLE")
    return Path(override) if override else request.getfixturevalue("bccd_bundle")


@pytest.fixture(scope="module")
def gcs_url() -> Iterator[str]:
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="fake-gcs-")) / "fake-gcs-server.log"
    try:
        server = start_fake_gcs_server("127.0.0.1", port, log_path)
    except EmulatorUnavailable as err:
        unavailable(str(err))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def firestore_host() -> Iterator[str]:
    """Google's Firestore emulator (host:port); each test uses its own collection."""
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="firestore-")) / "firestore.log"
    try:
        server = start_firestore_emulator("127.0.0.1", port, log_path, "detectflow-test")
    except EmulatorUnavailable as err:
        unavailable(str(err))
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as err:
        unavailable(f"moto[server] is not installed: {err}")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()

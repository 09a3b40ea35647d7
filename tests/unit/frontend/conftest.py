"""Fixtures of the API tests: fresh buckets and catalog per test, the test model's manifest."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.api_app import make_client, sample_manifest

from detectflow.model.manifest import Manifest
from detectflow.storage import Buckets


@pytest.fixture
def buckets(tmp_path: Path) -> Buckets:
    return Buckets.local(tmp_path / "buckets")


@pytest.fixture
def manifest() -> Manifest:
    return sample_manifest()


@pytest.fixture
def client(buckets: Buckets, manifest: Manifest) -> TestClient:
    return make_client(buckets, manifest)

"""What the web app and the pipeline must agree on is declared once (detectflow.settings.
ServingSettings): the image limits and the serving score threshold, which /api/models reports."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.api_app import make_client, sample_manifest

from detectflow.settings import ServingSettings, Settings, load_settings
from detectflow.storage import Buckets
from frontend import FrontendSettings

SHARED = {"DETECTFLOW_MAX_IMAGE_BYTES": "12345", "DETECTFLOW_MAX_IMAGE_PIXELS": "67890",
          "DETECTFLOW_SCORE_THRESHOLD": "0.42"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SHARED:
        monkeypatch.delenv(name, raising=False)


def test_the_web_app_and_the_pipeline_read_one_definition(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in (Settings, FrontendSettings):
        assert issubclass(cls, ServingSettings)
        for name in ServingSettings.model_fields:
            assert name not in vars(cls).get("__annotations__", {}), f"{cls} redefines {name}"
    for name, value in SHARED.items():
        monkeypatch.setenv(name, value)
    pipeline, web = load_settings(), FrontendSettings()
    assert pipeline.image_limits == web.image_limits
    assert (web.image_limits.max_bytes, web.image_limits.max_pixels) == (12345, 67890)
    assert pipeline.score_threshold == web.score_threshold == 0.42


def test_models_endpoint_reports_the_manifests_threshold(tmp_path: Path) -> None:
    manifest = sample_manifest()
    client = make_client(Buckets.local(tmp_path), manifest)

    (model,) = client.get("/api/models").json()["models"]

    assert model["score_threshold"] == manifest.decoding.score_threshold


def test_models_endpoint_reports_the_threshold_setting(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = sample_manifest()
    assert manifest.decoding.score_threshold != 0.42
    monkeypatch.setenv("DETECTFLOW_SCORE_THRESHOLD", "0.42")
    client = make_client(Buckets.local(tmp_path), manifest)

    (model,) = client.get("/api/models").json()["models"]

    assert model["score_threshold"] == 0.42


def test_an_out_of_range_threshold_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETECTFLOW_SCORE_THRESHOLD", "-0.1")
    with pytest.raises(ValueError, match="score_threshold"):
        FrontendSettings()

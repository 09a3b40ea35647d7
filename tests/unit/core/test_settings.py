"""Settings fail fast with a message that says what to set; the topology is one description."""

from __future__ import annotations

import json
import re

import pytest

from detectflow.model.manifest import Decoding, InputSpec, Manifest
from detectflow.settings import SettingsError, load_function_settings, load_settings
from detectflow.topology import MAX_DELIVERY_ATTEMPTS, default_topology

ENV_VARS = ("GOOGLE_CLOUD_PROJECT", "DETECTFLOW_PROJECT", "STORAGE_EMULATOR_HOST",
            "PUBSUB_EMULATOR_HOST", "DETECTFLOW_STORAGE", "DETECTFLOW_BUS",
            "DETECTFLOW_SCORE_THRESHOLD")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_embedded_backend() -> None:
    settings = load_settings()
    assert (settings.storage, settings.bus) == ("local", "memory")
    assert settings.uploads_bucket == "detectflow-uploads"
    assert not settings.uses_emulators


def test_environment_configures_gcs_and_pubsub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETECTFLOW_STORAGE", "gcs")
    monkeypatch.setenv("DETECTFLOW_BUS", "pubsub")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:4443")
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085")
    monkeypatch.setenv("DETECTFLOW_RESULTS_BUCKET", "my-results")
    settings = load_settings()
    assert settings.project == "my-project"
    assert settings.storage_emulator_host == "http://127.0.0.1:4443"
    assert settings.results_bucket == "my-results"
    assert settings.uses_emulators


def test_gcs_without_a_project_fails_with_a_clear_message() -> None:
    with pytest.raises(SettingsError, match="GOOGLE_CLOUD_PROJECT"):
        load_settings(storage="gcs")


def test_storage_emulator_host_needs_a_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:4443")
    with pytest.raises(SettingsError, match=re.escape("http://127.0.0.1:4443")):
        load_settings()


def test_unknown_backend_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETECTFLOW_STORAGE", "ftp")
    with pytest.raises(SettingsError, match="storage"):
        load_settings()


def test_functions_default_to_gcs_and_pubsub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    settings = load_function_settings()
    assert (settings.storage, settings.bus) == ("gcs", "pubsub")
    monkeypatch.setenv("DETECTFLOW_STORAGE", "local")
    monkeypatch.setenv("DETECTFLOW_BUS", "memory")
    assert load_function_settings().storage == "local"


def test_serving_threshold_is_the_manifests_unless_a_setting_overrides_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = Manifest(name="m", version="1", classes=["a"],
                        input=InputSpec(width=32, height=32, dtype="uint8"),
                        decoding=Decoding(score_threshold=0.37))
    assert load_settings().serving_threshold(manifest) == 0.37
    monkeypatch.setenv("DETECTFLOW_SCORE_THRESHOLD", "0.55")
    assert load_settings().serving_threshold(manifest) == 0.55
    monkeypatch.setenv("DETECTFLOW_SCORE_THRESHOLD", "1.5")
    with pytest.raises(SettingsError, match="score_threshold"):
        load_settings()


def test_topology_is_consistent_and_serializable() -> None:
    for profile in ("cloud", "local"):
        topology = default_topology(profile)  # type: ignore[arg-type]
        data = json.loads(topology.to_json())
        topics = {t["name"] for t in data["topics"]}
        functions = {f["name"] for f in data["functions"]}
        for sub in data["subscriptions"]:
            assert sub["topic"] in topics
            assert sub["push_function"] in functions
            if sub["dead_letter_topic"]:
                assert sub["dead_letter_topic"] in topics
                assert 5 <= sub["max_delivery_attempts"] <= 100  # Pub/Sub's allowed range
        assert topology.bucket("uploads").notify_topic == topology.topic("uploads").name
        # Outputs never land where they would trigger the pipeline again.
        for function in data["functions"]:
            assert "uploads" not in function["writes"]
    cloud, local = default_topology("cloud"), default_topology("local")
    assert MAX_DELIVERY_ATTEMPTS == 5
    # The profiles differ only in retry timing.
    assert cloud.buckets == local.buckets and cloud.functions == local.functions
    assert [s.name for s in cloud.subscriptions] == [s.name for s in local.subscriptions]


def test_settings_default_names_come_from_the_topology() -> None:
    settings = load_settings()
    topology = default_topology()
    assert settings.bucket_names() == {b.role: b.name for b in topology.buckets}
    assert {settings.uploads_topic, settings.prepared_topic, settings.results_topic,
            settings.dead_letter_topic} == {t.name for t in topology.topics}

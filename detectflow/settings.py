"""One typed settings object, read from the environment, that fails fast when misconfigured.

Environment variables are `DETECTFLOW_<FIELD>` (e.g. DETECTFLOW_STORAGE=gcs), except the
standard Google ones, read under their usual names: GOOGLE_CLOUD_PROJECT, STORAGE_EMULATOR_HOST,
PUBSUB_EMULATOR_HOST, FIRESTORE_EMULATOR_HOST.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self

from pydantic import (
    AliasChoices,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from detectflow.imaging import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ImageLimits
from detectflow.topology import BUCKET_NAMES, TOPIC_NAMES

if TYPE_CHECKING:
    from detectflow.model.manifest import Manifest

StorageBackend = Literal["local", "gcs", "s3"]
BusBackend = Literal["memory", "pubsub"]
CatalogBackend = Literal["sqlite", "firestore", "none"]


class SettingsError(RuntimeError):
    """The configuration cannot work; the message says what to set."""


class ServingSettings(BaseSettings):
    """What the pipeline and the web app must agree on, declared once: the image limits an
    upload is checked against (by the web app, then again by preprocess) and the score
    threshold detections are served at. `Settings` and the web app's `FrontendSettings` both
    inherit these fields, so one `DETECTFLOW_*` variable sets both sides."""

    model_config = SettingsConfigDict(env_prefix="DETECTFLOW_", extra="ignore")

    max_image_bytes: int = Field(
        default=DEFAULT_MAX_BYTES, gt=0, description="Largest accepted image file, in bytes.")
    max_image_pixels: int = Field(
        default=DEFAULT_MAX_PIXELS, gt=0, description="Largest accepted image, in pixels (w*h).")
    score_threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Serve detections scoring at least this; "
        "unset: the model manifest's decoding.score_threshold.")

    @property
    def image_limits(self) -> ImageLimits:
        return ImageLimits(max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels)

    def serving_threshold(self, manifest: Manifest) -> float:
        """The score cut-off detections are served at: this setting, else the manifest's."""
        if self.score_threshold is not None:
            return self.score_threshold
        return manifest.decoding.score_threshold


class Settings(ServingSettings):
    model_config = SettingsConfigDict(
        env_prefix="DETECTFLOW_", extra="ignore", populate_by_name=True
    )

    storage: StorageBackend = Field("local", description="where blobs live")
    bus: BusBackend = Field("memory", description="how events travel between stages")
    data_dir: Path = Field(Path("var/detectflow"), description="root of the local storage")

    project: str | None = Field(
        None, validation_alias=AliasChoices("DETECTFLOW_PROJECT", "GOOGLE_CLOUD_PROJECT"),
        description="Google Cloud project (Pub/Sub and GCS)",
    )
    storage_emulator_host: str | None = Field(
        None, validation_alias=AliasChoices("STORAGE_EMULATOR_HOST"),
        description="e.g. http://127.0.0.1:4443 (fake-gcs-server)",
    )
    pubsub_emulator_host: str | None = Field(
        None, validation_alias=AliasChoices("PUBSUB_EMULATOR_HOST"),
        description="e.g. 127.0.0.1:8085 (Google's Pub/Sub emulator)",
    )
    firestore_emulator_host: str | None = Field(
        None, validation_alias=AliasChoices("FIRESTORE_EMULATOR_HOST"),
        description="e.g. 127.0.0.1:8086 (Google's Firestore emulator)",
    )
    catalog: CatalogBackend | None = Field(
        None, description="the image index behind the gallery, stats and reconcile: sqlite "
        "(a file under data_dir), firestore, or none; default: firestore with storage=gcs, "
        "else sqlite",
    )
    catalog_path: Path | None = Field(
        None, description="the SQLite catalog file; default: <data_dir>/catalog.sqlite3")
    catalog_collection: str = Field("detectflow-images", description="Firestore collection")
    firestore_database: str = Field("(default)", description="Firestore database id")
    reconcile_older_than_seconds: float = Field(
        300.0, gt=0, description="an upload without a result this old is re-driven")
    reconcile_interval_seconds: float = Field(
        60.0, ge=0, description="how often `up` looks for stuck images (0: only at start-up)")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint; None = AWS")
    s3_region: str = "us-east-1"

    uploads_bucket: str = BUCKET_NAMES["uploads"]
    work_bucket: str = BUCKET_NAMES["work"]
    results_bucket: str = BUCKET_NAMES["results"]
    models_bucket: str = BUCKET_NAMES["models"]

    uploads_topic: str = TOPIC_NAMES["uploads"]
    prepared_topic: str = TOPIC_NAMES["prepared"]
    results_topic: str = TOPIC_NAMES["results"]
    dead_letter_topic: str = TOPIC_NAMES["dead_letter"]

    model_name: str = Field("bccd", description="model in the models bucket to serve")
    model_version: str | None = Field(None, description="pin a version; None follows LATEST")
    model_cache_dir: Path = Field(
        Path("/tmp/detectflow-models"), description="local copies of downloaded bundles"
    )
    model_check_seconds: float = Field(
        10.0, ge=0, description="how often a running instance looks for a newer version"
    )

    @field_validator("storage_emulator_host")
    @classmethod
    def _emulator_url_has_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"STORAGE_EMULATOR_HOST={value!r} must include the scheme, e.g. http://{value}"
            )
        return value

    @field_validator("pubsub_emulator_host", "firestore_emulator_host")
    @classmethod
    def _emulator_host_has_no_scheme(cls, value: str | None, info: ValidationInfo
                                     ) -> str | None:
        if value and "://" in value:
            name = (info.field_name or "").upper()
            raise ValueError(f"{name}={value!r} must be host:port, no scheme")
        return value

    @model_validator(mode="after")
    def _backends_are_configured(self) -> Self:
        needs_project = [what for what, used in
                         (("storage=gcs", self.storage == "gcs"),
                          ("bus=pubsub", self.bus == "pubsub"),
                          ("catalog=firestore", self.catalog == "firestore")) if used]
        if needs_project and not self.project:
            raise ValueError(
                f"{' and '.join(needs_project)} need{'s' if len(needs_project) == 1 else ''} a "
                "Google Cloud project: set "
                "GOOGLE_CLOUD_PROJECT (any name works with the emulators)"
            )
        return self

    @property
    def catalog_backend(self) -> CatalogBackend:
        if self.catalog is not None:
            return self.catalog
        return "firestore" if self.storage == "gcs" else "sqlite"

    @property
    def catalog_file(self) -> Path:
        return self.catalog_path or Path(self.data_dir) / "catalog.sqlite3"

    @property
    def uses_emulators(self) -> bool:
        return bool(self.storage_emulator_host or self.pubsub_emulator_host)

    def bucket_names(self) -> dict[str, str]:
        return {"uploads": self.uploads_bucket, "work": self.work_bucket,
                "results": self.results_bucket, "models": self.models_bucket}


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; `overrides` win. Raises SettingsError with a clear message.

    Keyword overrides use field names (`storage="gcs"`), whatever the environment says.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
            for e in err.errors()
        )
        raise SettingsError(f"Invalid detectflow settings: {problems}") from err


def load_function_settings() -> Settings:
    """Settings for a deployed function: GCS + Pub/Sub unless the environment says otherwise."""
    defaults: dict[str, object] = {}
    if "DETECTFLOW_STORAGE" not in os.environ:
        defaults["storage"] = "gcs"
    if "DETECTFLOW_BUS" not in os.environ:
        defaults["bus"] = "pubsub"
    return load_settings(**defaults)

"""The web app's settings: one typed object, read from `DETECTFLOW_*` environment variables.

Invalid values fail at start-up with pydantic's message naming the variable, not at the first
request.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from detectflow.settings import ServingSettings

MB = 1024 * 1024


class FrontendSettings(ServingSettings):
    """The web app's own settings, plus the image limits and the serving score threshold it
    shares with the pipeline (declared once, in `detectflow.settings.ServingSettings`)."""

    model_config = SettingsConfigDict(env_prefix="DETECTFLOW_", extra="ignore", frozen=True)

    api_key: SecretStr | None = Field(
        default=None,
        description="When set, every /api request needs it in the X-API-Key header "
        "(DETECTFLOW_API_KEY). The web page asks for it once and keeps it in the browser.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from other sites, comma-separated "
        "(DETECTFLOW_CORS_ORIGINS=https://a.example,https://b.example; `*` for any).",
    )
    max_files_per_request: int = Field(
        default=20, gt=0, description="Most files one POST /api/images may carry."
    )
    max_request_bytes: int = Field(
        default=110 * MB,
        gt=0,
        description="Largest request body, in bytes (checked while streaming).",
    )
    page_size: int = Field(
        default=24, gt=0, le=200, description="Default page size of GET /api/images."
    )
    title: str = "detectflow"

    # --- who may call: host names and origins (checked before the body is read) ---
    trusted_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the app answers to, comma-separated; `*.example.org` matches "
        "sub-domains, `*` any name. Unset: with no API key, `detectflow up` answers only to "
        "the address it serves on and localhost names (no check when it serves on every "
        "interface); with a key, any name (DETECTFLOW_TRUSTED_HOSTS).",
    )

    # --- the HTTP server (detectflow up): slow and idle clients, connection cap ---
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Time a client has to send a request's headers.")
    body_timeout_seconds: float = Field(
        default=20.0, gt=0,
        description="Longest pause between two parts of a request body being read.")
    keep_alive_seconds: int = Field(
        default=5, ge=1, description="An idle keep-alive connection is closed after this.")
    max_connections: int = Field(
        default=1024, gt=0, description="Open connections at once; more are answered 503.")

    # --- GET /api/images/{id}/annotated ---
    annotated_max_side: int = Field(
        default=2048, ge=64, le=16384,
        description="Longer side, in pixels, of the JPEG with the boxes drawn (boxes scaled).")
    annotated_concurrency: int = Field(
        default=2, ge=1, le=64, description="Annotated JPEGs drawn at once.")
    annotated_wait_seconds: float = Field(
        default=10.0, ge=0,
        description="How long a request waits for a drawing slot before a 503.")
    annotated_cache_bytes: int = Field(
        default=64 * MB, ge=0, description="Memory kept for drawn JPEGs (least recently used "
        "go first); 0 turns the cache off.")
    annotated_trim_memory: bool = Field(
        default=True, description="Give freed memory back to the system after drawing a "
        "large image (glibc's malloc_trim; no effect elsewhere).")

    # --- clients waiting for a result (long-poll ?wait and /events) ---
    max_waiting_clients: int = Field(
        default=512, ge=1,
        description="Long-poll and event-stream clients waiting at once; more get a 503.")
    status_check_seconds: float = Field(
        default=0.025, gt=0, le=5,
        description="How often the status of the images clients wait on is read (once per "
        "image, however many clients wait on it).")

    @field_validator("cors_origins", "trusted_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

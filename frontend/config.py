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

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

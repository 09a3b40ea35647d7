"""The result record: exactly one per accepted upload, in the results bucket, as JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from detectflow.detection import Detection


class SourceObject(BaseModel):
    bucket: str
    name: str
    generation: str | None = None
    filename: str | None = Field(None, description="the name the user gave the file")
    content_type: str | None = None
    size: int | None = None


class ImageSize(BaseModel):
    width: int
    height: int


class ModelRef(BaseModel):
    name: str
    version: str


class ErrorInfo(BaseModel):
    code: str = Field(description="stable machine-readable reason, e.g. not_an_image, corrupt")
    message: str = Field(description="a sentence a person understands")


class ResultRecord(BaseModel):
    image_id: str
    status: Literal["done", "failed"]
    source: SourceObject
    image: ImageSize | None = None
    detections: list[Detection] = Field(default_factory=list)
    model: ModelRef | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    error: ErrorInfo | None = None
    created: str = Field(default_factory=lambda: _now_iso())


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")

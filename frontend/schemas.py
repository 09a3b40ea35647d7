"""Response models, one per resource. Boxes are `xyxy` in pixels of the original image."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.dataclasses import dataclass

from detectflow.detection import BOX_XYXY_DESCRIPTION, Detection

ImageStatus = Literal["queued", "processing", "done", "failed"]


class ErrorBody(BaseModel):
    code: str = Field(description="Stable, machine-readable reason, e.g. `not_an_image`.")
    message: str = Field(description="A sentence a person understands.")
    details: list[dict[str, Any]] = Field(
        default_factory=list, description="Per-field or per-file specifics, when there are any."
    )


class ErrorResponse(BaseModel):
    """Every error answer of the API has this shape, whatever its status code."""

    error: ErrorBody


class ImageRef(BaseModel):
    id: str = Field(description="32 hex characters; sorts by upload time.")
    status: ImageStatus
    url: str = Field(description="Where to poll for the result (GET).")
    filename: str | None = Field(default=None, description="The file name as uploaded, made safe.")
    result: ImageDetail | None = Field(
        default=None,
        description="With `?wait=S`: the image as GET /api/images/{id} shows it, once done or "
        "failed within S seconds (null while still queued or processing).",
    )


class UploadAccepted(BaseModel):
    images: list[ImageRef] = Field(description="One entry per uploaded file, in request order.")


@dataclass(frozen=True, slots=True)
class DetectionOut(Detection):
    """One detected object: detectflow's `Detection`, named for the API (its schema name is
    part of the published OpenAPI document); `box` is xyxy pixels of the original image."""

    @classmethod
    def of(cls, detection: Detection) -> DetectionOut:
        return cls(detection.label, detection.class_id, detection.score, detection.box_xyxy)


class ImageSizeOut(BaseModel):
    width: int
    height: int


class ModelRefOut(BaseModel):
    name: str
    version: str


class ImageLinks(BaseModel):
    self: str
    original: str = Field(description="The uploaded file, as stored.")
    annotated: str = Field(description="JPEG with the boxes drawn server-side (when done).")
    events: str = Field(description="Server-Sent Events stream of this image's status.")


class ImageDetail(BaseModel):
    id: str
    status: ImageStatus = Field(
        description="queued (stored, not yet picked up) → processing → done | failed."
    )
    filename: str | None = None
    created: str | None = Field(default=None, description="Upload time, ISO 8601 UTC.")
    box_format: Literal["xyxy"] = Field(
        default="xyxy", description="Format of every `box`: " + BOX_XYXY_DESCRIPTION
    )
    image: ImageSizeOut | None = Field(default=None, description="Original image size (when done).")
    detections: list[DetectionOut] = Field(
        default_factory=list, description="Best score first; empty unless done."
    )
    model: ModelRefOut | None = Field(
        default=None, description="The model that produced the result."
    )
    timings_ms: dict[str, float] = Field(
        default_factory=dict, description="Milliseconds per pipeline stage."
    )
    error: ErrorBody | None = Field(
        default=None, description="Why processing failed (status failed)."
    )
    links: ImageLinks


class ImageSummary(BaseModel):
    id: str
    status: ImageStatus
    filename: str | None = None
    created: str | None = None
    detection_count: int | None = Field(
        default=None, description="Number of detections, when done."
    )
    class_counts: dict[str, int] = Field(
        default_factory=dict, description="Detections per class, when done."
    )
    error_code: str | None = Field(default=None, description="Why it failed, when failed.")
    url: str


class ImageList(BaseModel):
    images: list[ImageSummary] = Field(description="Newest first.")
    next: str | None = Field(
        default=None,
        description="Pass as `before` (with the same filters) to get the next, older page; "
        "null on the last page. Opaque: use it as it is.",
    )


class Stats(BaseModel):
    images: dict[str, int] = Field(
        description="Images by status: queued, processing, done, failed (0s included)."
    )
    total: int = Field(description="All images.")
    detections: dict[str, int] = Field(
        description="Detections by class over all done images (the served model's classes, "
        "0s included)."
    )


class ModelMetrics(BaseModel):
    map50: float | None = Field(
        default=None, description="COCO-style mAP at IoU 0.5 on the test split."
    )
    map50_95: float | None = Field(default=None, description="mAP averaged over IoU 0.5:0.95.")
    per_class_ap50: dict[str, float] = Field(default_factory=dict)


class ClassInfo(BaseModel):
    id: int
    name: str
    color: str = Field(description="CSS colour used for this class, on the page and server-side.")


class ModelInfo(BaseModel):
    name: str
    version: str
    created: str
    export: str = Field(description="Which export is served, e.g. `int8`.")
    input_size: tuple[int, int] = Field(description="Model input (width, height) in pixels.")
    classes: list[ClassInfo]
    score_threshold: float = Field(
        description="Detections below this score are not reported: the model manifest's "
        "decoding.score_threshold, unless the server sets DETECTFLOW_SCORE_THRESHOLD."
    )
    metrics: ModelMetrics
    size_bytes: int | None = Field(default=None, description="Size of the served model file.")


class ModelList(BaseModel):
    models: list[ModelInfo] = Field(description="The served model; empty while none is loaded.")


class Health(BaseModel):
    status: Literal["ok"]
    model: ModelRefOut | None = Field(default=None, description="The served model, once loaded.")


# ImageRef names ImageDetail, defined after it: resolve the reference now that both exist.
ImageRef.model_rebuild()
UploadAccepted.model_rebuild()

"""The model bundle's `manifest.json`: everything needed to run a model without its trainer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

MANIFEST_NAME = "manifest.json"


class InputSpec(BaseModel):
    width: int
    height: int
    dtype: Literal["uint8", "int8", "float32"]
    layout: Literal["NHWC"] = "NHWC"


class Preprocessing(BaseModel):
    """pixels (RGB uint8, letterboxed top-left, padded grey) -> model input.

    normalized = pixel * scale + offset; integer models then quantize with the input tensor's
    own (scale, zero_point), read from the model file.
    """

    resize: Literal["letterbox_top_left"] = "letterbox_top_left"
    pad_value: int = 114
    scale: float = 1.0 / 127.5
    offset: float = -1.0


class Decoding(BaseModel):
    """CenterNet-style heatmap peaks + per-location box edges (TTFNet `ltrb`)."""

    type: Literal["centernet_ltrb"] = "centernet_ltrb"
    stride: int = 4
    ltrb_unit_px: float = 16.0
    heatmap_output: int = Field(default=0, description="index into the output details")
    ltrb_output: int = Field(default=1, description="index into the output details")
    score_threshold: float = 0.3
    box_vote_radius: int = Field(
        default=0, ge=0, le=3,
        description="cells on each side of a peak whose boxes are averaged into its box, "
        "weighted by their heatmap score (0: the peak cell's box alone, as bundles made "
        "before it existed)",
    )
    nms_iou: float = 0.6
    max_detections: int = 100


class ExportMetrics(BaseModel):
    file: str
    size_bytes: int
    outputs: dict[str, int] = Field(
        default_factory=dict, description="output index of 'heatmap' and 'ltrb' in this file"
    )
    map50: float | None = None
    map50_95: float | None = None
    per_class_ap50: dict[str, float] = Field(default_factory=dict)
    latency_ms: float | None = None


class Manifest(BaseModel):
    name: str
    version: str
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    classes: list[str]
    input: InputSpec
    preprocessing: Preprocessing = Preprocessing()
    decoding: Decoding = Decoding()
    model_file: str = "model.tflite"
    export: str = Field(default="int8", description="which export `model_file` is")
    exports: dict[str, ExportMetrics] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    plots: list[str] = Field(default_factory=list)

    @classmethod
    def read(cls, bundle_dir: str | Path) -> Manifest:
        path = Path(bundle_dir) / MANIFEST_NAME
        if not path.is_file():
            raise FileNotFoundError(f"No {MANIFEST_NAME} in {bundle_dir}: not a model bundle.")
        return cls.model_validate_json(path.read_text())

    def decoding_for(self, model_file: str) -> Decoding:
        """The decoding spec for one of the bundle's files (output order differs per export)."""
        for export in self.exports.values():
            if export.file == model_file and export.outputs:
                return self.decoding.model_copy(
                    update={"heatmap_output": export.outputs["heatmap"],
                            "ltrb_output": export.outputs["ltrb"]}
                )
        return self.decoding

    def write(self, bundle_dir: str | Path) -> Path:
        path = Path(bundle_dir) / MANIFEST_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n")
        return path

"""The one detection type: what the Detector returns, the result record stores and the API
sends (`frontend.schemas.DetectionOut` is this type under its API name)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, ConfigDict, Field, TypeAdapter, field_serializer
from pydantic.dataclasses import dataclass

BoxXyxy = tuple[float, float, float, float]
Score = Annotated[float, Field(ge=0.0, le=1.0, description="Confidence in [0, 1].")]

BOX_XYXY_DESCRIPTION = (
    "xyxy: [x_min, y_min, x_max, y_max] in pixels of the original image (after its EXIF "
    "orientation, i.e. as a viewer shows it); x to the right, y down, origin top-left."
)


@dataclass(frozen=True, slots=True, config=ConfigDict(serialize_by_alias=True))
class Detection:
    """One detected object.

    `box_xyxy` is (x_min, y_min, x_max, y_max) in pixels of the *original* image, after its
    EXIF orientation has been applied (i.e. as a viewer displays it). In JSON (result records,
    the API, `predict --json`) it is `box`, with boxes rounded to 0.01 px and scores to 5
    decimals. A plain (validated) dataclass: `Detection("WBC", 1, 0.9, (x0, y0, x1, y1))`.
    """

    label: Annotated[str, Field(description="Class name, one of the model's classes.")]
    class_id: Annotated[int, Field(description="Index into the model's `classes`.")]
    score: Score
    box_xyxy: Annotated[BoxXyxy, Field(validation_alias=AliasChoices("box", "box_xyxy"),
                                       serialization_alias="box",
                                       description=BOX_XYXY_DESCRIPTION)]

    @field_serializer("score")
    def _rounded_score(self, score: float) -> Score:
        return round(score, 5)

    @field_serializer("box_xyxy")
    def _rounded_box(self, box: BoxXyxy) -> BoxXyxy:
        x0, y0, x1, y1 = (round(v, 2) for v in box)
        return x0, y0, x1, y1

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: {"label", "class_id", "score", "box"}."""
        data: dict[str, Any] = _ADAPTER.dump_python(self, mode="json")
        return data


_ADAPTER = TypeAdapter(Detection)

"""The one result type every part of detectflow speaks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected object.

    `box_xyxy` is (x_min, y_min, x_max, y_max) in pixels of the *original* image, after its
    EXIF orientation has been applied (i.e. as a viewer displays it).
    """

    label: str
    class_id: int
    score: float
    box_xyxy: tuple[float, float, float, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "class_id": self.class_id,
            "score": round(self.score, 5),
            "box": [round(v, 2) for v in self.box_xyxy],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Detection:
        x0, y0, x1, y1 = (float(v) for v in data["box"])
        return cls(
            label=str(data["label"]),
            class_id=int(data["class_id"]),
            score=float(data["score"]),
            box_xyxy=(x0, y0, x1, y1),
        )

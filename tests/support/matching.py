"""Comparing what the pipeline stored with what the Detector finds on the same image."""

from __future__ import annotations

from detectflow.detection import Detection


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def assert_matches(got: list[Detection], reference: list[Detection]) -> None:
    """Pipeline (JPEG draft decode) vs Detector.detect (full decode): same objects."""
    strong = [d for d in reference if d.score >= 0.5]
    assert strong, "the reference found nothing confident: not a useful comparison"
    for ref in strong:
        best = max((iou(ref.box_xyxy, g.box_xyxy) for g in got if g.label == ref.label),
                   default=0)
        assert best >= 0.7, f"{ref} has no match in the pipeline's result"
    confident = [g for g in got if g.score >= 0.5]
    assert abs(len(confident) - len(strong)) <= max(2, len(strong) // 5)

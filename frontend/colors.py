"""One colour per class id, shared by the API (`/api/models`) and so by the web page."""

from __future__ import annotations

# Distinct, readable on photos and on micrographs; cycles after ten classes.
PALETTE = (
    "#ef4444",
    "#3b82f6",
    "#f59e0b",
    "#10b981",
    "#a855f7",
    "#ec4899",
    "#14b8a6",
    "#f97316",
    "#6366f1",
    "#84cc16",
)


def class_color(class_id: int) -> str:
    return PALETTE[class_id % len(PALETTE)]

"""What was wrong with a dataset's annotations and what the loader did about it.

Every reader (VOC, COCO, YOLO) reports defects in this one vocabulary, so `detectflow data`
shows the same report whatever format the labels came in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# What happened to the data for each kind of issue (shown in reports).
ISSUE_ACTIONS: dict[str, str] = {
    "whitespace_in_name": "fixed: name stripped",
    "inverted_box": "fixed: coordinates swapped",
    "out_of_bounds_box": "clipped to the image",
    "missing_size": "used the image file's size",
    "size_mismatch": "used the image file's size",
    "filename_mismatch": "used the image named like the XML file",
    "polygon_as_box": "fixed: the polygon's bounding box used",
    "duplicate_box": "fixed: repeated box dropped",
    "duplicate_category": "fixed: categories with one name merged",
    "degenerate_box": "box skipped",
    "invalid_box": "box skipped",
    "missing_name": "box skipped",
    "unknown_class": "box skipped",
    "orphan_annotation": "box skipped",
    "unparsable_xml": "image skipped",
    "invalid_image_entry": "image skipped",
    "duplicate_image": "image skipped",
    "missing_image": "image skipped",
    "unreadable_image": "image skipped",
    "missing_annotation": "image skipped",
    "unparsable_file": "file skipped",
}


@dataclass(frozen=True)
class DatasetIssue:
    """One defect: the file it is in (annotation file, or image for COCO), kind, details."""

    file: str
    kind: str
    detail: str

    @property
    def action(self) -> str:
        return ISSUE_ACTIONS.get(self.kind, "reported")


def issue_counts(issues: Iterable[DatasetIssue]) -> dict[str, int]:
    """Number of issues per kind, most frequent first."""
    return dict(Counter(i.kind for i in issues).most_common())


def format_issue_report(issues: Sequence[DatasetIssue], max_files: int = 5) -> str:
    """Counts per kind, what was done about them, and the files involved."""
    if not issues:
        return "No annotation issues found."
    lines = [f"{len(issues)} annotation issue(s):"]
    for kind, count in issue_counts(issues).items():
        files = list(dict.fromkeys(i.file for i in issues if i.kind == kind))
        shown = ", ".join(files[:max_files])
        more = f" (+{len(files) - max_files} more)" if len(files) > max_files else ""
        action = ISSUE_ACTIONS.get(kind, "reported")
        lines.append(f"  {kind:20s} {count:5d}  {action:40s} {shown}{more}")
    return "\n".join(lines)

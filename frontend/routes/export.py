"""`/api/export`: the results of a gallery filter as a download.

  * `format=csv`: one row per image with its detection counts per class (from the catalog
    alone, so it costs one catalog page per 500 images);
  * `format=coco`: COCO-format JSON of the detections (`images`, `annotations` with `bbox`
    as [x_min, y_min, width, height] in pixels of the original image, `score`, and
    `categories` with id = the model's class id + 1): reads each done image's result record.
Both stream: memory does not grow with the number of images.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from detectflow.catalog import Catalog, CatalogQuery, CatalogRecord
from detectflow.model.manifest import Manifest
from detectflow.pipeline.status import read_result
from detectflow.storage import Buckets
from frontend.deps import BucketsDep, CatalogDep, ManifestDep
from frontend.filters import GalleryQuery
from frontend.schemas import ErrorResponse
from frontend.views import iso_time

router = APIRouter(prefix="/api", tags=["export"])

PAGE = 500


def _records(catalog: Catalog, query: CatalogQuery) -> Iterator[CatalogRecord]:
    """Every record the filter matches, newest first, a page at a time."""
    query = dataclasses.replace(query, limit=PAGE, before=None)
    while True:
        page = catalog.page(query)
        yield from page.records
        if page.next is None:
            return
        query = dataclasses.replace(query, before=page.next)


def _csv_rows(catalog: Catalog, query: CatalogQuery, classes: list[str]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)

    def flush() -> str:
        text = out.getvalue()
        out.seek(0)
        out.truncate()
        return text

    writer.writerow(["id", "filename", "created", "status", "model", "model_version",
                     "detections", *classes, "other_classes", "error_code"])
    yield flush()
    for record in _records(catalog, query):
        counts = record.class_counts
        other = ";".join(f"{k}={v}" for k, v in sorted(counts.items()) if k not in classes)
        writer.writerow([
            record.image_id, record.filename, iso_time(record.created_ms) or "", record.status,
            record.model_name or "", record.model_version or "",
            "" if record.detection_count is None else record.detection_count,
            *(counts.get(name, 0) if record.status == "done" else "" for name in classes),
            other, record.error_code or ""])
        yield flush()


def _coco_chunks(buckets: Buckets, catalog: Catalog, query: CatalogQuery,
                 manifest: Manifest | None) -> Iterator[str]:
    """`images` streamed as they are read; `annotations` spooled to a temporary file (they
    come from the same records) and streamed after."""
    done = dataclasses.replace(query, status="done")
    categories: dict[str, int] = {name: i for i, name in enumerate(manifest.classes)} if (
        manifest) else {}
    yield json.dumps({"info": {"description": "detectflow export",
                               "date_created": datetime.now(UTC).isoformat(timespec="seconds"),
                               "box_format": "bbox = [x_min, y_min, width, height], pixels of "
                               "the original image"}})[:-1]
    yield ', "images": ['
    annotation_id = 0
    with tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+") as spool:
        first_image = True
        for index, record in enumerate(_records(catalog, done), start=1):
            result = read_result(buckets, record.image_id)
            if result is None or result.image is None:
                continue
            image = {"id": index, "detectflow_id": record.image_id,
                     "file_name": record.filename, "width": result.image.width,
                     "height": result.image.height}
            yield ("" if first_image else ", ") + json.dumps(image)
            first_image = False
            for det in result.detections:
                categories.setdefault(det.label, det.class_id)
                x0, y0, x1, y1 = det.box_xyxy
                annotation_id += 1
                spool.write(("" if annotation_id == 1 else ", ") + json.dumps({
                    "id": annotation_id, "image_id": index,
                    "category_id": categories[det.label] + 1,
                    "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                    "area": round((x1 - x0) * (y1 - y0), 2), "score": round(det.score, 4),
                    "iscrowd": 0}))
        yield '], "annotations": ['
        spool.seek(0)
        while chunk := spool.read(1 << 16):
            yield chunk
    category_list = [{"id": class_id + 1, "name": name}
                     for name, class_id in sorted(categories.items(), key=lambda c: c[1])]
    yield '], "categories": ' + json.dumps(category_list) + "}"


@router.get(
    "/export",
    response_class=StreamingResponse,
    summary="Download the results of a filter (CSV or COCO JSON)",
    responses={
        200: {"content": {"text/csv": {}, "application/json": {}},
              "description": "A file to save."},
        422: {"model": ErrorResponse, "description": "Unknown format or filter value."},
    },
)
def export(
    buckets: BucketsDep,
    catalog: CatalogDep,
    manifest: ManifestDep,
    query: GalleryQuery,
    format: Annotated[
        Literal["csv", "coco"],
        Query(description="`csv`: counts per image and class; `coco`: COCO detections JSON "
              "(done images only)."),
    ] = "csv",
) -> StreamingResponse:
    """Same filters as GET /api/images (`status`, `label`, `since`, `until`), every match."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if format == "csv":
        classes = list(manifest.classes) if manifest else []
        body: Iterator[str] = _csv_rows(catalog, query, classes)
        media_type, name = "text/csv; charset=utf-8", f"detectflow-{stamp}.csv"
    else:
        body = _coco_chunks(buckets, catalog, query, manifest)
        media_type, name = "application/json", f"detectflow-{stamp}.coco.json"
    return StreamingResponse(body, media_type=media_type,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})

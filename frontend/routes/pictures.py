"""`/api/images/{id}/original` and `/annotated`: the uploaded file, and the boxes drawn on it."""

from __future__ import annotations

import io
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Response

from detectflow.drawing import draw_detections
from detectflow.imaging import ImageError, decode_image, sniff_image
from detectflow.pipeline.status import image_status
from frontend.deps import BucketsDep, CatalogDep, ImageIdPath, ManifestDep, SettingsDep
from frontend.errors import IMAGE_ERRORS, ApiError, image_not_found
from frontend.lookups import original_bytes
from frontend.schemas import ErrorResponse

router = APIRouter(prefix="/api/images", tags=["images"])

IMMUTABLE = "private, max-age=31536000, immutable"


def _content_disposition(filename: str, inline: bool) -> str:
    kind = "inline" if inline else "attachment"
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


@router.get(
    "/{image_id}/original",
    response_class=Response,
    summary="The uploaded file",
    responses={
        **IMAGE_ERRORS, 200: {"content": {"image/*": {}}, "description": "The image bytes."}
    },
)
def get_original(image_id: ImageIdPath, buckets: BucketsDep, catalog: CatalogDep,
                 settings: SettingsDep) -> Response:
    """The file exactly as uploaded, with the image type read from its bytes."""
    found = original_bytes(buckets, catalog, image_id)
    if found is None:
        raise image_not_found(image_id)
    data, filename = found
    try:
        media_type, inline = sniff_image(data, settings.image_limits).mime_type, True
    except ImageError:  # never serve unchecked bytes as something a browser would render
        media_type, inline = "application/octet-stream", False
    return Response(
        data,
        media_type=media_type,
        headers={
            "Content-Disposition": _content_disposition(filename, inline),
            "Cache-Control": IMMUTABLE,
        },
    )


@router.get(
    "/{image_id}/annotated",
    response_class=Response,
    summary="The image with its boxes drawn (JPEG)",
    responses={
        **IMAGE_ERRORS,
        200: {"content": {"image/jpeg": {}}, "description": "JPEG with boxes and labels."},
        409: {"model": ErrorResponse, "description": "Not done yet, or processing failed."},
    },
)
def get_annotated(
    image_id: ImageIdPath,
    buckets: BucketsDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    manifest: ManifestDep,
    min_score: Annotated[
        float, Query(ge=0, le=1, description="Draw only boxes with at least this score.")
    ] = 0.0,
) -> Response:
    """Boxes drawn server-side with Pillow, for clients that cannot draw them."""
    state, record = image_status(buckets, image_id)
    if state == "not_found":
        raise image_not_found(image_id)
    if record is None:
        raise ApiError(409, "not_ready", f"The image is {state}; its boxes are not known yet.")
    if record.status != "done":
        reason = record.error.message if record.error else "processing failed"
        raise ApiError(409, "failed", f"The image has no boxes: {reason}")
    found = original_bytes(buckets, catalog, image_id)
    if found is None:
        raise image_not_found(image_id)
    image = decode_image(found[0], settings.image_limits)
    detections = [d for d in record.detections if d.score >= min_score]
    drawn = draw_detections(image, detections, manifest.classes if manifest else None)
    out = io.BytesIO()
    drawn.save(out, format="JPEG", quality=90)
    stem = found[1].rsplit(".", 1)[0]
    return Response(
        out.getvalue(),
        media_type="image/jpeg",
        headers={
            "Content-Disposition": _content_disposition(f"{stem}-annotated.jpg", inline=True),
            "Cache-Control": "private, max-age=60",
        },
    )

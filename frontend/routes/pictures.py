"""`/api/images/{id}/original` and `/annotated`: the uploaded file, and the boxes drawn on it."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from PIL import Image

from detectflow.imaging import ImageError, sniff_image
from detectflow.pipeline.status import image_status
from detectflow.records import ResultRecord
from frontend.annotated import RenderBusy, RenderKey, result_version
from frontend.deps import (
    BucketsDep,
    CatalogDep,
    ImageIdPath,
    ManifestDep,
    RendererDep,
    SettingsDep,
)
from frontend.errors import IMAGE_ERRORS, ApiError, image_not_found
from frontend.lookups import original_bytes
from frontend.schemas import ErrorResponse

router = APIRouter(prefix="/api/images", tags=["images"])

IMMUTABLE = "private, max-age=31536000, immutable"
# The extension a served file gets for the type read from its bytes.
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "BMP": "bmp", "GIF": "gif",
              "TIFF": "tif"}
RETRY_AFTER_S = 2


def _content_disposition(filename: str, inline: bool) -> str:
    kind = "inline" if inline else "attachment"
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def named_for_type(filename: str, image_format: str) -> str:
    """`filename` with an extension of the type its bytes have: `evil.html` holding a JPEG is
    served as `evil.jpg`, so a browser that saves or opens it never treats it as a page."""
    stem, dot, ext = filename.rpartition(".")
    if dot and Image.registered_extensions().get(f".{ext.lower()}") == image_format:
        return filename
    return f"{stem if dot and stem else filename}.{EXTENSIONS.get(image_format, 'bin')}"


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
        info = sniff_image(data, settings.image_limits)
        media_type, inline = info.mime_type, True
        filename = named_for_type(filename, info.format)
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
        503: {"model": ErrorResponse, "description": "Busy drawing others: retry shortly."},
    },
)
async def get_annotated(
    image_id: ImageIdPath,
    buckets: BucketsDep,
    catalog: CatalogDep,
    manifest: ManifestDep,
    renderer: RendererDep,
    min_score: Annotated[
        float, Query(ge=0, le=1, description="Draw only boxes with at least this score.")
    ] = 0.0,
) -> Response:
    """Boxes drawn server-side with Pillow, for clients that cannot draw them. The JPEG is at
    most 2048 px on its longer side (DETECTFLOW_ANNOTATED_MAX_SIDE), the boxes scaled to
    it; the boxes in GET /api/images/{id} stay in pixels of the original."""
    state, record = await run_in_threadpool(image_status, buckets, image_id)
    if state == "not_found":
        raise image_not_found(image_id)
    if record is None:
        raise ApiError(409, "not_ready", f"The image is {state}; its boxes are not known yet.")
    if record.status != "done":
        reason = record.error.message if record.error else "processing failed"
        raise ApiError(409, "failed", f"The image has no boxes: {reason}")
    classes = tuple(manifest.classes) if manifest else None
    key = RenderKey(image_id, result_version(record), renderer.max_side, min_score, classes)
    cached = renderer.cache.get(key)
    if cached is None:
        try:
            async with renderer.slot():
                # A request that waited for the slot may find the render of the one before.
                cached = renderer.cache.get(key) or await _render(
                    buckets, catalog, renderer, key, record, min_score)
        except RenderBusy:
            raise ApiError(503, "busy", "The server is drawing other images; ask again in "
                           f"{RETRY_AFTER_S} s.",
                           headers={"Retry-After": str(RETRY_AFTER_S)}) from None
    jpeg, filename = cached
    stem = filename.rsplit(".", 1)[0]
    return Response(
        jpeg,
        media_type="image/jpeg",
        headers={
            "Content-Disposition": _content_disposition(f"{stem}-annotated.jpg", inline=True),
            "Cache-Control": "private, max-age=60",
        },
    )


async def _render(buckets: BucketsDep, catalog: CatalogDep, renderer: RendererDep,
                  key: RenderKey, record: ResultRecord, min_score: float) -> tuple[bytes, str]:
    found = await run_in_threadpool(original_bytes, buckets, catalog, key.image_id)
    if found is None:
        raise image_not_found(key.image_id)
    data, filename = found
    detections = [d for d in record.detections if d.score >= min_score]
    try:
        jpeg = await run_in_threadpool(renderer.render, data, record, detections, key.classes)
    except ImageError as err:  # stored bytes that no longer decode: say so, not a 500
        raise ApiError(409, "failed", f"The image cannot be drawn: {err}") from err
    renderer.cache.put(key, jpeg, filename)
    return jpeg, filename

"""`/api/images`: upload images, follow their status, fetch results and pictures."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Depends, File, Query, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from detectflow import layout
from detectflow.detection import Detection
from detectflow.drawing import draw_detections
from detectflow.imaging import ImageError, ImageInfo, decode_image, sniff_image
from detectflow.pipeline.status import image_status, read_result
from detectflow.records import ResultRecord
from detectflow.storage import BlobNotFound, Buckets
from frontend import catalog
from frontend.catalog import Upload
from frontend.deps import BucketsDep, ImageIdPath, ManifestDep, SettingsDep
from frontend.errors import ApiError
from frontend.schemas import (
    DetectionOut,
    ErrorBody,
    ErrorResponse,
    ImageDetail,
    ImageLinks,
    ImageList,
    ImageRef,
    ImageSizeOut,
    ImageStatus,
    ImageSummary,
    ModelRefOut,
    UploadAccepted,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/images", tags=["images"])

TERMINAL: frozenset[str] = frozenset({"done", "failed"})
LONG_POLL_TICK_S = 0.02
SSE_TICK_S = 0.1
MAX_WAIT_S = 30.0
SSE_MAX_S = 600.0

# HTTP status for each way an upload can be refused (codes from detectflow.imaging).
_UPLOAD_ERROR_STATUS = {
    "too_large": 413,
    "too_many_pixels": 413,
    "not_an_image": 415,
    "unsupported_format": 415,
    "empty": 422,
    "too_small": 422,
}

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No image with this id."},
    422: {"model": ErrorResponse, "description": "Malformed id or parameters."},
}


def _image_path(image_id: str) -> str:
    return f"/api/images/{image_id}"


# --- upload -----------------------------------------------------------------------------------


async def _read_capped(upload: UploadFile, max_bytes: int) -> bytes:
    """Read at most one byte over the cap: enough to say "too large" without buffering more."""
    return await upload.read(max_bytes + 1)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=UploadAccepted,
    summary="Upload one or more images for detection",
    responses={
        413: {"model": ErrorResponse, "description": "A file or the request is too large."},
        415: {"model": ErrorResponse, "description": "A file is not a supported image."},
        422: {"model": ErrorResponse, "description": "No file, an empty or tiny image."},
    },
)
async def upload_images(
    file: Annotated[
        list[UploadFile],
        File(
            description="An image file; repeat the field for several (`-F file=@a.jpg -F "
            "file=@b.jpg`). JPEG, PNG, WebP, BMP, GIF or TIFF; the type is read from the "
            "bytes, not the name."
        ),
    ],
    buckets: BucketsDep,
    settings: SettingsDep,
) -> UploadAccepted:
    """Store the images in the uploads bucket, where the pipeline picks them up.

    Every file is checked first (type sniffed from its bytes, size, pixel count); if any file
    is refused, **nothing is stored** and the answer lists each refused file in
    `error.details`. Otherwise the answer is 202 with one entry per file, in order: poll
    its `url` (or add `?wait=10` to long-poll) until `status` is `done` or `failed`.
    """
    if len(file) > settings.max_files_per_request:
        raise ApiError(
            413,
            "too_many_files",
            f"{len(file)} files in one request; the limit is {settings.max_files_per_request}.",
        )
    limits = settings.image_limits
    accepted: list[tuple[str, bytes, ImageInfo]] = []
    refused: list[dict[str, Any]] = []
    for index, upload in enumerate(file):
        filename = layout.safe_filename(upload.filename or "image")
        data = await _read_capped(upload, limits.max_bytes)
        try:
            info = await run_in_threadpool(sniff_image, data, limits)
        except ImageError as err:
            refused.append(
                {"index": index, "filename": filename, "code": err.code, "message": str(err)}
            )
            continue
        accepted.append((filename, data, info))
    if refused:
        raise _refusal(refused, total=len(file))
    refs = [
        await run_in_threadpool(_store, buckets, name, data, info) for name, data, info in accepted
    ]
    return UploadAccepted(images=refs)


def _refusal(refused: list[dict[str, Any]], total: int) -> ApiError:
    first = refused[0]
    message = (
        first["message"]
        if total == 1
        else (
            f"{len(refused)} of {total} files were refused and nothing was stored. "
            f"{first['filename']}: {first['message']}"
        )
    )
    return ApiError(_UPLOAD_ERROR_STATUS.get(first["code"], 422), first["code"], message, refused)


def _store(buckets: Buckets, filename: str, data: bytes, info: ImageInfo) -> ImageRef:
    image_id = layout.new_image_id()
    key = layout.upload_key(image_id, filename)
    buckets.uploads.put(key, data, content_type=info.mime_type, metadata={"filename": filename})
    log.info(
        "upload stored",
        extra={
            "image_id": image_id,
            "bytes": len(data),
            "format": info.format,
            "size": f"{info.width}x{info.height}",
        },
    )
    return ImageRef(id=image_id, status="queued", url=_image_path(image_id), filename=filename)


# --- status and results -----------------------------------------------------------------------


def _filename_of(record: ResultRecord | None, upload: Upload | None) -> str | None:
    if upload is not None:
        return upload.filename
    if record is not None:
        return record.source.filename or layout.safe_filename(record.source.name)
    return None


def _created_of(image_id: str, record: ResultRecord | None, upload: Upload | None) -> str | None:
    if upload is not None:
        return catalog.iso_time(upload.created_ns)
    if record is not None and record.source.name.startswith(f"{image_id}/"):
        return catalog.iso_time(catalog.id_time_ns(image_id))
    return None


def _detail(
    image_id: str, state: ImageStatus, record: ResultRecord | None, upload: Upload | None
) -> ImageDetail:
    path = _image_path(image_id)
    detail = ImageDetail(
        id=image_id,
        status=state,
        filename=_filename_of(record, upload),
        created=_created_of(image_id, record, upload),
        links=ImageLinks(
            self=path,
            original=f"{path}/original",
            annotated=f"{path}/annotated",
            events=f"{path}/events",
        ),
    )
    if record is None:
        return detail
    detail.detections = sorted(
        (
            DetectionOut(label=d.label, class_id=d.class_id, score=d.score, box=d.box)
            for d in record.detections
        ),
        key=lambda d: -d.score,
    )
    detail.image = ImageSizeOut(**record.image.model_dump()) if record.image else None
    detail.model = ModelRefOut(**record.model.model_dump()) if record.model else None
    detail.timings_ms = record.timings_ms
    if record.error is not None:
        detail.error = ErrorBody(code=record.error.code, message=record.error.message)
    return detail


def _lookup(buckets: Buckets, image_id: str) -> ImageDetail | None:
    state, record = image_status(buckets, image_id)
    if state == "not_found":
        return None
    upload = None if record is not None else catalog.find_upload(buckets.uploads, image_id)
    return _detail(image_id, state, record, upload)


def _not_found(image_id: str) -> ApiError:
    return ApiError(404, "not_found", f"No image with id {image_id}.")


async def _lookup_or_404(buckets: Buckets, image_id: str) -> ImageDetail:
    detail = await run_in_threadpool(_lookup, buckets, image_id)
    if detail is None:
        raise _not_found(image_id)
    return detail


@router.get(
    "/{image_id}",
    response_model=ImageDetail,
    summary="Status and result of one image",
    responses=_ERRORS,
)
async def get_image(
    image_id: ImageIdPath,
    buckets: BucketsDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_S,
            description="Long-poll: wait up to this many seconds for `done`/`failed` before "
            "answering with the current status.",
        ),
    ] = 0.0,
) -> ImageDetail:
    """`queued` → `processing` → `done` (with `detections`) or `failed` (with `error`).

    Boxes are `xyxy` in pixels of the original image; `image` gives its size.
    """
    detail = await _lookup_or_404(buckets, image_id)
    if detail.status in TERMINAL or wait <= 0:
        return detail
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        # Only the result object ends the wait: one cheap read per tick, not the full status.
        await anyio.sleep(LONG_POLL_TICK_S)
        record = await run_in_threadpool(read_result, buckets, image_id)
        if record is not None:
            return _detail(image_id, record.status, record, None)
    return await _lookup_or_404(buckets, image_id)


async def _existing_image(image_id: ImageIdPath, buckets: BucketsDep) -> ImageDetail:
    return await _lookup_or_404(buckets, image_id)


@router.get(
    "/{image_id}/events",
    response_class=EventSourceResponse,
    summary="Server-Sent Events: the image's status as it changes",
    responses=_ERRORS,
)
async def image_events(
    image_id: ImageIdPath,
    buckets: BucketsDep,
    first: Annotated[ImageDetail, Depends(_existing_image)],
) -> AsyncIterator[ServerSentEvent]:
    """One `status` event (data: the same JSON as GET /api/images/{id}) per change of
    status; the stream ends after `done` or `failed`."""
    detail: ImageDetail | None = first
    last: ImageStatus | None = None
    deadline = time.monotonic() + SSE_MAX_S
    while detail is not None and time.monotonic() < deadline:
        if detail.status != last:
            last = detail.status
            yield ServerSentEvent(
                event="status", id=detail.status, data=detail.model_dump(mode="json")
            )
        if detail.status in TERMINAL:
            return
        await anyio.sleep(SSE_TICK_S)
        detail = await run_in_threadpool(_lookup, buckets, image_id)


@router.get(
    "", response_model=ImageList, summary="Uploaded images, newest first", responses=_ERRORS
)
def list_images(
    buckets: BucketsDep,
    settings: SettingsDep,
    limit: Annotated[int | None, Query(ge=1, le=200, description="Page size.")] = None,
    before: Annotated[
        str | None,
        Query(
            pattern=layout.IMAGE_ID_PATTERN,
            description="Cursor: the `next` value of the previous page.",
        ),
    ] = None,
) -> ImageList:
    """A page of images, newest first; follow `next` for older ones."""
    uploads = catalog.list_uploads(buckets.uploads)
    items, cursor = catalog.page_of(uploads, before, limit or settings.page_size)
    return ImageList(images=[_summary(buckets, u) for u in items], next=cursor)


def _summary(buckets: Buckets, upload: Upload) -> ImageSummary:
    state, record = image_status(buckets, upload.image_id)
    return ImageSummary(
        id=upload.image_id,
        # A file dropped into the bucket by hand has no `<id>/` key, so the status rule cannot
        # find it while it waits; but it is listed, so it is queued.
        status="queued" if state == "not_found" else state,
        filename=upload.filename,
        created=catalog.iso_time(upload.created_ns),
        detection_count=len(record.detections) if record and record.status == "done" else None,
        url=_image_path(upload.image_id),
    )


# --- pictures ---------------------------------------------------------------------------------


def _original_bytes(buckets: Buckets, image_id: str) -> tuple[bytes, str] | None:
    """The uploaded bytes and the user's file name, or None when not stored."""
    record = read_result(buckets, image_id)
    upload = catalog.find_upload(buckets.uploads, image_id)
    key = upload.key if upload else (record.source.name if record else None)
    if key is None:
        return None
    try:
        data = buckets.uploads.get(key)
    except BlobNotFound:
        return None
    return data, _filename_of(record, upload) or "image"


def _content_disposition(filename: str, inline: bool) -> str:
    kind = "inline" if inline else "attachment"
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


IMMUTABLE = "private, max-age=31536000, immutable"


@router.get(
    "/{image_id}/original",
    response_class=Response,
    summary="The uploaded file",
    responses={**_ERRORS, 200: {"content": {"image/*": {}}, "description": "The image bytes."}},
)
def get_original(image_id: ImageIdPath, buckets: BucketsDep, settings: SettingsDep) -> Response:
    """The file exactly as uploaded, with the image type read from its bytes."""
    found = _original_bytes(buckets, image_id)
    if found is None:
        raise _not_found(image_id)
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
        **_ERRORS,
        200: {"content": {"image/jpeg": {}}, "description": "JPEG with boxes and labels."},
        409: {"model": ErrorResponse, "description": "Not done yet, or processing failed."},
    },
)
def get_annotated(
    image_id: ImageIdPath,
    buckets: BucketsDep,
    settings: SettingsDep,
    manifest: ManifestDep,
    min_score: Annotated[
        float, Query(ge=0, le=1, description="Draw only boxes with at least this score.")
    ] = 0.0,
) -> Response:
    """Boxes drawn server-side with Pillow, for clients that cannot draw them."""
    state, record = image_status(buckets, image_id)
    if state == "not_found":
        raise _not_found(image_id)
    if record is None:
        raise ApiError(409, "not_ready", f"The image is {state}; its boxes are not known yet.")
    if record.status != "done":
        reason = record.error.message if record.error else "processing failed"
        raise ApiError(409, "failed", f"The image has no boxes: {reason}")
    found = _original_bytes(buckets, image_id)
    if found is None:
        raise _not_found(image_id)
    image = decode_image(found[0], settings.image_limits)
    detections = [
        Detection(label=d.label, class_id=d.class_id, score=d.score, box_xyxy=d.box)
        for d in record.detections
        if d.score >= min_score
    ]
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

"""`/api/images`: upload images, follow their status, list, delete.

Pictures (the original, the annotated JPEG) are in frontend/routes/pictures.py; how answers
are built in frontend/views.py; reading and deleting one image in frontend/lookups.py.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field

from detectflow import layout
from detectflow.catalog import Catalog, upload_entry
from detectflow.imaging import ImageError, ImageInfo, sniff_image
from detectflow.storage import Buckets
from frontend.deps import BucketsDep, CatalogDep, ImageIdPath, RendererDep, SettingsDep, WatchDep
from frontend.errors import IMAGE_ERRORS, ApiError, image_not_found
from frontend.filters import GalleryQuery, parse_cursor
from frontend.lookups import delete_image, lookup
from frontend.schemas import (
    ErrorResponse,
    ImageDetail,
    ImageList,
    ImageRef,
    ImageStatus,
    UploadAccepted,
)
from frontend.views import image_path, summary
from frontend.waiting import StatusWatch, TooManyWaiting

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/images", tags=["images"])

TERMINAL: frozenset[str] = frozenset({"done", "failed"})
MAX_WAIT_S = 30.0
SSE_MAX_S = 600.0
BUSY_RETRY_AFTER_S = 5

# HTTP status for each way an upload can be refused (codes from detectflow.imaging).
_UPLOAD_ERROR_STATUS = {
    "too_large": 413,
    "too_many_pixels": 413,
    "not_an_image": 415,
    "unsupported_format": 415,
    "empty": 422,
    "too_small": 422,
}

def _wait_query(what: str) -> Any:
    return Query(ge=0, le=MAX_WAIT_S, description=what)


class UploadFailure(BaseModel):
    """A file that passed the checks but could not be stored; nothing of it was kept."""

    index: int = Field(description="Its place among the request's `file` fields, from 0.")
    filename: str
    code: str
    message: str


class UploadOutcome(UploadAccepted):
    """`images`: the stored files, in request order; `failed`: the files that could not be
    stored (a storage error, not the file's fault: send them again later)."""

    failed: list[UploadFailure] = Field(default_factory=list)


def _too_many_waiting(watch: StatusWatch) -> ApiError:
    return ApiError(
        503, "too_many_waiting_clients",
        f"{watch.max_clients} clients are already waiting for results on this server; "
        f"ask again in {BUSY_RETRY_AFTER_S} s, or without `wait`.",
        headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})


@contextmanager
def _waiting(watch: StatusWatch, image_ids: list[str]) -> Iterator[None]:
    try:
        with watch.waiting(image_ids):
            yield
    except TooManyWaiting:
        raise _too_many_waiting(watch) from None


# --- upload -----------------------------------------------------------------------------------


async def _read_capped(upload: UploadFile, max_bytes: int) -> bytes:
    """Read at most one byte over the cap: enough to say "too large" without buffering more."""
    return await upload.read(max_bytes + 1)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=UploadOutcome,
    summary="Upload one or more images for detection",
    responses={
        200: {"model": UploadOutcome, "description": "With `?wait`: every result is inline."},
        413: {"model": ErrorResponse, "description": "A file or the request is too large."},
        415: {"model": ErrorResponse, "description": "A file is not a supported image."},
        422: {"model": ErrorResponse, "description": "No file, an empty or tiny image, or "
              "`wait` out of range."},
        503: {"model": ErrorResponse, "description": "Storage failed: no file was stored "
              "(`details` lists each)."},
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
    catalog: CatalogDep,
    settings: SettingsDep,
    watch: WatchDep,
    response: Response,
    wait: Annotated[
        float,
        _wait_query("Wait up to this many seconds for the results and return them inline "
                    "(`result` of each image): 200 when all are done or failed, else 202 with "
                    "what is known. One call for scripts."),
    ] = 0.0,
) -> UploadOutcome:
    """Store the images in the uploads bucket, where the pipeline picks them up.

    Every file is checked first (type sniffed from its bytes, size, pixel count); if any file
    is refused, **nothing is stored** and the answer lists each refused file in
    `error.details`. Otherwise the answer is 202 with one entry per file, in order: poll
    its `url` (or add `?wait=10` to long-poll) until `status` is `done` or `failed`. A file
    that storage fails to take is listed in `failed` (the others are stored); when none
    could be stored, the answer is a 503 listing each. Long names are shortened (to 200
    bytes of UTF-8, the extension kept).
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
    refs: list[ImageRef] = []
    failed: list[UploadFailure] = []
    for index, (name, data, info) in enumerate(accepted):
        try:
            refs.append(await run_in_threadpool(_store, buckets, catalog, name, data, info))
        except Exception as err:  # storage's own failure: reported for this file, not a 500
            log.exception("upload not stored", extra={"upload_filename": name})
            reason = type(err).__name__
            failed.append(UploadFailure(
                index=index, filename=name, code="storage_failed",
                message=f"The file could not be stored ({reason}); nothing of it was kept. "
                "Send it again."))
    if not refs:
        raise ApiError(503, "storage_failed", f"No file could be stored; nothing was kept. "
                       f"{failed[0].message}", [f.model_dump() for f in failed])
    if wait > 0 and await _wait_for_results(watch, refs, wait):
        response.status_code = status.HTTP_200_OK
    return UploadOutcome(images=refs, failed=failed)


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


def _store(buckets: Buckets, catalog: Catalog, filename: str, data: bytes, info: ImageInfo
           ) -> ImageRef:
    image_id = layout.new_image_id()
    key = layout.upload_key(image_id, filename)
    # Catalogued before it is stored: the pipeline may finish before this call returns, and
    # its `done` must not be overwritten by a late `queued`.
    catalog.put(upload_entry(image_id, key, "queued", filename=filename))
    try:
        buckets.uploads.put(key, data, content_type=info.mime_type,
                            metadata={"filename": filename})
    except BaseException:
        _forget(buckets, catalog, image_id, key)
        raise
    log.info(
        "upload stored",
        extra={
            "image_id": image_id,
            "bytes": len(data),
            "format": info.format,
            "size": f"{info.width}x{info.height}",
        },
    )
    return ImageRef(id=image_id, status="queued", url=image_path(image_id), filename=filename)


def _forget(buckets: Buckets, catalog: Catalog, image_id: str, key: str) -> None:
    """Undo what a failed store may have left (the catalog entry, a partial object)."""
    for undo in (lambda: catalog.delete(image_id), lambda: buckets.uploads.delete(key)):
        try:
            undo()
        except Exception:
            log.warning("cleanup after a failed store failed", exc_info=True,
                        extra={"image_id": image_id})


async def _wait_for_results(watch: StatusWatch, refs: list[ImageRef], wait: float) -> bool:
    """Fill in each ref's `result` as it lands; True when all landed within `wait`. With
    too many clients waiting already, the answer comes at once (the files are stored)."""
    deadline = time.monotonic() + wait
    try:
        with watch.waiting([ref.id for ref in refs]):
            for ref in refs:
                found = await _terminal(watch, ref.id, ref.status, deadline)
                if found is None:
                    return False
                # A copy: `found` is the watch's, shared with every client of this image.
                ref.result = found.model_copy(update={"filename": ref.filename})
                ref.status = found.status
    except TooManyWaiting:
        return False
    return True


async def _terminal(watch: StatusWatch, image_id: str, seen: str, deadline: float
                    ) -> ImageDetail | None:
    """The image once `done` or `failed`; None when it is not by `deadline`, or was deleted.
    `seen`: its status as the caller knows it (not terminal)."""
    while True:
        if not await watch.change(image_id, seen, deadline - time.monotonic()):
            return None
        latest = watch.latest(image_id)
        if latest is None or latest.status in TERMINAL:
            return latest
        seen = latest.status


# --- status and results -----------------------------------------------------------------------


async def _lookup_or_404(buckets: Buckets, catalog: Catalog, image_id: str) -> ImageDetail:
    found = await run_in_threadpool(lookup, buckets, catalog, image_id)
    if found is None:
        raise image_not_found(image_id)
    return found


@router.get(
    "/{image_id}",
    response_model=ImageDetail,
    summary="Status and result of one image",
    responses=IMAGE_ERRORS,
)
async def get_image(
    image_id: ImageIdPath,
    buckets: BucketsDep,
    catalog: CatalogDep,
    watch: WatchDep,
    wait: Annotated[
        float,
        _wait_query("Long-poll: wait up to this many seconds for `done`/`failed` before "
                    "answering with the current status."),
    ] = 0.0,
) -> ImageDetail:
    """`queued` → `processing` → `done` (with `detections`) or `failed` (with `error`).

    Boxes are `xyxy` in pixels of the original image; `image` gives its size. With `wait`,
    the answer comes as soon as the result lands (503 when too many clients already wait).
    """
    current = await _lookup_or_404(buckets, catalog, image_id)
    if current.status in TERMINAL or wait <= 0:
        return current
    with _waiting(watch, [image_id]):
        found = await _terminal(watch, image_id, current.status, time.monotonic() + wait)
    return found or await _lookup_or_404(buckets, catalog, image_id)


async def _existing_image(image_id: ImageIdPath, buckets: BucketsDep, catalog: CatalogDep
                          ) -> ImageDetail:
    return await _lookup_or_404(buckets, catalog, image_id)


async def _stream_slot(image_id: ImageIdPath, watch: WatchDep) -> AsyncIterator[None]:
    """A place among the waiting clients for the whole stream (503 before it starts when
    there is none); given back when the stream ends or the client leaves."""
    with _waiting(watch, [image_id]):
        yield


@router.get(
    "/{image_id}/events",
    response_class=EventSourceResponse,
    summary="Server-Sent Events: the image's status as it changes",
    responses=IMAGE_ERRORS,
)
async def image_events(
    image_id: ImageIdPath,
    watch: WatchDep,
    first: Annotated[ImageDetail, Depends(_existing_image)],
    _slot: Annotated[None, Depends(_stream_slot)],
) -> AsyncIterator[ServerSentEvent]:
    """One `status` event (data: the same JSON as GET /api/images/{id}) per change of
    status; the stream ends after `done` or `failed` (or when the image is deleted).
    503 when too many clients already wait."""
    current: ImageDetail | None = first
    last: ImageStatus | None = None
    deadline = time.monotonic() + SSE_MAX_S
    while current is not None and time.monotonic() < deadline:
        if current.status != last:
            last = current.status
            yield ServerSentEvent(
                event="status", id=current.status, data=current.model_dump(mode="json")
            )
        if current.status in TERMINAL:
            return
        if await watch.change(image_id, last, deadline - time.monotonic()):
            current = watch.latest(image_id)  # None: deleted, the stream ends


@router.get(
    "", response_model=ImageList, summary="Uploaded images, newest first", responses=IMAGE_ERRORS
)
def list_images(
    catalog: CatalogDep,
    settings: SettingsDep,
    query: GalleryQuery,
    limit: Annotated[int | None, Query(ge=1, le=200, description="Page size.")] = None,
    before: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Cursor: the `next` value of the previous page (same filters).",
        ),
    ] = None,
) -> ImageList:
    """A page of images, newest first, from the catalog (it costs one page however many
    images there are); follow `next` for older ones. Filters combine: `status`, `label`
    (at least one detection of that class), `since`/`until` (upload time)."""
    page = catalog.page(
        dataclasses.replace(query, before=parse_cursor(before), limit=limit or settings.page_size)
    )
    return ImageList(
        images=[summary(record) for record in page.records],
        next=page.next.encode() if page.next else None,
    )


@router.delete(
    "/{image_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an image and everything derived from it",
    responses=IMAGE_ERRORS,
)
def remove_image(image_id: ImageIdPath, buckets: BucketsDep, catalog: CatalogDep,
                 renderer: RendererDep) -> Response:
    """Removes the upload, the prepared pixels, the result and the catalog record. Repeating
    it is harmless: the image is gone, so the answer is then 404."""
    renderer.cache.drop_image(image_id)
    if not delete_image(buckets, catalog, image_id):
        raise image_not_found(image_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

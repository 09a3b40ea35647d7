"""The gallery's filters, shared by the list and the export: query parameters in, a
`CatalogQuery` out, with a clear 422 for anything the catalog could not answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Depends, Query

from detectflow.catalog import CatalogQuery, Cursor
from frontend.deps import ManifestDep
from frontend.errors import ApiError

MAX_LABEL_CHARS = 100

StatusFilter = Literal["queued", "processing", "done", "failed"]


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:  # a bare time is UTC, like every time the API answers with
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


async def gallery_query(
    manifest: ManifestDep,
    status: Annotated[
        StatusFilter | None, Query(description="Only images with this status.")
    ] = None,
    label: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_LABEL_CHARS,
            description="Only images with at least one detection of this class.",
        ),
    ] = None,
    since: Annotated[
        datetime | None,
        Query(description="Uploaded at or after this time (ISO 8601; UTC if no offset)."),
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Uploaded before this time (ISO 8601).")
    ] = None,
) -> CatalogQuery:
    if label is not None and manifest is not None and label not in manifest.classes:
        raise ApiError(
            422,
            "unknown_label",
            f"The model has no class {label!r}; its classes are "
            f"{', '.join(manifest.classes)}.",
        )
    since_ms = _ms(since) if since is not None else None
    until_ms = _ms(until) if until is not None else None
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise ApiError(422, "invalid_range", "`since` must be earlier than `until`.")
    return CatalogQuery(status=status, label=label, since_ms=since_ms, until_ms=until_ms)


GalleryQuery = Annotated[CatalogQuery, Depends(gallery_query)]


def parse_cursor(before: str | None) -> Cursor | None:
    if before is None:
        return None
    try:
        return Cursor.decode(before)
    except ValueError:
        raise ApiError(
            422,
            "invalid_cursor",
            "`before` is not a cursor this server made: pass the `next` value of the previous "
            "page as it is.",
        ) from None

"""`/api/limits`: what an upload may be, so clients can check files before sending them."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from detectflow.imaging import ACCEPTED_FORMATS, MIN_SIDE
from frontend.deps import SettingsDep

router = APIRouter(prefix="/api", tags=["limits"])


class UploadLimits(BaseModel):
    max_upload_bytes: int = Field(description="Largest accepted file.")
    max_image_pixels: int = Field(description="Largest accepted width × height.")
    min_side: int = Field(description="Smallest accepted width or height, in pixels.")
    max_files_per_request: int
    max_request_bytes: int
    accepted_formats: list[str] = Field(description="Image types, read from the file's bytes.")
    api_key_required: bool = Field(description="Whether /api calls need X-API-Key.")


@router.get("/limits", response_model=UploadLimits, summary="Upload limits")
async def get_limits(settings: SettingsDep) -> UploadLimits:
    """Public (no API key needed): the page reads it to check files before uploading."""
    return UploadLimits(
        max_upload_bytes=settings.max_image_bytes,
        max_image_pixels=settings.max_image_pixels,
        min_side=MIN_SIDE,
        max_files_per_request=settings.max_files_per_request,
        max_request_bytes=settings.max_request_bytes,
        accepted_formats=sorted(ACCEPTED_FORMATS),
        api_key_required=settings.api_key is not None,
    )

"""Dependencies of the routes, as `Annotated[..., Depends()]` aliases."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import APIKeyHeader

from detectflow.catalog import Catalog
from detectflow.layout import IMAGE_ID_PATTERN
from detectflow.model.manifest import Manifest
from detectflow.storage import Buckets
from frontend.config import FrontendSettings
from frontend.errors import ApiError

API_KEY_HEADER = "X-API-Key"


@dataclass(frozen=True, slots=True)
class AppContext:
    """What `create_app` was given; stored on `app.state.context`."""

    buckets: Buckets
    catalog: Catalog
    model_manifest: Callable[[], Manifest | None]
    settings: FrontendSettings


async def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


async def get_settings(context: ContextDep) -> FrontendSettings:
    return context.settings


async def get_buckets(context: ContextDep) -> Buckets:
    return context.buckets


async def get_catalog(context: ContextDep) -> Catalog:
    return context.catalog


async def get_manifest(context: ContextDep) -> Manifest | None:
    return context.model_manifest()


SettingsDep = Annotated[FrontendSettings, Depends(get_settings)]
BucketsDep = Annotated[Buckets, Depends(get_buckets)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
ManifestDep = Annotated[Manifest | None, Depends(get_manifest)]

ImageIdPath = Annotated[
    str,
    Path(
        pattern=IMAGE_ID_PATTERN,
        description="Image id as returned by POST /api/images: 32 lowercase hex characters.",
        examples=["18a3f2c4b5d6e7f80123456789abcdef"],
    ),
]

_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="Needed only when the server sets DETECTFLOW_API_KEY.",
)


async def require_api_key(
    settings: SettingsDep, api_key: Annotated[str | None, Security(_api_key_header)]
) -> None:
    expected = settings.api_key
    if expected is None:
        return
    if api_key is None or not secrets.compare_digest(
        api_key.encode(), expected.get_secret_value().encode()
    ):
        message = (
            "This server needs an API key in the X-API-Key header."
            if api_key is None
            else "The API key is not valid."
        )
        raise ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": API_KEY_HEADER})

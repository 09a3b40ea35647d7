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
from frontend.annotated import AnnotatedRenderer
from frontend.config import FrontendSettings
from frontend.errors import ApiError
from frontend.waiting import StatusWatch

API_KEY_HEADER = "X-API-Key"


@dataclass(frozen=True, slots=True)
class AppContext:
    """What `create_app` was given, and what the app keeps between requests (the annotated
    renderer with its cache, the status watch of waiting clients); on `app.state.context`."""

    buckets: Buckets
    catalog: Catalog
    model_manifest: Callable[[], Manifest | None]
    settings: FrontendSettings
    renderer: AnnotatedRenderer
    watch: StatusWatch


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


async def get_renderer(context: ContextDep) -> AnnotatedRenderer:
    return context.renderer


async def get_watch(context: ContextDep) -> StatusWatch:
    return context.watch


SettingsDep = Annotated[FrontendSettings, Depends(get_settings)]
RendererDep = Annotated[AnnotatedRenderer, Depends(get_renderer)]
WatchDep = Annotated[StatusWatch, Depends(get_watch)]
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


def key_problem(expected: str | None, provided: str | None) -> str | None:
    """Why a request's key is refused (a sentence), or None when it may pass. Constant-time."""
    if expected is None:
        return None
    if provided is None:
        return "This server needs an API key in the X-API-Key header."
    if not secrets.compare_digest(provided.encode(), expected.encode()):
        return "The API key is not valid."
    return None


async def require_api_key(
    settings: SettingsDep, api_key: Annotated[str | None, Security(_api_key_header)]
) -> None:
    """Documents the key in OpenAPI (Swagger's Authorize button) and checks it again; the
    check that counts runs earlier, in frontend.middleware.ApiKeyGuard, before the body is
    read."""
    expected = settings.api_key.get_secret_value() if settings.api_key else None
    problem = key_problem(expected, api_key)
    if problem is not None:
        raise ApiError(401, "unauthorized", problem, headers={"WWW-Authenticate": API_KEY_HEADER})

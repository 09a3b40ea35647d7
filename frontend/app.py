"""`create_app`: the FastAPI app serving the REST API and the web page.

It only talks to storage (through the `Buckets` port), to the catalog (the index of images:
lists, filters, stats) and to a callable that says which model is served; the pipeline that
turns uploads into results runs elsewhere (`detectflow up` runs both in one process on the
embedded backend).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from detectflow import __version__
from detectflow.catalog import Catalog
from detectflow.model.manifest import Manifest
from detectflow.storage import Buckets
from frontend.annotated import AnnotatedRenderer
from frontend.config import FrontendSettings
from frontend.deps import API_KEY_HEADER, AppContext, require_api_key
from frontend.errors import install_error_handlers
from frontend.lookups import lookup
from frontend.middleware import (
    ApiKeyGuard,
    BodySizeLimit,
    HostGuard,
    RelativeRedirects,
    SecurityHeaders,
)
from frontend.routes import export, health, images, limits, models, pictures, stats
from frontend.waiting import StatusWatch

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
EVERY_INTERFACE = ("", "0.0.0.0", "::", "*")

DESCRIPTION = f"""
Upload images, follow them through the detection pipeline, get bounding boxes back.

**Flow**: `POST /api/images` (multipart, field `file`, repeatable) answers `202` with an id per
image → poll `GET /api/images/{{id}}` (add `?wait=10` to long-poll, or listen to
`/api/images/{{id}}/events`) until `status` is `done` or `failed`. One call for scripts:
`POST /api/images?wait=10` answers `200` with the results inline once they are all ready.

**Gallery**: `GET /api/images` pages newest first (filters `status`, `label`, `since`, `until`;
follow `next`), `GET /api/stats` counts, `GET /api/export?format=csv|coco` downloads the
results of a filter, `DELETE /api/images/{{id}}` removes an image and everything derived from
it.

**Boxes** are `xyxy` — `[x_min, y_min, x_max, y_max]` — in pixels of the original image (as
a viewer shows it, after EXIF orientation).

**Errors** always have the shape `{{"error": {{"code", "message", "details"}}}}`: `code` is
stable for programs, `message` is a sentence for people.

**API key**: when the server sets `DETECTFLOW_API_KEY`, send it in the `{API_KEY_HEADER}`
header on every `/api` call (`/api/limits` and `/healthz` stay public); a request without it
is answered 401 before its body is read. Without a key, the server answers only to its own
host names and refuses requests that change data from pages of other sites.

```
curl -F file=@a.jpg -F file=@b.jpg http://127.0.0.1:8000/api/images
curl 'http://127.0.0.1:8000/api/images/<id>?wait=10'
```
"""

TAGS = [
    {"name": "images", "description": "Upload images and read their detections."},
    {"name": "stats", "description": "Counts for the whole gallery."},
    {"name": "export", "description": "Results for a filter, as CSV or COCO JSON."},
    {"name": "models", "description": "The served model."},
    {"name": "limits", "description": "What an upload may be."},
    {"name": "health", "description": "Liveness."},
]


def create_app(
    buckets: Buckets,
    catalog: Catalog,
    model_manifest: Callable[[], Manifest | None],
    settings: FrontendSettings | None = None,
    *,
    served_on: str | None = None,
) -> FastAPI:
    """The app over `buckets` and `catalog`; `model_manifest()` is asked on each request which
    model is served (None while none is loaded), so a new model version shows up without a
    restart. `served_on` (the address the server binds, as `detectflow up` passes it) sets
    the host names trusted by default when no API key is set."""
    settings = settings or FrontendSettings()
    # Swagger UI (/docs) and ReDoc (/redoc) from files in the wheel, not a CDN: the docs of
    # a self-hosted app must work on a machine without internet.
    app = FastAPIOffline(
        title=f"{settings.title} API",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
    )
    app.state.context = AppContext(
        buckets=buckets, catalog=catalog, model_manifest=model_manifest, settings=settings,
        renderer=AnnotatedRenderer(
            max_side=settings.annotated_max_side, concurrency=settings.annotated_concurrency,
            wait_s=settings.annotated_wait_seconds, cache_bytes=settings.annotated_cache_bytes,
            limits=settings.image_limits, trim_memory=settings.annotated_trim_memory),
        watch=StatusWatch(lambda image_id: lookup(buckets, catalog, image_id),
                          tick_s=settings.status_check_seconds,
                          max_clients=settings.max_waiting_clients),
    )
    install_error_handlers(app)

    keyed = [Depends(require_api_key)]
    app.include_router(health.router)
    app.include_router(limits.router)
    app.include_router(export.router, dependencies=keyed)
    app.include_router(images.router, dependencies=keyed)
    app.include_router(pictures.router, dependencies=keyed)
    app.include_router(stats.router, dependencies=keyed)
    app.include_router(models.router, dependencies=keyed)
    _add_page(app)
    _add_middleware(app, settings, served_on)
    return app


def _add_middleware(app: FastAPI, settings: FrontendSettings, served_on: str | None) -> None:
    """Added innermost first. Outermost, CORS (answers preflights; its headers on every
    answer, early refusals included), then the security headers, then who may call (Host,
    Origin, key), then the body limit: all decided from the headers, before the body."""
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(ApiKeyGuard, api_key=api_key)
    app.add_middleware(HostGuard, trusted_hosts=trusted_hosts(settings, served_on),
                       check_origin=api_key is None, allowed_origins=settings.cors_origins)
    app.add_middleware(RelativeRedirects)
    app.add_middleware(SecurityHeaders)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=[API_KEY_HEADER, "Content-Type"],
        )


def trusted_hosts(settings: FrontendSettings, served_on: str | None) -> list[str] | None:
    """Host names to answer to (None: any). DETECTFLOW_TRUSTED_HOSTS when set; else, with no
    API key, the served address and localhost names; else (a key, or an address unknown
    to the app, or every interface, whose names it cannot know) any."""
    if settings.trusted_hosts:
        return settings.trusted_hosts
    if settings.api_key is not None or served_on is None:
        return None
    if served_on.strip("[]") in EVERY_INTERFACE:
        log.warning(
            "serving on every interface without an API key: any host name is answered; set "
            "DETECTFLOW_TRUSTED_HOSTS to the names clients use, or DETECTFLOW_API_KEY",
            extra={"host": served_on})
        return None
    return [served_on.strip("[]").lower(), *LOCAL_NAMES]


def _add_page(app: FastAPI) -> None:
    index = STATIC_DIR / "index.html"

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

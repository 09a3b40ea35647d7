"""`create_app`: the FastAPI app serving the REST API and the web page.

It only talks to storage (through the `Buckets` port), to the catalog (the index of images:
lists, filters, stats) and to a callable that says which model is served; the pipeline that
turns uploads into results runs elsewhere (`detectflow up` runs both in one process on the
embedded backend).
"""

from __future__ import annotations

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
from frontend.config import FrontendSettings
from frontend.deps import API_KEY_HEADER, AppContext, require_api_key
from frontend.errors import install_error_handlers
from frontend.middleware import BodySizeLimit, SecurityHeaders
from frontend.routes import export, health, images, limits, models, pictures, stats

STATIC_DIR = Path(__file__).parent / "static"

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
header on every `/api` call (`/api/limits` and `/healthz` stay public).

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
) -> FastAPI:
    """The app over `buckets` and `catalog`; `model_manifest()` is asked on each request which
    model is served (None while none is loaded), so a new model version shows up without a
    restart."""
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
        buckets=buckets, catalog=catalog, model_manifest=model_manifest, settings=settings
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

    # Added innermost first: CORS ends up outermost, so even early 413s carry its headers.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=[API_KEY_HEADER, "Content-Type"],
        )
    return app


def _add_page(app: FastAPI) -> None:
    index = STATIC_DIR / "index.html"

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

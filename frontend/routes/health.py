"""`/healthz`: liveness and readiness, for `detectflow up`, load balancers and tests."""

from __future__ import annotations

from fastapi import APIRouter

from frontend.deps import ManifestDep
from frontend.schemas import Health, ModelRefOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Is the app up?")
async def healthz(manifest: ManifestDep) -> Health:
    """Always 200 once the app serves requests; `model` says which model results come from
    (null while none is loaded). Never needs the API key."""
    model = ModelRefOut(name=manifest.name, version=manifest.version) if manifest else None
    return Health(status="ok", model=model)

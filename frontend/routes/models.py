"""`/api/models`: the model the pipeline serves, its classes and how well it does."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from detectflow.drawing import class_colour
from detectflow.model.manifest import Manifest
from frontend.deps import ManifestDep, SettingsDep
from frontend.schemas import ClassInfo, ModelInfo, ModelList, ModelMetrics

router = APIRouter(prefix="/api/models", tags=["models"])


@router.get("", response_model=ModelList, summary="The served model")
async def list_models(manifest: ManifestDep, settings: SettingsDep) -> ModelList:
    """The model behind the results: name, version, classes (with the colours the page and
    the annotated images use), the score threshold detections are served at and its
    evaluation metrics. Empty while no model is loaded."""
    if manifest is None:
        return ModelList(models=[])
    return ModelList(models=[model_info(manifest, settings.serving_threshold(manifest))])


def model_info(manifest: Manifest, score_threshold: float) -> ModelInfo:
    served = manifest.exports.get(manifest.export)
    return ModelInfo(
        name=manifest.name,
        version=manifest.version,
        created=manifest.created,
        export=manifest.export,
        input_size=(manifest.input.width, manifest.input.height),
        classes=[
            ClassInfo(id=i, name=name, color=_css_colour(i))
            for i, name in enumerate(manifest.classes)
        ],
        score_threshold=score_threshold,
        metrics=ModelMetrics(
            map50=served.map50
            if served and served.map50 is not None
            else _number(manifest.metrics, "map50"),
            map50_95=served.map50_95
            if served and served.map50_95 is not None
            else _number(manifest.metrics, "map50_95"),
            per_class_ap50=served.per_class_ap50
            if served and served.per_class_ap50
            else _per_class(manifest.metrics),
        ),
        size_bytes=served.size_bytes if served else None,
    )


def _number(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return float(value) if isinstance(value, int | float) else None


def _per_class(metrics: dict[str, Any]) -> dict[str, float]:
    value = metrics.get("per_class_ap50")
    if not isinstance(value, dict):
        return {}
    return {str(k): float(v) for k, v in value.items() if isinstance(v, int | float)}


def _css_colour(class_id: int) -> str:
    """The colour the server-side drawing uses for this class, so page and JPEG agree."""
    red, green, blue = class_colour(class_id)
    return f"#{red:02x}{green:02x}{blue:02x}"

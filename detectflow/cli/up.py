"""`detectflow up`: the web app and the detection pipeline, in one command."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # heavy imports stay inside run(): `detectflow --help` must be instant
    from detectflow.model.manifest import Manifest
    from detectflow.settings import Settings
    from detectflow.storage import BlobStore, Buckets

log = logging.getLogger(__name__)

HELP = "run the web app and the detection pipeline (embedded by default)"
DESCRIPTION = """\
Serve the web app and REST API, and run the pipeline that turns uploads into detections.

modes:
  (default)     everything in this process: local folders under --data-dir, an in-process
                event bus, the bundled model. No Java, no cloud. Images uploaded through the
                app, or copied into <data-dir>/uploads/, get results in <data-dir>/results/.
                (DETECTFLOW_STORAGE=s3 with DETECTFLOW_S3_ENDPOINT_URL keeps the blobs in
                S3-compatible storage instead.)
  --emulators   the local cloud: Google's Pub/Sub emulator, fake-gcs-server and the two
                functions under functions-framework, wired like Google Cloud (push
                subscriptions, retries, dead letters). Needs Java and the Pub/Sub emulator.
  --gcp         the app against real Google Cloud Storage and Pub/Sub (GOOGLE_CLOUD_PROJECT
                and DETECTFLOW_*_BUCKET from the environment); the functions run on Cloud Run
                (deploy them with infra/terraform).

The bundled model (--model) is published to the models bucket when that has none yet.
Settings come from DETECTFLOW_* environment variables (see detectflow/settings.py).

examples:
  detectflow up
  detectflow up --port 9000 --data-dir ~/detectflow-data
  detectflow up --emulators --instances 2
"""

DEFAULT_MODEL = Path("models/bccd")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on "
                        "(default: %(default)s; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--emulators", action="store_true",
                      help="run on local Pub/Sub and GCS emulators with the real functions")
    mode.add_argument("--gcp", action="store_true", help="use real Google Cloud")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="embedded storage root (default: $DETECTFLOW_DATA_DIR or "
                        "./var/detectflow)")
    parser.add_argument("--model", type=Path, default=None,
                        help="model bundle to publish when the models bucket has none "
                        f"(default: {DEFAULT_MODEL})")
    parser.add_argument("--instances", type=int, default=1, metavar="N",
                        help="pipeline workers per stage (embedded) or processes per "
                        "function (--emulators) (default: %(default)s)")
    parser.add_argument("--no-watch", action="store_true",
                        help="embedded: do not watch the uploads folder for dropped files")


def run(args: argparse.Namespace) -> int:
    from detectflow.settings import SettingsError

    if args.instances < 1:
        raise SystemExit("detectflow up: --instances must be at least 1")
    try:
        with _backend(args) as (settings, buckets, manifest):
            _serve(args, settings, buckets, manifest)
    except SettingsError as err:
        raise SystemExit(f"detectflow up: {err}") from None
    return 0


@contextlib.contextmanager
def _backend(args: argparse.Namespace) -> Iterator[
        tuple[Settings, Buckets, Callable[[], Manifest | None]]]:
    """Storage and pipeline for the chosen mode, torn down on exit (Ctrl-C included)."""
    from detectflow.model.registry import ModelRegistry
    from detectflow.settings import load_settings
    from detectflow.storage import make_buckets

    if args.emulators:
        from detectflow.launcher.emulators import EmulatorConfig, EmulatorStack, EmulatorUnavailable

        base = load_settings()
        bundle = _bundle_dir(args.model)
        config = EmulatorConfig(model_name=_bundle_name(bundle) or base.model_name,
                                instances=args.instances)
        try:
            stack = EmulatorStack(config).start()
        except EmulatorUnavailable as err:
            raise SystemExit(f"detectflow up --emulators: {err}") from None
        try:
            settings = stack.settings()
            buckets = make_buckets(settings)
            _ensure_model(buckets.models, settings, bundle)
            registry = ModelRegistry(buckets.models, settings.model_name,
                                     settings.model_cache_dir, settings.model_version,
                                     settings.model_check_seconds)
            log.info("emulators running", extra={"logs": str(stack.log_dir),
                                                 "storage": stack.storage_url,
                                                 "pubsub": stack.pubsub_host})
            yield settings, buckets, registry.manifest
        finally:
            stack.stop()
        return

    if args.gcp:
        settings = load_settings(storage="gcs", bus="pubsub")
        buckets = make_buckets(settings)
        name = _ensure_model(buckets.models, settings, _bundle_dir(args.model),
                         explicit=args.model is not None)
        registry = ModelRegistry(buckets.models, name, settings.model_cache_dir,
                                 settings.model_version, settings.model_check_seconds)
        yield settings, buckets, registry.manifest
        return

    from detectflow.launcher.embedded import EmbeddedPipeline

    # The in-process bus over local folders by default; DETECTFLOW_STORAGE=s3 (MinIO, ...)
    # works too (uploads through the app are announced; there is no folder to watch).
    overrides: dict[str, Any] = {"bus": "memory"}
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    settings = load_settings(**overrides)
    if settings.storage == "gcs":
        raise SystemExit("detectflow up: DETECTFLOW_STORAGE=gcs runs with --emulators or --gcp")
    buckets = make_buckets(settings, create=settings.storage != "local")
    name = _ensure_model(buckets.models, settings, _bundle_dir(args.model),
                         explicit=args.model is not None)
    settings = settings.model_copy(update={"model_name": name})
    pipeline = EmbeddedPipeline(buckets, settings, workers=args.instances,
                                watch=not args.no_watch).start()
    if settings.storage == "local":
        log.info("embedded pipeline running", extra={
            "data_dir": str(Path(settings.data_dir).resolve()),
            "drop_images_into": str(Path(settings.data_dir).resolve() / "uploads")})
    else:
        log.info("embedded pipeline running", extra={"storage": settings.storage,
                                                     "buckets": settings.bucket_names()})
    try:
        yield settings, pipeline.buckets, pipeline.registry.manifest
    finally:
        pipeline.stop()


def _bundle_dir(explicit: Path | None) -> Path | None:
    """--model, else models/bccd here or in the source checkout."""
    from detectflow.launcher.emulators import REPO_ROOT

    if explicit is not None:
        if not (explicit / "manifest.json").is_file():
            raise SystemExit(f"detectflow up: --model {explicit} is not a model bundle "
                             "(no manifest.json)")
        return explicit
    for candidate in (DEFAULT_MODEL, REPO_ROOT / DEFAULT_MODEL):
        if (candidate / "manifest.json").is_file():
            return candidate
    return None


def _bundle_name(bundle: Path | None) -> str | None:
    if bundle is None:
        return None
    from detectflow.model.manifest import Manifest

    return Manifest.read(bundle).name


def _ensure_model(
    models: BlobStore, settings: Settings, bundle: Path | None, explicit: bool = False
) -> str:
    """The model name to serve.

    An explicit `--model` is served: published if the bucket lacks its version, and made the
    LATEST of its name. The default bundled model is published only when the bucket has no
    version of the configured model, so a model published there later is never replaced.
    """
    from detectflow.model.manifest import Manifest
    from detectflow.model.registry import (
        latest_key,
        latest_version,
        list_versions,
        publish_bundle,
    )

    if explicit and bundle is not None:
        manifest = Manifest.read(bundle)
        if manifest.version not in list_versions(models, manifest.name):
            publish_bundle(models, bundle)
        else:
            models.put(latest_key(manifest.name), manifest.version.encode(), "text/plain")
        return manifest.name
    if latest_version(models, settings.model_name) is not None:
        return settings.model_name
    if bundle is None:
        log.warning("no model: uploads wait (and are retried) until one is published",
                    extra={"model_name": settings.model_name, "bucket": models.bucket})
        return settings.model_name
    manifest = Manifest.read(bundle)
    if latest_version(models, manifest.name) is None:
        publish_bundle(models, bundle)
    return manifest.name


def _serve(args: argparse.Namespace, settings: Settings, buckets: Buckets,
           manifest: Callable[[], Manifest | None]) -> None:
    import uvicorn

    app = _make_app(buckets, manifest)
    log.info("serving", extra={"url": f"http://{args.host}:{args.port}/",
                               "storage": settings.storage, "bus": settings.bus})
    uvicorn.run(app, host=args.host, port=args.port,
                log_level=os.environ.get("DETECTFLOW_UVICORN_LOG_LEVEL", "warning"))


def _make_app(buckets: Buckets, manifest: Callable[[], Manifest | None]) -> Any:
    try:
        from frontend.app import create_app
    except ImportError as err:
        if err.name is None or not err.name.startswith("frontend"):
            raise
        log.warning("frontend not installed: serving /healthz only")
        from fastapi import FastAPI

        app = FastAPI(title="detectflow")

        @app.get("/healthz")
        def healthz() -> dict[str, str]:
            return {"status": "ok"}

        return app
    return create_app(buckets, manifest)

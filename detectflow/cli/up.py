"""`detectflow up`: the web app and the detection pipeline, in one command."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # heavy imports stay inside run(): `detectflow --help` must be instant
    from detectflow.catalog import Catalog
    from detectflow.launcher.emulators import EmulatorStack
    from detectflow.model.manifest import Manifest
    from detectflow.pipeline.reconcile import Reconciler
    from detectflow.settings import Settings
    from detectflow.storage import BlobStore, Buckets

log = logging.getLogger(__name__)

HELP = "run the web app and the detection pipeline (embedded by default)"
DESCRIPTION = """\
Serve the web app and REST API, and run the pipeline that turns uploads into detections.

modes:
  (default)     everything in this process: local folders under --data-dir, an in-process
                event bus, a SQLite catalog, the bundled model. No Java, no cloud. Images
                uploaded through the app, or copied into <data-dir>/uploads/, get results in
                <data-dir>/results/. (DETECTFLOW_STORAGE=s3 with DETECTFLOW_S3_ENDPOINT_URL
                keeps the blobs in S3-compatible storage instead.)
  --emulators   the local cloud: Google's Pub/Sub and Firestore emulators, fake-gcs-server
                and the two functions under functions-framework, wired like Google Cloud
                (push subscriptions, retries, dead letters). Objects and the catalog are kept
                in <data-dir>/local-cloud/ across restarts. Prints the environment a shell
                needs to use the emulated bucket with Google's own clients. Needs Java and the
                emulators (Google Cloud CLI components).
  --gcp         the app against real Google Cloud Storage, Pub/Sub and Firestore
                (GOOGLE_CLOUD_PROJECT and DETECTFLOW_*_BUCKET from the environment); the
                functions run on Cloud Run (deploy them with infra/terraform).

Every accepted upload ends in a result: at start-up `up` re-drives uploads the last run left
without one (and files that arrived while it was down), then every minute it re-drives images
stuck in the catalog (see `detectflow reconcile`). SIGTERM stops it like Ctrl-C; the services
it starts stop with it.

local cloud ports (defaults; change with the flags):
  Pub/Sub 8085, fake-gcs-server 4443, Firestore 8086, functions 8090-8092

The bundled model (--model) is published to the models bucket when that has none yet.
Settings come from DETECTFLOW_* environment variables (see detectflow/settings.py).

examples:
  detectflow up
  detectflow up --port 9000 --data-dir ~/detectflow-data
  detectflow up --emulators --instances 2
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from detectflow.launcher.services import (
        DEFAULT_FIRESTORE_PORT,
        DEFAULT_FUNCTIONS_PORT,
        DEFAULT_PUBSUB_PORT,
        DEFAULT_STORAGE_PORT,
    )

    parser.add_argument("--host", default="127.0.0.1", help="address to serve on "
                        "(default: %(default)s; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--emulators", action="store_true",
                      help="run on local Pub/Sub, Firestore and GCS emulators with the real "
                      "functions")
    mode.add_argument("--gcp", action="store_true", help="use real Google Cloud")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where data is kept (default: $DETECTFLOW_DATA_DIR or "
                        "./var/detectflow; --emulators: its local-cloud/ folder)")
    parser.add_argument("--model", type=Path, default=None,
                        help="model bundle to publish when the models bucket has none "
                        "(default: the bundled models/bccd)")
    parser.add_argument("--instances", type=int, default=1, metavar="N",
                        help="pipeline workers per stage (embedded) or processes per "
                        "function (--emulators) (default: %(default)s)")
    parser.add_argument("--no-watch", action="store_true",
                        help="embedded: do not watch the uploads folder for dropped files")
    ports = parser.add_argument_group("local cloud ports (--emulators)")
    ports.add_argument("--pubsub-port", type=int, default=DEFAULT_PUBSUB_PORT,
                       help="Pub/Sub emulator (default: %(default)s)")
    ports.add_argument("--storage-port", type=int, default=DEFAULT_STORAGE_PORT,
                       help="fake-gcs-server (default: %(default)s)")
    ports.add_argument("--firestore-port", type=int, default=DEFAULT_FIRESTORE_PORT,
                       help="Firestore emulator (default: %(default)s)")
    ports.add_argument("--functions-port", type=int, default=DEFAULT_FUNCTIONS_PORT,
                       help="first of the three functions' ports (default: %(default)s)")


@dataclass
class Backend:
    """What the web app and the background reconcile need, whichever mode runs."""

    settings: Settings
    buckets: Buckets
    catalog: Catalog
    manifest: Callable[[], Manifest | None]
    reconciler: Reconciler | None  # None: something else reconciles (Cloud Scheduler)


class Stopped(KeyboardInterrupt):
    """SIGTERM, handled exactly like Ctrl-C."""


def run(args: argparse.Namespace) -> int:
    from detectflow.settings import SettingsError

    if args.instances < 1:
        raise SystemExit("detectflow up: --instances must be at least 1")
    _stop_on_sigterm()
    choose = _emulators_backend if args.emulators else (
        _gcp_backend if args.gcp else _embedded_backend)
    try:
        with choose(args) as backend, _reconciling(backend):
            _serve(args, backend)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM; the services were stopped on the way out
        log.info("stopped")
    except SettingsError as err:
        raise SystemExit(f"detectflow up: {err}") from None
    return 0


def _stop_on_sigterm() -> None:
    """Docker, Kubernetes and systemd stop a process with SIGTERM: drain and stop the services
    as on Ctrl-C. (uvicorn handles the signal while it serves, then raises it again once it
    has drained; this handler turns that into the same unwinding as Ctrl-C.)"""
    def handle(signum: int, frame: FrameType | None) -> None:
        raise Stopped

    signal.signal(signal.SIGTERM, handle)


# --- the three backends -----------------------------------------------------------------------


@contextlib.contextmanager
def _embedded_backend(args: argparse.Namespace) -> Iterator[Backend]:
    """Local folders (or S3-compatible storage), the in-process bus, a SQLite catalog."""
    from detectflow.catalog import make_catalog
    from detectflow.launcher.embedded import EmbeddedPipeline
    from detectflow.settings import load_settings
    from detectflow.storage import make_buckets

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
    catalog = make_catalog(settings)
    # The pipeline reconciles itself (start-up scan, stuck records) and watches the folder.
    pipeline = EmbeddedPipeline(buckets, settings, workers=args.instances,
                                watch=not args.no_watch, reconcile=True,
                                catalog=catalog).start()
    data_dir = Path(settings.data_dir).resolve()
    if settings.storage == "local":
        log.info("embedded pipeline running", extra={
            "data_dir": str(data_dir), "drop_images_into": str(data_dir / "uploads")})
    else:
        log.info("embedded pipeline running", extra={"storage": settings.storage,
                                                     "buckets": settings.bucket_names()})
    try:
        yield Backend(settings, pipeline.buckets, catalog, pipeline.registry.manifest,
                      reconciler=None)
    finally:
        pipeline.stop()
        catalog.close()


@contextlib.contextmanager
def _emulators_backend(args: argparse.Namespace) -> Iterator[Backend]:
    """The local cloud on fixed ports, its data under <data-dir>/local-cloud/."""
    from detectflow.bus import make_bus
    from detectflow.catalog import make_catalog
    from detectflow.launcher.emulators import EmulatorConfig, EmulatorStack, EmulatorUnavailable
    from detectflow.launcher.services import ServicePorts
    from detectflow.model.registry import ModelRegistry
    from detectflow.settings import load_settings
    from detectflow.storage import make_buckets

    base = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    bundle = _bundle_dir(args.model)
    config = EmulatorConfig(
        model_name=_bundle_name(bundle) or base.model_name, instances=args.instances,
        ports=ServicePorts(args.pubsub_port, args.storage_port, args.firestore_port,
                           args.functions_port),
        data_dir=Path(base.data_dir) / "local-cloud",
        # Kept (also after a crash, when nothing could clean up a temporary folder): the
        # services' logs, appended run after run, and the functions' model cache.
        log_dir=Path(base.data_dir) / "local-cloud" / "logs")
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
        catalog = make_catalog(settings)
        log.info("emulators running", extra={"logs": str(stack.log_dir),
                                             "storage": stack.storage_url,
                                             "pubsub": stack.pubsub_host,
                                             "firestore": stack.firestore_host,
                                             "data_dir": str(config.data_dir)})
        _print_exports(stack)
        yield Backend(settings, buckets, catalog, registry.manifest,
                      _pubsub_reconciler(settings, buckets, catalog, make_bus(settings)))
    finally:
        stack.stop()


@contextlib.contextmanager
def _gcp_backend(args: argparse.Namespace) -> Iterator[Backend]:
    """Real Cloud Storage, Pub/Sub and Firestore; Cloud Scheduler runs reconcile there."""
    from detectflow.catalog import make_catalog
    from detectflow.model.registry import ModelRegistry
    from detectflow.settings import load_settings
    from detectflow.storage import make_buckets

    settings = load_settings(storage="gcs", bus="pubsub")
    buckets = make_buckets(settings)
    name = _ensure_model(buckets.models, settings, _bundle_dir(args.model),
                         explicit=args.model is not None)
    registry = ModelRegistry(buckets.models, name, settings.model_cache_dir,
                             settings.model_version, settings.model_check_seconds)
    yield Backend(settings, buckets, make_catalog(settings), registry.manifest,
                  reconciler=None)


def _pubsub_reconciler(settings: Settings, buckets: Buckets, catalog: Catalog,
                       bus: Any) -> Reconciler:
    from detectflow.pipeline.events import StorageObject, storage_notification
    from detectflow.pipeline.reconcile import Reconciler

    def redrive(obj: StorageObject) -> None:
        bus.publish(settings.uploads_topic, *storage_notification(obj))

    return Reconciler(buckets, catalog, redrive)


def _print_exports(stack: EmulatorStack) -> None:
    """What a user's shell needs to reach the local cloud with Google's own clients."""
    lines = [f"export {name}={value}" for name, value in stack.user_env().items()]
    sys.stdout.write("# The local cloud is up. To use it from another shell:\n"
                     + "\n".join(lines) + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def _reconciling(backend: Backend) -> Iterator[None]:
    """Start-up and periodic reconcile for the modes whose pipeline does not do it itself."""
    if backend.reconciler is None:
        yield
        return
    from detectflow.launcher.reconciling import ReconcileLoop

    settings = backend.settings
    loop = ReconcileLoop(backend.reconciler, settings.reconcile_interval_seconds,
                         settings.reconcile_older_than_seconds).start()
    try:
        yield
    finally:
        loop.stop()


# --- the model --------------------------------------------------------------------------------


def _bundle_dir(explicit: Path | None) -> Path | None:
    """--model, else the bundled models/bccd (found here or in a source checkout)."""
    from detectflow.launcher.programs import find_bundled_model

    if explicit is not None:
        if not (explicit / "manifest.json").is_file():
            raise SystemExit(f"detectflow up: --model {explicit} is not a model bundle "
                             "(no manifest.json)")
        return explicit
    return find_bundled_model()


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
        log.warning("no model: uploads wait (and are retried) until one is published "
                    "(pass --model, the bundled model is not in this installation)",
                    extra={"model_name": settings.model_name, "bucket": models.bucket})
        return settings.model_name
    manifest = Manifest.read(bundle)
    if latest_version(models, manifest.name) is None:
        publish_bundle(models, bundle)
    return manifest.name


# --- serving ----------------------------------------------------------------------------------


def _serve(args: argparse.Namespace, backend: Backend) -> None:
    from frontend.app import create_app
    from frontend.config import FrontendSettings
    from frontend.server import serve

    settings = FrontendSettings()
    # The bound address sets the host names the app answers to without an API key.
    app = create_app(backend.buckets, backend.catalog, backend.manifest, settings,
                     served_on=args.host)
    log.info("serving", extra={"url": f"http://{args.host}:{args.port}/",
                               "storage": backend.settings.storage,
                               "bus": backend.settings.bus,
                               "catalog": backend.settings.catalog_backend})
    # uvicorn with the settings' timeouts for slow and idle clients and a connection cap.
    serve(app, args.host, args.port, settings,
          log_level=os.environ.get("DETECTFLOW_UVICORN_LOG_LEVEL", "warning"))

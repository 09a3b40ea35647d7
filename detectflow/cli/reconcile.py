"""`detectflow reconcile`: every upload ends in a result, even one whose event never came."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detectflow.pipeline.reconcile import ReconcileReport

HELP = "re-drive uploads that have no result (backfill, lost events, crashes)"
DESCRIPTION = """\
Find uploads without a result and send them through the normal pipeline again: their
OBJECT_FINALIZE event is published to the uploads topic (on the embedded backend, this
command runs them itself). Handlers are idempotent, so driving an image twice is harmless.

passes:
  (default)   full: list the uploads and results buckets and compare (start-up, backfill of
              a bucket filled before its notification existed, on demand). Also repairs the
              catalog: adds missing records, fixes records still pending although a result
              exists, removes records of images that are gone.
  --stuck     only the catalog's records still queued/processing after --older-than: no
              bucket listing, cheap enough to run every few minutes (detectflow up does it
              every minute; on Google Cloud, Cloud Scheduler runs this).

Uses the same settings as `detectflow up` (DETECTFLOW_STORAGE, DETECTFLOW_BUS, ...; in a
shell prepared with the exports `detectflow up --emulators` prints, it works on the local
cloud).

examples:
  detectflow reconcile --dry-run
  detectflow reconcile --data-dir ~/detectflow-data --older-than 0
  detectflow reconcile --stuck --older-than 900 --json
"""

DEFAULT_OLDER_THAN = 300.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="embedded storage root (default: $DETECTFLOW_DATA_DIR or "
                        "./var/detectflow)")
    parser.add_argument("--older-than", type=float, default=DEFAULT_OLDER_THAN,
                        metavar="SECONDS", help="leave uploads younger than this alone: they "
                        "may still be on their way (default: %(default)s)")
    parser.add_argument("--stuck", action="store_true",
                        help="only re-drive the catalog's stuck records (no bucket listing)")
    parser.add_argument("--dry-run", action="store_true",
                        help="report what would be done, change nothing")
    parser.add_argument("--json", action="store_true",
                        help="print the report as JSON on stdout, with the image ids")
    parser.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                        help="embedded: how long to wait for the re-driven images to finish "
                        "(default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from detectflow.settings import SettingsError, load_settings

    if args.older_than < 0:
        raise SystemExit("detectflow reconcile: --older-than must be 0 or more")
    try:
        settings = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    except SettingsError as err:
        raise SystemExit(f"detectflow reconcile: {err}") from None
    if settings.bus == "memory":
        report, finished = _embedded(settings, args)
    else:
        report, finished = _published(settings, args), None
    _print(report, args.json, finished)
    return 0


def _passes(reconciler: Any, args: argparse.Namespace) -> ReconcileReport:
    if args.stuck:
        result: ReconcileReport = reconciler.stuck(args.older_than, dry_run=args.dry_run)
    else:
        result = reconciler.full(args.older_than, dry_run=args.dry_run)
    return result


def _embedded(settings: Any, args: argparse.Namespace) -> tuple[ReconcileReport, bool | None]:
    """The in-process bus has no listener outside this process: run the pipeline here."""
    from detectflow.catalog import make_catalog
    from detectflow.launcher.embedded import EmbeddedPipeline
    from detectflow.storage import make_buckets

    catalog = make_catalog(settings)
    buckets = make_buckets(settings, create=settings.storage != "local")
    with EmbeddedPipeline(buckets, settings, watch=False, catalog=catalog) as pipeline:
        report = _passes(pipeline.reconciler, args)
        finished = pipeline.wait_idle(args.wait) if report.redriven and not args.dry_run else None
    catalog.close()
    return report, finished


def _published(settings: Any, args: argparse.Namespace) -> ReconcileReport:
    """Pub/Sub: publish the events; the deployed (or emulated) functions do the rest."""
    from detectflow.bus import make_bus
    from detectflow.catalog import make_catalog
    from detectflow.pipeline.events import StorageObject, storage_notification
    from detectflow.pipeline.reconcile import Reconciler
    from detectflow.storage import make_buckets

    bus = make_bus(settings)

    def redrive(obj: StorageObject) -> None:
        bus.publish(settings.uploads_topic, *storage_notification(obj))

    catalog = make_catalog(settings)
    try:
        return _passes(Reconciler(make_buckets(settings), catalog, redrive), args)
    finally:
        catalog.close()


def _print(report: ReconcileReport, as_json: bool, finished: bool | None) -> None:
    if as_json:
        sys.stdout.write(json.dumps({**report.to_dict(), "finished": finished}, indent=2)
                         + "\n")
        return
    verb = "would re-drive" if report.dry_run else "re-drove"
    lines = [f"{report.mode} pass: checked {report.checked} "
             f"{'uploads' if report.mode == 'full' else 'stuck records'} in "
             f"{report.seconds:.2f} s",
             f"  {verb} {len(report.redriven)} without a result "
             f"(older than {report.older_than_seconds:g} s)",
             f"  catalog: {len(report.catalogued)} added, {len(report.repaired)} repaired, "
             f"{len(report.removed)} removed"]
    if finished is not None:
        lines.append("  all re-driven images finished" if finished else
                     "  some re-driven images were still running when --wait ran out")
    sys.stdout.write("\n".join(lines) + "\n")

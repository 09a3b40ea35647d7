"""`detectflow catalog`: the index of images behind the gallery, stats and reconcile."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "rebuild the catalog (the image index) from the buckets"
DESCRIPTION = """\
The catalog holds one small record per image (status, model, detections per class) so the
gallery, its filters and stats, and reconcile cost a page, not a bucket listing. The buckets
stay the source of truth: `rebuild` makes the catalog hold exactly what they describe (adds
missing records, fixes wrong ones, removes records of images that are gone). Safe while
`detectflow up` runs. It reads every result record: minutes for a million images.

Uses the same settings as `detectflow up`: a SQLite file under the data folder
(DETECTFLOW_CATALOG_PATH to choose another), or Firestore with storage=gcs.

examples:
  detectflow catalog rebuild
  detectflow catalog rebuild --data-dir ~/detectflow-data --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    rebuild = actions.add_parser("rebuild", help="recreate the catalog from the buckets",
                                 description="Recreate the catalog from the buckets.")
    rebuild.add_argument("--data-dir", type=Path, default=None,
                         help="embedded storage root (default: $DETECTFLOW_DATA_DIR or "
                         "./var/detectflow)")
    rebuild.add_argument("--json", action="store_true", help="print the counts as JSON")


def run(args: argparse.Namespace) -> int:
    from detectflow.catalog import make_catalog
    from detectflow.catalog.rebuild import rebuild
    from detectflow.settings import SettingsError, load_settings
    from detectflow.storage import make_buckets

    try:
        settings = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    except SettingsError as err:
        raise SystemExit(f"detectflow catalog: {err}") from None
    if settings.catalog_backend == "none":
        raise SystemExit("detectflow catalog: DETECTFLOW_CATALOG=none: there is no catalog")
    catalog = make_catalog(settings)
    try:
        report = rebuild(make_buckets(settings), catalog)
    finally:
        catalog.close()
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(
            f"catalog rebuilt in {report.seconds:.2f} s: {report.images} images; "
            f"{report.added} added, {report.updated} updated, {report.removed} removed, "
            f"{report.unchanged} unchanged\n")
    return 0

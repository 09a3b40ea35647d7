"""`detectflow export`: a training run -> TFLite exports + manifest, as a model bundle."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

HELP = "export a trained run to float32/float16/int8/QAT-int8 TFLite with a manifest"
DESCRIPTION = """\
Convert a training run (the folder `detectflow train` wrote) into a model bundle:
  model_float32.tflite  model_float16.tflite  model_int8_ptq.tflite  model_int8_qat.tflite
  model.tflite (the integer export with the best validation score)  manifest.json  *.png
Each export is evaluated with the LiteRT runtime on the validation split (used to choose) and
the test split (reported). The int8 exports take uint8 pixels and give float outputs.

QAT runs tensorflow-model-optimization on a tf_keras build of the same architecture in a
separate process (tfmot cannot quantize Keras 3 models: tensorflow/model-optimization#1119).

examples:
  detectflow export --run runs/bccd
  detectflow export --run runs/bccd --formats int8 --out models/bccd --name bccd
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, type=Path, help="training run folder")
    parser.add_argument("--out", type=Path, help="bundle folder (default: RUN/bundle)")
    parser.add_argument("--formats", default="float32,float16,int8,qat",
                        help="comma-separated subset of float32,float16,int8,qat "
                        "(default: %(default)s)")
    parser.add_argument("--name", help="model name (default: the run's)")
    parser.add_argument("--version", help="model version (default: UTC timestamp)")
    parser.add_argument("--qat-epochs", type=int, default=8, help="default: %(default)s")
    parser.add_argument("--publish", metavar="MODELS",
                        help="publish the bundle to this models bucket (gs://BUCKET) or folder")
    parser.add_argument("--slim", action="store_true",
                        help="keep only model.tflite in the bundle (the manifest still records "
                        "every export's size and metrics); for shipping")


def run(args: argparse.Namespace) -> int:
    from detectflow.storage.uri import publish_to
    from trainer.export import EXPORTS, export_run

    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    unknown = set(formats) - set(EXPORTS)
    if unknown:
        raise SystemExit(f"detectflow export: unknown formats {sorted(unknown)}; use {EXPORTS}")
    if not (args.run / "best.weights.h5").is_file():
        raise SystemExit(f"detectflow export: {args.run} has no best.weights.h5; train first")
    with contextlib.redirect_stdout(sys.stderr):  # stdout: the JSON summary alone
        bundle = export_run(args.run, bundle_dir=args.out, formats=formats, name=args.name,
                            version=args.version, qat_epochs=args.qat_epochs, slim=args.slim)
    manifest = json.loads((bundle / "manifest.json").read_text())
    published = publish_to(bundle, args.publish) if args.publish else None
    table = {fmt: {k: v for k, v in e.items() if k in ("file", "size_bytes", "map50",
                                                       "map50_95", "latency_ms")}
             for fmt, e in manifest["exports"].items()}
    summary = {"bundle": str(bundle), "exports": table, "published": published}
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0

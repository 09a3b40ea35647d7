"""Benchmark: a model bundle's exports — size, accuracy, latency, cold start.

    .venv/bin/python benchmarks/model.py --bundle models/bccd --data ../shared/data/bccd

For every export in the bundle, on the test split, with the LiteRT runtime on one thread:
size, mAP@0.5 and mAP@[.5:.95] (per class too), interpreter latency (decode and pre/post
processing excluded; reported separately), and the cold start of a fresh process (import +
load + first detection) next to `import tensorflow` alone. Prints a table and writes it to
docs/benchmarks.md between the `model` markers.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from report import machine_line, write_section  # this script's folder is on sys.path

from detectflow.datasets import load_dataset
from detectflow.evaluation.bundle import evaluate_bundle
from detectflow.evaluation.metrics import EVAL_SCORE_THRESHOLD
from detectflow.imaging import decode_image, letterbox
from detectflow.model import Detector, Manifest

COLD_START = """
import time; t0 = time.perf_counter()
from detectflow.model import Detector
detector = Detector.load({bundle!r})
detector.detect({image!r})
print(time.perf_counter() - t0)
"""
IMPORT_TF = (
    "import time; t0 = time.perf_counter(); import tensorflow; print(time.perf_counter() - t0)"
)
PEER = (
    "Peer anchor (measured on this machine kind by a peer, `shared/notes/tensorflow.md`): "
    "Ultralytics YOLOv8n from scratch, 18 epochs / 24 CPU-minutes, 416 px: mAP@0.5 0.629, "
    "mAP@.5:.95 0.395 (Platelets AP50 0.13), 3.0 M params, 6.2 MB, ~53 ms/img on one thread; "
    "its int8 TFLite export 3.3 MB, mAP@0.5 0.641, ~44 ms/img."
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("models/bccd"))
    parser.add_argument("--data", default="../shared/data/bccd")
    parser.add_argument("--split", default="test")
    parser.add_argument("--runs", type=int, default=50, help="latency repetitions")
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args()


def median_ms(fn: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def subprocess_seconds(code: str, runs: int) -> float:
    values = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()[-1])
        for _ in range(runs)
    ]
    return statistics.median(values)


def export_rows(bundle: Path, manifest: Manifest, items: list, runs: int) -> list[str]:
    sample = items[0].image_path.read_bytes()
    pixels, _ = letterbox(decode_image(sample), (manifest.input.width, manifest.input.height))
    rows = []
    for name, export in manifest.exports.items():
        if name == "default":
            continue
        detector = Detector.load(bundle, model_file=export.file)
        report = evaluate_bundle(detector, items, score_threshold=EVAL_SCORE_THRESHOLD)
        per_class = report.to_dict()["per_class"]
        detector.infer(pixels)
        latency = median_ms(lambda d=detector: d.infer(pixels), runs)
        default = " (bundle default)" if export.file == manifest.exports["default"].file or (
            name == manifest.export) else ""
        classes = " / ".join(f"{c} {v['ap50']:.3f}" for c, v in per_class.items())
        rows.append(
            f"| {name}{default} | {export.size_bytes / 1024:.0f} | {report.map50:.3f} | "
            f"{report.map50_95:.3f} | {classes} | {latency:.2f} |"
        )
    return rows


def main() -> None:
    args = parse_args()
    manifest = Manifest.read(args.bundle)
    items = load_dataset(args.data, classes=manifest.classes).split(args.split)
    rows = [
        "| export | size KiB | mAP@0.5 | mAP@.5:.95 | AP@0.5 per class | latency ms (median) |",
        "|---|---:|---:|---:|---|---:|",
        *export_rows(args.bundle, manifest, items, args.runs),
    ]
    sample = items[0].image_path.read_bytes()
    size = (manifest.input.width, manifest.input.height)
    decode = median_ms(lambda: decode_image(sample), args.runs)
    decode_draft = median_ms(lambda: decode_image(sample, draft_size=size), args.runs)
    detector = Detector.load(args.bundle)
    detect = median_ms(lambda: detector.detect(sample), args.runs)
    cold = subprocess_seconds(COLD_START.format(bundle=str(args.bundle),
                                                image=str(items[0].image_path)), args.cold_runs)
    cold_tf = subprocess_seconds(IMPORT_TF, args.cold_runs)
    training = manifest.metrics.get("training_run", {})
    body = "\n".join([
        f"## Model: {manifest.name} {manifest.version}, every export (`benchmarks/model.py`)",
        "",
        f"`.venv/bin/python benchmarks/model.py --bundle {args.bundle} --data {args.data}`. "
        "`models/bccd` ships the default export only; the full set comes from the commands in "
        "`models/README.md`.",
        "",
        f"{len(items)} images of the `{args.split}` split of `{Path(args.data).name}`, "
        f"input {size[0]}x{size[1]}, LiteRT, 1 thread. {machine_line()}",
        f"Training: {training.get('minutes', '?')} min wall time, "
        f"{training.get('epochs', '?')} epochs, checkpoint chosen on validation "
        f"(epoch {training.get('best_epoch', '?')}); command in `models/README.md`.",
        "",
        *rows,
        "",
        "| per image, median | ms |",
        "|---|---:|",
        f"| JPEG decode + EXIF + RGB (full size) | {decode:.2f} |",
        f"| JPEG decode in draft mode (>= input size) | {decode_draft:.2f} |",
        f"| `Detector.detect(jpeg bytes)`: decode + letterbox + int8 inference + decode boxes | "
        f"{detect:.2f} |",
        "",
        "| cold start, fresh process (median of "
        f"{args.cold_runs}) | s |",
        "|---|---:|",
        f"| import detectflow.model + load bundle + first detection (LiteRT) | {cold:.2f} |",
        f"| `import tensorflow` alone, for comparison | {cold_tf:.2f} |",
        "",
        PEER,
    ])
    print(body)
    if not args.no_write:
        write_section("model", body)


if __name__ == "__main__":
    main()

"""`detectflow predict`: detect objects in image files with a model bundle."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detectflow.datasets.writers import LabelWriter
    from detectflow.detection import Detection
    from detectflow.model import Detector

log = logging.getLogger(__name__)

HELP = "detect objects in images with a model bundle (LiteRT, no TensorFlow)"
DESCRIPTION = """\
Detect objects in image files, or in every image of a folder (not recursive). Images are
checked like uploads (type sniffed from the bytes, size limits, EXIF orientation applied), and
boxes are `xyxy` pixels of the upright image. A file that cannot be read is reported and the
others still run.

output:
  one line per image on stdout (errors on stderr), or with --json only a JSON list on stdout:
  [{"image", "width", "height", "detections": [{"label", "class_id", "score",
    "box": [x_min, y_min, x_max, y_max]}], "timings": {...ms}}, ...]
  and {"image", "error": {"code", "message"}} for a file that failed.
  --save-dir writes a copy of each image with its boxes drawn.
  --save-labels DIR writes the images and their boxes as a dataset in --format voc, coco or
  yolo (COCO: annotations/instances_default.json + images/; VOC: Annotations/ + JPEGImages/;
  YOLO: data.yaml + images/train/ + labels/train/): import it into CVAT or Label Studio,
  correct the boxes, and train on the result (`detectflow train --data DIR`).

The default score threshold is the bundle's serving threshold (manifest
decoding.score_threshold): for bundles from `detectflow export`, the F1-optimal threshold on
their validation split.

exit status: 0 all images ran, 1 some failed, 2 the model could not be loaded.

examples:
  detectflow predict --model models/bccd blood.jpg
  detectflow predict --model models/bccd photos/ --save-dir out/ --score-threshold 0.4
  detectflow predict --model models/bccd *.jpg --json | jq '.[].detections | length'
  detectflow predict --model models/bccd photos/ --save-labels prelabels/ --format coco
"""

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE_OR_DIR",
                        help="image files and/or folders of images")
    parser.add_argument("--model", required=True, type=Path, metavar="BUNDLE_DIR",
                        help="model bundle folder (with manifest.json)")
    parser.add_argument("--model-file", metavar="FILE",
                        help="another export in the bundle (default: the manifest's)")
    from detectflow.datasets.writers import LABEL_FORMATS

    parser.add_argument("--score-threshold", type=float,
                        help="minimum score (default: the bundle's serving threshold, "
                        "calibrated on its validation split)")
    parser.add_argument("--save-dir", type=Path, metavar="DIR",
                        help="write annotated copies of the images here")
    parser.add_argument("--save-labels", type=Path, metavar="DIR",
                        help="write the images and their detections as a labelled dataset "
                        "here (pre-annotation for CVAT / Label Studio)")
    parser.add_argument("--format", choices=LABEL_FORMATS, default="coco",
                        help="label format of --save-labels (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="LiteRT interpreter threads (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print only JSON on stdout")


@dataclass
class ImageResult:
    image: Path
    width: int = 0
    height: int = 0
    detections: list[Detection] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    error_code: str | None = None
    error: str | None = None
    saved: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"image": str(self.image), "error": {"code": self.error_code,
                                                        "message": self.error}}
        out: dict[str, Any] = {
            "image": str(self.image),
            "width": self.width,
            "height": self.height,
            "detections": [d.to_dict() for d in self.detections],
            "timings": self.timings,
        }
        if self.saved is not None:
            out["saved"] = str(self.saved)
        return out


def run(args: argparse.Namespace) -> int:
    from detectflow.model import Detector

    try:
        detector = Detector.load(args.model, model_file=args.model_file,
                                 num_threads=args.threads)
    except (OSError, ValueError, RuntimeError) as err:
        sys.stderr.write(f"detectflow predict: error: cannot load the model bundle "
                         f"{args.model}: {err}\n")
        return 2
    writer = AnnotatedWriter(args.save_dir, detector.classes) if args.save_dir else None
    labels = _label_writer(args, detector.classes)
    results = []
    for path, problem in _expand(args.inputs):
        result = (ImageResult(path, error_code="not_found", error=problem) if problem
                  else predict_file(detector, path, args.score_threshold, writer))
        if labels is not None and result.error is None:
            _add_labels(labels, result)
        results.append(result)
        if not args.json:
            _print_human(result)
    if labels is not None:
        out = labels.close()
        log.info("labels written", extra={"folder": str(out), "format": args.format})
    if args.json:
        sys.stdout.write(json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    return 1 if any(r.error for r in results) else 0


def _label_writer(args: argparse.Namespace, classes: list[str]) -> LabelWriter | None:
    if args.save_labels is None:
        return None
    from detectflow.datasets.writers import LabelWriter

    return LabelWriter(args.save_labels, args.format, classes)


def _add_labels(labels: LabelWriter, result: ImageResult) -> None:
    """The detections of one image, as labels (boxes `xyxy` pixels of the upright image)."""
    detections = result.detections
    labels.add(result.image, result.width, result.height,
               [d.box_xyxy for d in detections], [d.class_id for d in detections],
               [d.score for d in detections])


def _expand(inputs: list[Path]) -> Iterator[tuple[Path, str | None]]:
    """Files as given; folders -> their image files, sorted. Yields (path, problem)."""
    for path in inputs:
        if path.is_dir():
            images = sorted(p for p in path.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                yield path, "the folder holds no image files"
            yield from ((p, None) for p in images)
        elif path.is_file():
            yield path, None
        else:
            yield path, "no such file or folder"


def predict_file(
    detector: Detector, path: Path, score_threshold: float | None,
    writer: AnnotatedWriter | None = None,
) -> ImageResult:
    """Decode (checked like an upload), detect, and optionally save an annotated copy."""
    from detectflow.imaging import ImageError, decode_image, letterbox

    start = time.perf_counter()
    try:
        image = decode_image(path.read_bytes())
    except ImageError as err:
        return ImageResult(path, error_code=err.code, error=str(err))
    except OSError as err:
        return ImageResult(path, error_code="unreadable", error=f"cannot read the file: {err}")
    pixels, placement = letterbox(image, detector.input_size)
    decode_ms = (time.perf_counter() - start) * 1e3
    detections = detector.detect_prepared(pixels, placement, score_threshold)
    timings = {"decode_ms": round(decode_ms, 3), **detector.last_timings.to_dict()}
    timings.pop("preprocess_ms", None)  # decode_ms is this command's preprocessing
    result = ImageResult(path, image.width, image.height, detections, timings)
    if writer is not None:
        result.saved = writer.save(image, detections, path)
    return result


class AnnotatedWriter:
    """Writes `<stem>.jpg|png` copies with boxes drawn; two inputs with one name both stay."""

    def __init__(self, save_dir: Path, classes: list[str]) -> None:
        self.save_dir = save_dir
        self.classes = classes
        self._used: set[Path] = set()

    def save(self, image: Any, detections: list[Detection], source: Path) -> Path:
        from detectflow.drawing import draw_detections

        self.save_dir.mkdir(parents=True, exist_ok=True)
        suffix = source.suffix.lower()
        suffix = suffix if suffix in (".jpg", ".jpeg", ".png") else ".png"
        target = self.save_dir / f"{source.stem}{suffix}"
        number = 1
        while target in self._used:
            target = self.save_dir / f"{source.stem}_{number}{suffix}"
            number += 1
        self._used.add(target)
        draw_detections(image, detections, self.classes).save(target, quality=92)
        return target


def _print_human(result: ImageResult) -> None:
    if result.error is not None:
        sys.stderr.write(f"{result.image}: error ({result.error_code}): {result.error}\n")
        return
    counts = Counter(d.label for d in result.detections)
    summary = ", ".join(f"{n} {label}" for label, n in counts.most_common()) or "no detections"
    total_ms = sum(result.timings.values())
    line = f"{result.image}: {result.width}x{result.height}, {summary}, {total_ms:.1f} ms"
    if result.saved is not None:
        line += f" -> {result.saved}"
    sys.stdout.write(line + "\n")

"""`detectflow train`: VOC data -> trained detector -> evaluated TFLite bundle."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

HELP = "train a detector on a labelled dataset, then export an int8 bundle"
DESCRIPTION = """\
Train a compact anchor-free detector (CenterNet/TTFNet head, MobileNetV2-style backbone) with
TensorFlow/Keras on a labelled dataset as CVAT, Label Studio, Roboflow or Ultralytics export
it: Pascal VOC (Annotations/ + JPEGImages/ + ImageSets/Main/*.txt, or flat annotations/ +
images/), COCO JSON (annotations/instances_<split>.json, or one .json file) or YOLO (data.yaml
+ images/<split> + labels/<split>), found from the files. Malformed annotations are fixed or
skipped and reported. Checkpoints are chosen on a validation split carved from the training
split (never on test). After training, the run is exported (see `detectflow export`) unless
--no-export is given.

The recipe is fitted to the data: before training, the labels are measured (image sizes,
object sizes per class, objects per image, number of images) and a plan chooses the input
size, the output stride, how samples are made (random crops for many small objects, whole
images with mosaic and mixup for large ones), augmentation strength and the time budget. The
plan is printed, stored with the run and in the bundle's manifest; every choice can be
overridden by its flag below ("default: planned"). --show-plan prints it and exits.

Distributed: several GPUs -> MirroredStrategy; TF_CONFIG set (Vertex AI, several machines) ->
MultiWorkerMirroredStrategy. Mixed precision is used on GPUs.

--data and --out also take gs:// (or s3://) URIs: the data is downloaded once into
~/.cache/detectflow/data, the run is written locally and uploaded when done. --publish puts the
bundle into a models bucket (or folder) as <name>/<version>/ with <name>/LATEST, which running
infer functions pick up without a restart.

examples:
  detectflow train --data ../shared/data/raccoon --out runs/raccoon
  detectflow train --data ../shared/data/bccd --out runs/bccd --show-plan
  detectflow train --data ../shared/data/bccd --out runs/bccd --name bccd \\
      --aug-vertical-flip --aug-rotate90
  detectflow train --data ../shared/data/raccoon --out runs/quick --max-minutes 5
  detectflow train --out runs/bccd --resume
  detectflow train --data gs://my-data/bccd --out gs://my-runs/bccd --publish gs://my-models
"""
PLANNED = "default: planned from the data"


def parse_size(text: str) -> tuple[int, int]:
    """'384x288' -> (384, 288); '320' -> (320, 320). Sides must be multiples of 32."""
    parts = text.lower().split("x")
    try:
        width, height = (int(parts[0]), int(parts[-1]))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT or N, got {text!r}") from err
    if len(parts) > 2 or width % 32 or height % 32 or min(width, height) < 64:
        raise argparse.ArgumentTypeError(f"sizes must be multiples of 32, >= 64: {text!r}")
    return width, height


def probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # The trainer's own config holds the defaults (light to import: no TensorFlow).
    from trainer.config import TrainConfig

    defaults = TrainConfig(data="")
    _add_data_arguments(parser.add_argument_group("data"), defaults)
    _add_fit_arguments(parser.add_argument_group("training"), defaults)
    _add_augment_arguments(parser.add_argument_group("augmentation"))
    _add_export_arguments(parser.add_argument_group("export"))


def _add_data_arguments(data: Any, defaults: Any) -> None:
    data.add_argument("--data", help="dataset: a VOC, COCO or YOLO folder (or a COCO .json)")
    data.add_argument("--classes", nargs="+", help="class names (default: found in the data)")
    data.add_argument("--train-split", default=defaults.train_split,
                      help="default: %(default)s")
    data.add_argument("--val-split", help="validation split name (default: carve from train)")
    data.add_argument("--val-fraction", type=float, default=defaults.val_fraction,
                      help="fraction of the train split held out for validation "
                      "(default: %(default)s)")
    data.add_argument("--workers", type=int, help="preprocessing processes (default: all cores)")


def _add_fit_arguments(fit: Any, defaults: Any) -> None:
    fit.add_argument("--out", default=defaults.out, help="run folder (default: %(default)s)")
    fit.add_argument("--name", help="model name in the bundle (default: data folder name)")
    fit.add_argument("--show-plan", action="store_true",
                     help="print the plan for --data (and the full config as JSON) and exit")
    fit.add_argument("--img-size", type=parse_size, metavar="WxH",
                     help=f"model input size, multiples of 32 ({PLANNED})")
    fit.add_argument("--crop", type=int, help=f"square training crop; 0 = whole images ({PLANNED})")
    fit.add_argument("--stride", type=int, choices=(4, 8), help=f"output stride ({PLANNED})")
    fit.add_argument("--width", type=float, help=f"channel multiplier ({PLANNED})")
    fit.add_argument("--max-minutes", type=float,
                     help=f"wall-time budget; the schedule anneals to it; 0 = none ({PLANNED})")
    fit.add_argument("--epochs", type=int, help=f"epochs at most ({PLANNED}; with --resume: "
                     "the run's own, or a new total to train on to)")
    fit.add_argument("--eval-every", type=int, help=f"epochs between val mAP runs ({PLANNED})")
    fit.add_argument("--batch", type=int, default=defaults.batch_size,
                     help="global batch (default: %(default)s)")
    fit.add_argument("--lr", type=float, default=defaults.learning_rate,
                     help="peak learning rate (default: %(default)s)")
    fit.add_argument("--box-loss-weight", type=float, default=defaults.box_loss_weight,
                     help="weight of the box (GIoU) loss; the heatmap's is 1 "
                     "(default: %(default)s)")
    fit.add_argument("--patience", type=int, default=defaults.patience,
                     help="evaluations without val improvement before stopping "
                     "(default: %(default)s)")
    fit.add_argument("--seed", type=int, default=defaults.seed, help="default: %(default)s")
    fit.add_argument("--resume", action="store_true", help="continue the run in --out")
    fit.add_argument("--init-from", metavar="SOURCE",
                     help="start from an earlier model: a bundle folder (with weights.npz) or a "
                     "run folder; same classes: all weights, other classes: a new head")
    fit.add_argument("--cpu-replicas", type=int, default=0,
                     help="mirror training over N logical CPU devices (testing tf.distribute)")


def _add_augment_arguments(aug: Any) -> None:
    aug.add_argument("--aug-vertical-flip", action=argparse.BooleanOptionalAction,
                     help=f"random vertical flips: for data with no 'up' ({PLANNED})")
    aug.add_argument("--aug-rotate90", action=argparse.BooleanOptionalAction,
                     help=f"random 90 degree turns ({PLANNED})")
    aug.add_argument("--no-hflip", action="store_true", help="no horizontal flips")
    aug.add_argument("--mosaic", type=probability, help=f"probability of a 2x2 mosaic ({PLANNED})")
    aug.add_argument("--mixup", type=probability, help=f"probability of a mixup ({PLANNED})")
    aug.add_argument("--scale", type=float, nargs=2, metavar=("MIN", "MAX"),
                     help=f"random scale range ({PLANNED})")


def _add_export_arguments(exp: Any) -> None:
    exp.add_argument("--no-export", action="store_true", help="train only")
    exp.add_argument("--formats", default="float32,float16,int8,qat",
                     help="exports after training (default: %(default)s)")
    exp.add_argument("--qat-epochs", type=int, default=8, help="default: %(default)s")
    exp.add_argument("--publish", metavar="MODELS",
                     help="publish the bundle to this models bucket (gs://BUCKET) or folder")


def default_name(data: str) -> str:
    """The model's name: the dataset folder's, or the file's stem for a COCO .json / YOLO .yaml
    given directly (`instances_train.json` -> the folder it is in, as exporters name files)."""
    path = Path(data).resolve()
    if path.is_file():
        return path.parent.parent.name if path.parent.name == "annotations" else path.stem
    return path.name


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """The plan-driven settings the user gave explicitly (None = let the plan choose)."""
    chosen: dict[str, Any] = {}
    if args.img_size is not None:
        chosen["input_width"], chosen["input_height"] = args.img_size
    for flag, field in (("stride", "stride"), ("width", "width"), ("epochs", "epochs"),
                        ("eval_every", "eval_every")):
        if getattr(args, flag) is not None:
            chosen[field] = getattr(args, flag)
    if args.max_minutes is not None:
        chosen["max_minutes"] = args.max_minutes or None
    augment: dict[str, Any] = {"flip_horizontal": not args.no_hflip}
    if args.aug_vertical_flip is not None:
        augment["flip_vertical"] = args.aug_vertical_flip
    if args.aug_rotate90 is not None:
        augment["rotate90"] = args.aug_rotate90
    if args.crop is not None:
        augment["crop"] = args.crop or None
    if args.mosaic is not None:
        augment["mosaic"] = args.mosaic
    if args.mixup is not None:
        augment["mixup"] = args.mixup
    if args.scale is not None:
        augment["scale_min"], augment["scale_max"] = args.scale
    chosen["augment"] = augment
    return chosen


def build_config(args: argparse.Namespace) -> Any:
    from trainer.config import TrainConfig
    from trainer.plan import planned_config

    if args.resume and (Path(args.out) / "config.json").is_file():
        config = TrainConfig.from_dict(json.loads((Path(args.out) / "config.json").read_text()))
        if args.epochs is not None:
            config.epochs = args.epochs
        return config
    if not args.data:
        raise SystemExit("detectflow train: --data is required (unless --resume)")
    base = TrainConfig(
        data=args.data, out=args.out, name=args.name or default_name(args.data),
        classes=args.classes, train_split=args.train_split, val_split=args.val_split,
        val_fraction=args.val_fraction, batch_size=args.batch, learning_rate=args.lr,
        box_loss_weight=args.box_loss_weight,
        patience=args.patience, seed=args.seed, workers=args.workers,
        cpu_replicas=args.cpu_replicas, init_from=args.init_from,
    )
    try:
        config, text = planned_config(base, overrides_from(args))
    except (ValueError, KeyError) as err:
        raise SystemExit(f"detectflow train: {err}") from None
    sys.stderr.write(text + "\n")
    return config


def local_folder(uri: str, kind: str) -> Path:
    """A local stand-in for a gs:// or s3:// folder (stable per URI, so --resume works)."""
    digest = hashlib.sha256(uri.encode()).hexdigest()[:12]
    return Path.home() / ".cache" / "detectflow" / kind / digest


def run(args: argparse.Namespace) -> int:
    from detectflow.storage.uri import download_folder, is_remote, publish_to, upload_folder
    from trainer.export import export_run
    from trainer.train import train

    remote_out = args.out if is_remote(args.out) else None
    if remote_out:
        args.out = str(local_folder(remote_out, "runs"))
    if args.data and is_remote(args.data):
        args.data = str(download_folder(args.data, local_folder(args.data, "data")))
    config = build_config(args)
    if args.show_plan:  # the plan went to stderr; the full config is the JSON answer
        sys.stdout.write(json.dumps({"config": config.to_dict()}, indent=2) + "\n")
        return 0
    # Keras writes its progress bar to stdout; stdout is kept for the JSON summary alone.
    with contextlib.redirect_stdout(sys.stderr):
        result = train(config, resume=args.resume)
    run_folder = (remote_out or str(result.run_dir)) if result.chief else None
    summary = {"run": run_folder, "chief": result.chief, "epochs": result.epochs_run,
               "minutes": round(result.minutes, 2),
               "best_val_map50": result.best_metrics.get("map50"),
               "best_val_map50_95": result.best_metrics.get("map50_95")}
    if result.chief and not args.no_export:
        formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
        with contextlib.redirect_stdout(sys.stderr):
            bundle = export_run(result.run_dir, formats=formats, qat_epochs=args.qat_epochs)
        summary["bundle"] = str(bundle)
        if args.publish:
            summary["published"] = publish_to(bundle, args.publish)
    if result.chief and remote_out:
        upload_folder(result.run_dir, remote_out)
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0

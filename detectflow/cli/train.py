"""`detectflow train`: VOC data -> trained detector -> evaluated TFLite bundle."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
from pathlib import Path

HELP = "train a detector on a Pascal-VOC folder, then export an int8 bundle"
DESCRIPTION = """\
Train a compact anchor-free detector (CenterNet/TTFNet head, MobileNetV2-style backbone) with
TensorFlow/Keras on a Pascal-VOC dataset: standard layout (Annotations/, JPEGImages/,
ImageSets/Main/*.txt) or flat (annotations/ + images/). Malformed annotations are fixed or
skipped and reported. Checkpoints are chosen on a validation split carved from the training
split (never on test). After training, the run is exported (see `detectflow export`) unless
--no-export is given.

Distributed: several GPUs -> MirroredStrategy; TF_CONFIG set (Vertex AI, several machines) ->
MultiWorkerMirroredStrategy. Mixed precision is used on GPUs.

--data and --out also take gs:// (or s3://) URIs: the data is downloaded once into
~/.cache/detectflow/data, the run is written locally and uploaded when done. --publish puts the
bundle into a models bucket (or folder) as <name>/<version>/ with <name>/LATEST, which running
infer functions pick up without a restart.

examples:
  detectflow train --data ../shared/data/bccd --out runs/bccd --name bccd \\
      --img-size 384x288 --aug-vertical-flip --aug-rotate90 --max-minutes 20
  detectflow train --data ../shared/data/raccoon --out runs/raccoon --epochs 60
  detectflow train --out runs/bccd --resume
  detectflow train --data gs://my-data/bccd --out gs://my-runs/bccd --publish gs://my-models
"""


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--data", help="dataset folder (Pascal VOC, standard or flat layout)")
    data.add_argument("--classes", nargs="+", help="class names (default: found in the data)")
    data.add_argument("--train-split", default="trainval", help="default: %(default)s")
    data.add_argument("--val-split", help="validation split name (default: carve from train)")
    data.add_argument("--val-fraction", type=float, default=0.15,
                      help="fraction of the train split held out for validation "
                      "(default: %(default)s)")
    data.add_argument("--workers", type=int, help="preprocessing processes (default: all cores)")
    fit = parser.add_argument_group("training")
    fit.add_argument("--out", default="runs/detect", help="run folder (default: %(default)s)")
    fit.add_argument("--name", help="model name in the bundle (default: data folder name)")
    fit.add_argument("--img-size", type=parse_size, default=(384, 288), metavar="WxH",
                     help="model input size, multiples of 32 (default: 384x288)")
    fit.add_argument("--crop", type=int, default=256,
                     help="square training crop; 0 = the whole input (default: 256)")
    fit.add_argument("--stride", type=int, choices=(4, 8), default=4,
                     help="output stride of the network (default: 4)")
    fit.add_argument("--epochs", type=int, help="epochs at most (default: 100; with --resume: "
                     "the run's own, or a new total to train on to)")
    fit.add_argument("--batch", type=int, default=16, help="global batch (default: 16)")
    fit.add_argument("--lr", type=float, default=4e-3, help="peak learning rate (default: 4e-3)")
    fit.add_argument("--width", type=float, default=1.0, help="channel multiplier (default: 1)")
    fit.add_argument("--patience", type=int, default=8,
                     help="evaluations without val improvement before stopping (default: 8)")
    fit.add_argument("--eval-every", type=int, default=2, help="epochs between val mAP runs")
    fit.add_argument("--max-minutes", type=float, help="stop training after this wall time")
    fit.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    fit.add_argument("--resume", action="store_true", help="continue the run in --out")
    fit.add_argument("--cpu-replicas", type=int, default=0,
                     help="mirror training over N logical CPU devices (testing tf.distribute)")
    aug = parser.add_argument_group("augmentation")
    aug.add_argument("--aug-vertical-flip", action="store_true",
                     help="random vertical flips (data with no 'up', e.g. microscopy)")
    aug.add_argument("--aug-rotate90", action="store_true", help="random 90 degree turns")
    aug.add_argument("--no-hflip", action="store_true", help="no horizontal flips")
    aug.add_argument("--mosaic", type=float, default=0.0, help="probability of a 2x2 mosaic")
    aug.add_argument("--mixup", type=float, default=0.0, help="probability of a mixup blend")
    aug.add_argument("--scale", type=float, nargs=2, default=(0.75, 1.25), metavar=("MIN", "MAX"),
                     help="random scale range")
    exp = parser.add_argument_group("export")
    exp.add_argument("--no-export", action="store_true", help="train only")
    exp.add_argument("--formats", default="float32,float16,int8,qat",
                     help="exports after training (default: %(default)s)")
    exp.add_argument("--qat-epochs", type=int, default=8, help="default: %(default)s")
    exp.add_argument("--publish", metavar="MODELS",
                     help="publish the bundle to this models bucket (gs://BUCKET) or folder")


def build_config(args: argparse.Namespace) -> object:
    from trainer.augment import AugmentConfig
    from trainer.config import TrainConfig

    if args.resume and (Path(args.out) / "config.json").is_file():
        config = TrainConfig.from_dict(json.loads((Path(args.out) / "config.json").read_text()))
        if args.epochs is not None:
            config.epochs = args.epochs
        return config
    if not args.data:
        raise SystemExit("detectflow train: --data is required (unless --resume)")
    return TrainConfig(
        data=args.data, out=args.out, name=args.name or Path(args.data).resolve().name,
        classes=args.classes, input_width=args.img_size[0], input_height=args.img_size[1],
        train_split=args.train_split, val_split=args.val_split, val_fraction=args.val_fraction,
        epochs=args.epochs or 100, batch_size=args.batch, learning_rate=args.lr, width=args.width,
        eval_every=args.eval_every, patience=args.patience, max_minutes=args.max_minutes,
        seed=args.seed, workers=args.workers, cpu_replicas=args.cpu_replicas,
        stride=args.stride,
        augment=AugmentConfig(crop=args.crop or None, flip_horizontal=not args.no_hflip,
                              flip_vertical=args.aug_vertical_flip, rotate90=args.aug_rotate90,
                              mosaic=args.mosaic, mixup=args.mixup, scale_min=args.scale[0],
                              scale_max=args.scale[1]),
    )


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
    # Keras writes its progress bar to stdout; stdout is kept for the JSON summary alone.
    with contextlib.redirect_stdout(sys.stderr):
        result = train(config, resume=args.resume)  # type: ignore[arg-type]
    summary = {"run": remote_out or str(result.run_dir), "epochs": result.epochs_run,
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

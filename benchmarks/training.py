"""Benchmark: the default training command on each dataset, and the runs that set the recipe.

    .venv/bin/python benchmarks/training.py --train raccoon bccd     # ~30 min per dataset
    .venv/bin/python benchmarks/training.py --runs runs/r-*           # table of earlier runs

`--train NAME...` runs, for each dataset under ../shared/data, exactly the default command a
user would type (`detectflow train --data ../shared/data/NAME --out runs/bench/NAME`, which
plans the recipe, trains to its time budget and exports every format), then reads the bundle
the export wrote: test-split figures of the shipped (default) export, its size and latency.
That is the "training" section of docs/benchmarks.md.

`--runs RUN...` tabulates run folders side by side (the experiments behind the plan's rules):
settings, epochs and optimizer steps, minutes, best validation, and the test split scored on
the run's best float weights with Keras (exports are not needed). That is the "training-runs"
section.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from report import machine_line, write_section  # this script's folder is on sys.path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
# Ultralytics YOLOv8n from scratch on these machines (shared/notes/tensorflow.md), test split.
PEER = {"bccd": (0.629, 0.395), "raccoon": (0.425, 0.170)}
TARGETS = {"bccd": (0.88, 0.56), "raccoon": (0.75, 0.35)}


def train_default(name: str, out_root: Path) -> Path:
    """`detectflow train --data DATA/name --out out_root/name`: the default command."""
    out = out_root / name
    cmd = [sys.executable, "-m", "detectflow.cli", "train", "--data", str(DATA / name),
           "--out", str(out), "--name", name]
    print("$", " ".join(cmd), file=sys.stderr)
    env = {**os.environ, "DETECTFLOW_PROGRESS": "0"}
    with (out_root / f"{name}.log").open("w") as log:
        subprocess.run(cmd, check=True, env=env, stdout=log, stderr=subprocess.STDOUT)
    return out


def _read(run: Path, name: str) -> Any:
    return json.loads((run / name).read_text())


def default_row(name: str, run: Path) -> str:
    config, state = _read(run, "config.json"), _read(run, "state.json")
    manifest = _read(run / "bundle", "manifest.json")
    default = manifest["exports"]["default"]
    test = manifest["metrics"]["reports"][manifest["export"]]["test"]
    crop = config["augment"]["crop"]
    samples = f"crops {crop}" if crop else f"whole, mosaic {config['augment']['mosaic']:.0%}"
    peer, goal = PEER.get(name, (None, None)), TARGETS.get(name, (None, None))
    return (
        f"| {name} | {config['input_width']}x{config['input_height']} | {config['stride']} | "
        f"{samples} | {state['epochs_done']} (best {state['best_epoch']}) | "
        f"{state['minutes']:.1f} | {state['best_metrics']['map50']:.3f} / "
        f"{state['best_metrics']['map50_95']:.3f} | **{test['map50']:.3f} / "
        f"{test['map50_95']:.3f}** | {test['map75']:.3f} | {manifest['export']} "
        f"{default['size_bytes'] / 1024:.0f} KiB | {default['latency_ms']:.1f} | "
        f"{_pair(peer)} | {_pair(goal, '>= ')} |"
    )


def _pair(values: tuple[float | None, float | None], prefix: str = "") -> str:
    return "" if values[0] is None else f"{prefix}{values[0]:.2f} / {values[1]:.2f}"


def default_section(rows: list[str]) -> str:
    return "\n".join([
        "## Training: the default command (`benchmarks/training.py --train`)",
        "",
        "`detectflow train --data ../shared/data/<dataset> --out runs/bench/<dataset>` and "
        "nothing else: the plan chooses input size, stride, sampling and the time budget from "
        "the labels (printed by the command; stored in the bundle's manifest). Validation is "
        "carved from the training split and picks the checkpoint and the shipped export; the "
        "test split is scored once, on the shipped int8 export with LiteRT. "
        f"{machine_line()}",
        "",
        "| dataset | input | stride | samples | epochs | train min | val mAP@0.5 / @.5:.95 | "
        "test mAP@0.5 / @.5:.95 | test AP75 | shipped export | ms/image | peer YOLOv8n "
        "scratch | target |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
        *rows,
    ])


def run_row(run: Path) -> str:
    """One experiment: its settings and its best float weights scored on the test split."""
    config, state = _read(run, "config.json"), _read(run, "state.json")
    test = score_test_split(run)
    aug = config["augment"]
    samples = (f"crops {aug['crop']}" if aug["crop"] else
               f"whole, mosaic {aug['mosaic']:.0%}, mixup {aug['mixup']:.0%}")
    flips = "+vflip" * aug["flip_vertical"] + "+rot90" * aug["rotate90"]
    # data.json is written when a run finishes; a run stopped by hand has none.
    steps = (str(state["epochs_done"] * max(1, _read(run, "data.json")["train_images"]
                                            // config["batch_size"]))
             if (run / "data.json").is_file() else "")
    return (
        f"| `{run.name}` | {Path(config['data']).name} | {config['input_width']}x"
        f"{config['input_height']} | {config.get('stride', 4)} | {config['width']} | "
        f"{samples}{flips} | {state['epochs_done']} (best {state['best_epoch']}) | "
        f"{steps} | {state['minutes']:.1f} | "
        f"{state['best_metrics']['map50']:.3f} / {state['best_metrics']['map50_95']:.3f} | "
        f"{test['map50']:.3f} / "
        f"{test['map50_95']:.3f} | {test['map75']:.3f} |"
    )


def score_test_split(run: Path) -> dict[str, Any]:
    """Test-split metrics of the run's best weights (Keras, float), cached beside them."""
    cached = run / "test_metrics.json"
    weights = run / "best.weights.h5"
    if cached.is_file() and cached.stat().st_mtime >= weights.stat().st_mtime:
        return dict(_read(run, "test_metrics.json"))
    from detectflow.datasets import load_dataset
    from trainer.cache import build_cache
    from trainer.config import TrainConfig
    from trainer.export import load_float_model
    from trainer.train import evaluate_model

    config = TrainConfig.from_dict(_read(run, "config.json"))
    dataset = load_dataset(config.data, classes=config.classes)
    test = build_cache(dataset.split("test"), config.input_size, run / "cache", workers=1,
                       progress=False)
    model = load_float_model(run, config, len(dataset.classes))
    metrics = evaluate_model(model, test, list(dataset.classes), config.stride)
    cached.write_text(json.dumps(metrics, indent=1))
    return metrics


def runs_section(rows: list[str]) -> str:
    return "\n".join([
        "## Training runs behind the recipe (`benchmarks/training.py --runs`)",
        "",
        "Each row is one `detectflow train` run (its flags are in its config.json); test = the "
        "test split scored on the run's best float weights (EMA, chosen on validation) with "
        "Keras, so runs that were never exported compare too. The runs shared the machine's "
        "two cores with other work, so minutes buy different numbers of steps: compare rows "
        "by epochs and steps. Runs named `r-*` and `b-*` are the recipe experiments, made "
        "before the backbone's stride-4 and stride-8 blocks were fused (trainer/model.py "
        "FUSED_LEVELS: a step then took about 3x as long on CPU); the others use the network "
        f"as it is now. {machine_line()}",
        "",
        "| run | data | input | stride | width | samples | epochs | steps | min | "
        "val mAP@0.5 / @.5:.95 | test mAP@0.5 / @.5:.95 | test AP75 |",
        "|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", nargs="+", metavar="DATASET", default=[],
                        help="run the default command on ../shared/data/DATASET")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench",
                        help="where --train writes its runs (default: runs/bench)")
    parser.add_argument("--report", nargs="+", metavar="DATASET", default=[],
                        help="re-read finished --train runs without training again")
    parser.add_argument("--runs", nargs="+", type=Path, default=[],
                        help="run folders to tabulate (section training-runs)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    names = [*args.train, *args.report]
    for name in args.train:
        train_default(name, args.out)
    if names:
        body = default_section([default_row(n, args.out / n) for n in names])
        print(body)
        if not args.no_write:
            write_section("training", body)
    if args.runs:
        body = runs_section([run_row(run) for run in args.runs])
        print(body)
        if not args.no_write:
            write_section("training-runs", body)
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()

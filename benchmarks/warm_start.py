"""Benchmark: what `detectflow train --init-from` buys when more labels arrive.

    .venv/bin/python benchmarks/warm_start.py --minutes 12      # ~40 min on two cores

The story it measures: a model was trained on half of BCCD's trainval; the other half gets
labelled; now train on all of it for M minutes, either starting from the first model
(`--init-from`) or from scratch. Three runs, every other flag the plan's default:

    half       trainval[::2] for M minutes                          (the earlier model)
    continued  all of trainval for M minutes, --init-from half
    scratch    all of trainval for M minutes, from random weights

The half view is a folder of links to ../shared/data/bccd with its own ImageSets (nothing is
copied). Each run is scored on the test split with its best float weights (Keras), like the
"training-runs" table. Writes the "warm-start" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from report import machine_line, write_section  # this script's folder is on sys.path
from training import DATA, REPO, score_test_split


def half_view(source: Path, into: Path) -> Path:
    """`source` (VOC layout) with trainval = every other image of its trainval."""
    into.mkdir(parents=True)
    for name in ("Annotations", "JPEGImages"):
        (into / name).symlink_to(source / name)
    splits = into / "ImageSets" / "Main"
    splits.mkdir(parents=True)
    ids = (source / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    (splits / "trainval.txt").write_text("\n".join(ids[::2]) + "\n")
    (splits / "test.txt").write_text((source / "ImageSets" / "Main" / "test.txt").read_text())
    return into


def train(data: Path, out: Path, minutes: float, *extra: str) -> Path:
    cmd = [sys.executable, "-m", "detectflow.cli", "train", "--data", str(data), "--out",
           str(out), "--name", "bccd", "--max-minutes", str(minutes), "--no-export", *extra]
    print("$", " ".join(cmd), file=sys.stderr)
    env = {**os.environ, "DETECTFLOW_PROGRESS": "0"}
    with out.with_suffix(".log").open("w") as log:
        subprocess.run(cmd, check=True, env=env, stdout=log, stderr=subprocess.STDOUT)
    return out


def row(label: str, run: Path, images: int) -> str:
    import json

    state = json.loads((run / "state.json").read_text())
    test = score_test_split(run)
    return (f"| {label} | {images} | {state['epochs_done']} | {state['minutes']:.1f} | "
            f"{state['best_metrics']['map50']:.3f} / {state['best_metrics']['map50_95']:.3f} | "
            f"**{test['map50']:.3f} / {test['map50_95']:.3f}** |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=12.0, help="budget of each run")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "warm-start")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    source = DATA / "bccd"
    args.out.mkdir(parents=True, exist_ok=True)
    view = args.out / "bccd-half"  # links, kept: the half run's config points at it
    if not view.exists():
        half_view(source, view)
    half = train(view, args.out / "half", args.minutes)
    continued = train(source, args.out / "continued", args.minutes, "--init-from", str(half))
    scratch = train(source, args.out / "scratch", args.minutes)
    total = len((source / "ImageSets" / "Main" / "trainval.txt").read_text().split())
    body = "\n".join([
        "## Warm start (`benchmarks/warm_start.py`)",
        "",
        f"BCCD, the plan's default recipe, {args.minutes:g} minutes per run: a model trained on "
        "half of trainval, then all of trainval from that model (`--init-from`) or from "
        "scratch. Validation is carved from each run's training images; test = the test "
        "split on the best float weights. Minutes are the budget each run is given, so "
        "the runs compare at equal wall time; on a shared or noisy machine they buy different "
        f"numbers of epochs (the epochs column says how many). {machine_line()}",
        "",
        "| run | trainval images | epochs | min | val mAP@0.5 / @.5:.95 | "
        "test mAP@0.5 / @.5:.95 |",
        "|---|---:|---:|---:|---:|---:|",
        row("half (the earlier model)", half, (total + 1) // 2),
        row("all, `--init-from` half", continued, total),
        row("all, from scratch", scratch, total),
    ])
    print(body)
    if not args.no_write:
        write_section("warm-start", body)


if __name__ == "__main__":
    main()

"""Benchmark: training runs side by side — what each configuration reached, in how long.

    .venv/bin/python benchmarks/training.py runs/bccd-v1 runs/bccd-v2 ...

Reads each run folder that `detectflow train` wrote (config.json, state.json) and, where the
run was exported, its bundle's manifest (test-split metrics of every export). The training
itself is the benchmark: the commands are in models/README.md. Writes the `training` section
of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from report import write_section  # this script's folder is on sys.path


def run_row(run: Path) -> str:
    config = json.loads((run / "config.json").read_text())
    state = json.loads((run / "state.json").read_text())
    best = state["best_metrics"]
    manifest_path = run / "bundle" / "manifest.json"
    test = "not exported"
    if manifest_path.is_file():
        exports = json.loads(manifest_path.read_text())["exports"]
        chosen = exports.get("default") or exports.get("int8")
        test = f"{chosen['map50']:.3f} / {chosen['map50_95']:.3f}"
    return (
        f"| `{run.name}` | {config['input_width']}x{config['input_height']} | "
        f"{config['width']} | {config['augment']['crop']} | {state['epochs_done']} "
        f"(best {state['best_epoch']}) | {state['minutes']:.1f} | {best['map50']:.3f} / "
        f"{best['map50_95']:.3f} | {test} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    rows = [
        "| run | input | width | crop | epochs | minutes | val mAP@0.5 / @.5:.95 (EMA, best) "
        "| test mAP@0.5 / @.5:.95 (int8 default) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        *(run_row(run) for run in args.runs),
    ]
    body = "\n".join([
        "## Training runs on BCCD (`benchmarks/training.py`)",
        "",
        "Each run: `detectflow train` on `trainval` (15 % carved off for validation, which "
        "picks the checkpoint and the shipped export), 2 CPU cores shared with other work. "
        f"Test figures exist only for exported runs. Machine: {os.cpu_count()} CPUs; the runs "
        "shared them with other jobs (0.45 to 2 s per step of 16 crops), so minutes buy "
        "different numbers of epochs. `bccd-v1` was `models/bccd` 1.0.0; `bccd-v3` (the same "
        "command on a quiet machine) scored higher on validation and is the shipped 1.1.0. "
        "`bccd-v2` (wider) and `bccd-v4` (native 640x480 input, same 256 px crops) scored "
        "lower on validation, so they were not exported or shipped.",
        "",
        *rows,
    ])
    print(body)
    if not args.no_write:
        write_section("training", body)


if __name__ == "__main__":
    main()

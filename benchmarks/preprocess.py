"""Benchmark: the preprocessing cache build (decode + EXIF + letterbox) with 1 vs N processes.

    .venv/bin/python benchmarks/preprocess.py --data ../shared/data/bccd --split trainval

Every run is cold (a fresh temporary cache folder), runs alternate between the settings so
drift on a busy machine hits both alike, and each setting reports its median. The measured
time is the whole `build_cache` call a user waits for: hashing, workers, assembly, write.
Prints a table and writes it to docs/benchmarks.md between the `preprocess` markers.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import report  # benchmarks/report.py (this script's folder is on sys.path)

from detectflow.datasets.voc import Annotation, load_voc
from trainer.cache import build_cache

SECTION = "preprocess"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/bccd", help="VOC dataset folder")
    parser.add_argument("--split", default="trainval")
    parser.add_argument("--input-size", default="384x288", help="WxH (default: %(default)s)")
    parser.add_argument("--workers", default="1,2", help="process counts to compare")
    parser.add_argument("--runs", type=int, default=3, help="cold runs per setting")
    parser.add_argument("--repeat", default="1,4",
                        help="workloads: the split's list repeated this many times")
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args()


class PhaseLog(logging.Handler):
    """Keeps the decode-phase seconds that build_cache logs with each cache it builds."""

    def __init__(self) -> None:
        super().__init__()
        self.decode_seconds: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "decode_seconds"):
            self.decode_seconds.append(float(record.decode_seconds))


def timed_build(
    items: Sequence[Annotation], input_size: tuple[int, int], workers: int
) -> float:
    with tempfile.TemporaryDirectory() as cache_dir:
        start = time.perf_counter()
        build_cache(items, input_size, cache_dir, workers=workers, progress=False)
        return time.perf_counter() - start


def timed_hit(items: Sequence[Annotation], input_size: tuple[int, int]) -> float:
    with tempfile.TemporaryDirectory() as cache_dir:
        build_cache(items, input_size, cache_dir, workers=1, progress=False)
        start = time.perf_counter()
        build_cache(items, input_size, cache_dir, workers=1, progress=False)
        return time.perf_counter() - start


def measure(args: argparse.Namespace) -> tuple[str, str]:
    width, height = (int(v) for v in args.input_size.lower().split("x"))
    items = load_voc(args.data).split(args.split)
    settings = [int(w) for w in args.workers.split(",")]
    phases = PhaseLog()
    cache_log = logging.getLogger("trainer.cache")
    cache_log.addHandler(phases)
    cache_log.setLevel(logging.INFO)
    timed_build(items[:8], (width, height), 1)  # warm imports and the page cache
    load_before = os.getloadavg()[0]
    rows = [
        "| images | processes | total s (median) | runs (s) | speed-up "
        "| decode phase s (median) | decode speed-up | images/s |",
        "|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for repeat in (int(r) for r in args.repeat.split(",")):
        rows += workload_rows(list(items) * repeat, (width, height), settings, args.runs, phases)
    hit = statistics.median(timed_hit(items, (width, height)) for _ in range(args.runs))
    rows.append(f"| {len(items)} | cache hit | {hit:.3f} | | | | | |")
    context = (
        f"{Path(args.data).name} `{args.split}`: {len(items)} images (and the same list "
        f"repeated, to separate fixed costs from throughput) -> {width}x{height} letterbox; "
        f"{args.runs} cold runs per setting, alternating; median. "
        f"Machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}; measured {time.strftime('%Y-%m-%d %H:%M')}, "
        f"1-min load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after "
        "(other work shares the machine). "
        "Total = the whole build_cache call (hash, decode phase, assemble, write the .npz, "
        "~0.33 MB per image); decode phase = starting the workers + decode/EXIF/letterbox + "
        "collecting the pixels. N processes = this one + N-1 spawned workers (spawned, not "
        "forked: forking a process that runs TensorFlow can deadlock); this process decodes "
        "while they start (~0.2-0.3 s each)."
    )
    return context, "\n".join(rows)


def workload_rows(
    items: list[Annotation], input_size: tuple[int, int], settings: list[int], runs: int,
    phases: PhaseLog,
) -> list[str]:
    totals: dict[int, list[float]] = {w: [] for w in settings}
    decodes: dict[int, list[float]] = {w: [] for w in settings}
    for _ in range(runs):
        for workers in settings:
            totals[workers].append(timed_build(items, input_size, workers))
            decodes[workers].append(phases.decode_seconds[-1])
    base, base_decode = (statistics.median(x[settings[0]]) for x in (totals, decodes))
    rows = []
    for workers in settings:
        total, decode = statistics.median(totals[workers]), statistics.median(decodes[workers])
        listed = ", ".join(f"{t:.2f}" for t in totals[workers])
        rows.append(f"| {len(items)} | {workers} | {total:.2f} | {listed} | {base / total:.2f}x "
                    f"| {decode:.2f} | {base_decode / decode:.2f}x | {len(items) / total:.0f} |")
    return rows


def main() -> None:
    args = parse_args()
    context, table = measure(args)
    print(context)
    print(table)
    if not args.no_write:
        command = "`.venv/bin/python benchmarks/preprocess.py " + \
                  f"--data {args.data} --split {args.split} --input-size {args.input_size}`"
        body = f"## Preprocessing cache: 1 vs N processes\n\n{command}\n\n{context}\n\n{table}"
        report.write_section(SECTION, body)
        print(f"written to {report.DOCS}")


if __name__ == "__main__":
    main()

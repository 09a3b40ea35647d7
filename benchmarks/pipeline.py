"""Pipeline benchmark: how close the event pipeline gets to the compute bound, and what an
upload waits for its result. Writes its section of docs/benchmarks.md.

  1. compute bound: decode + preprocess + int8 inference per image, tight loop, one process;
  2. throughput: N uploads of BCCD images at once, 1 and 2 instances, on the embedded backend
     and on the emulator stack (Pub/Sub emulator + fake-gcs-server + functions-framework);
     lost (no result) and duplicated (a result written twice) are counted, not assumed;
  3. upload -> result latency p50/p95/p99 at a steady rate of half the measured saturation;
  4. cold start of the infer function (process start -> first result), and the same with
     `import tensorflow` added, for comparison.

    .venv/bin/python benchmarks/pipeline.py                 # everything (~3-5 min)
    .venv/bin/python benchmarks/pipeline.py --skip-emulators --images 200 --no-write
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import report  # noqa: E402  (benchmarks/report.py: writes our section of docs/benchmarks.md)

from detectflow.catalog.sqlite import SqliteCatalog  # noqa: E402
from detectflow.imaging import DEFAULT_LIMITS  # noqa: E402
from detectflow.launcher.embedded import EmbeddedPipeline  # noqa: E402
from detectflow.launcher.emulators import EmulatorConfig, EmulatorStack  # noqa: E402
from detectflow.launcher.testing import free_port, free_ports  # noqa: E402
from detectflow.layout import new_image_id, upload_key, work_key  # noqa: E402
from detectflow.model import Detector, Manifest  # noqa: E402
from detectflow.model.registry import publish_bundle  # noqa: E402
from detectflow.pipeline.events import PreparedNotice  # noqa: E402
from detectflow.pipeline.prepare import encode_prepared, prepare_image  # noqa: E402
from detectflow.records import ResultRecord, SourceObject  # noqa: E402
from detectflow.settings import load_settings  # noqa: E402
from detectflow.storage import Buckets, make_buckets  # noqa: E402

SECTION = "pipeline"
IMAGE_ID = re.compile(r"[0-9a-f]{32}")


# --- data --------------------------------------------------------------------------------

def load_images(data_dir: Path) -> list[tuple[str, bytes]]:
    folder = data_dir / "JPEGImages" if (data_dir / "JPEGImages").is_dir() else data_dir
    images = [(p.name, p.read_bytes()) for p in sorted(folder.glob("*.jpg"))]
    if not images:
        raise SystemExit(f"no .jpg images under {folder}")
    return images


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def created_at(record: ResultRecord) -> float:
    return datetime.fromisoformat(record.created).timestamp()


# --- 1. compute bound --------------------------------------------------------------------

class BoundMeter:
    """The compute bound again, on a slice of the images, right before and after each
    pipeline run: other jobs share these cores, so a ratio needs both sides measured under
    the same load."""

    def __init__(self, images: list[tuple[str, bytes]], bundle: Path, count: int = 120) -> None:
        self.images = images[:count]
        self.detector = Detector.load(bundle)

    def images_per_s(self) -> float:
        size = self.detector.input_size
        start = time.perf_counter()
        for _, data in self.images:
            prepared = prepare_image(data, size, DEFAULT_LIMITS)
            self.detector.detect_prepared(prepared.pixels, prepared.placement)
        return len(self.images) / (time.perf_counter() - start)

    def bracket(self, run: Callable[[], Run]) -> Run:
        before = self.images_per_s()
        result = run()
        result.bound_per_s = (before + self.images_per_s()) / 2
        return result


def compute_bound(images: list[tuple[str, bytes]], bundle: Path) -> dict[str, float]:
    detector = Detector.load(bundle)
    size = detector.input_size
    for _, data in images[:5]:  # warm up
        prepared = prepare_image(data, size, DEFAULT_LIMITS)
        detector.detect_prepared(prepared.pixels, prepared.placement)
    per_image: list[float] = []
    stages: dict[str, list[float]] = {"decode": [], "resize": [], "inference": [],
                                      "postprocess": []}
    for _, data in images:
        start = time.perf_counter()
        prepared = prepare_image(data, size, DEFAULT_LIMITS)
        detector.detect_prepared(prepared.pixels, prepared.placement)
        per_image.append((time.perf_counter() - start) * 1e3)
        stages["decode"].append(prepared.timings_ms["decode_ms"])
        stages["resize"].append(prepared.timings_ms["resize_ms"])
        stages["inference"].append(detector.last_timings.inference_ms)
        stages["postprocess"].append(detector.last_timings.postprocess_ms)
    result = {f"{k}_ms": statistics.median(v) for k, v in stages.items()}
    result["per_image_ms"] = statistics.median(per_image)
    result["mean_ms"] = statistics.fmean(per_image)
    result["images_per_s"] = 1e3 / result["mean_ms"]
    return result


# --- 2/3. pipeline runs ------------------------------------------------------------------

@dataclass
class Run:
    backend: str
    instances: int
    uploads: int
    seconds: float = 0.0
    lost: int = 0
    duplicated: int = 0
    failed: int = 0
    redeliveries_absorbed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    bound_per_s: float = 0.0  # compute bound measured right before and after this run

    @property
    def throughput(self) -> float:
        return self.uploads / self.seconds if self.seconds else 0.0


@dataclass
class Summary:
    """Repeated throughput runs of one configuration, then one steady-rate latency run."""

    backend: str
    instances: int
    runs: list[Run]
    latencies_ms: list[float]

    @property
    def throughputs(self) -> list[float]:
        return [r.throughput for r in self.runs]

    @property
    def ratios(self) -> list[float]:
        return [r.throughput / r.bound_per_s for r in self.runs]

    def total(self, what: str) -> int:
        return sum(getattr(r, what) for r in self.runs)


def measure(target: Target, images: list[tuple[str, bytes]], count: int, repeats: int,
            latency_count: int, meter: BoundMeter, backend: str, instances: int) -> Summary:
    drive(target, images, 4 * instances, None, "warm-up", instances)
    runs = [meter.bracket(lambda: drive(target, images, count, None, backend, instances))
            for _ in range(repeats)]
    rate = statistics.median(r.throughput for r in runs) / 2
    steady = drive(target, images, latency_count, rate, backend, instances)
    summary = Summary(backend, instances, runs, steady.latencies_ms)
    print(f"  {backend} x{instances}: {[round(t, 1) for t in summary.throughputs]} images/s, "
          f"{[round(100 * r) for r in summary.ratios]} % of the compute bound, lost "
          f"{summary.total('lost')}, duplicated {summary.total('duplicated')}, failed "
          f"{summary.total('failed')}", file=sys.stderr)
    return summary


class Target:
    """A running pipeline: its buckets, and how to read its 'result recorded' log lines."""

    def __init__(self, buckets: Buckets, log_lines: Callable[[], list[str]]) -> None:
        self.buckets = buckets
        self.log_lines = log_lines

    def put(self, key: str, data: bytes) -> None:
        self.buckets.uploads.put(key, data, "image/jpeg")


def drive(target: Target, images: list[tuple[str, bytes]], count: int, rate: float | None,
          backend: str, instances: int, timeout: float = 600) -> Run:
    """Upload `count` images (all at once, or at `rate` per second) and wait for every result."""
    run = Run(backend, instances, count)
    before = {info.key for info in target.buckets.results.list()}
    sent: dict[str, float] = {}
    start = time.time()
    for index in range(count):
        if rate:
            delay = start + index / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        name, data = images[index % len(images)]
        image_id = new_image_id()
        sent[image_id] = time.time()
        target.put(upload_key(image_id, name), data)
    deadline = time.time() + timeout
    expected = {f"{i}.json" for i in sent}
    while time.time() < deadline:
        done = {info.key for info in target.buckets.results.list()} - before
        if expected <= done:
            break
        time.sleep(1.0)  # listing is not free: poll gently (completion times come from records)
    records: dict[str, ResultRecord] = {}
    for image_id in sent:
        with contextlib.suppress(KeyError):
            records[image_id] = ResultRecord.model_validate_json(
                target.buckets.results.get(f"{image_id}.json"))
    run.lost = count - len(records)
    run.failed = sum(1 for r in records.values() if r.status != "done")
    finished = [created_at(r) for r in records.values()]
    run.seconds = (max(finished) - start) if finished else 0.0
    run.latencies_ms = [(created_at(r) - sent[i]) * 1e3 for i, r in records.items()]
    written: Counter[str] = Counter()
    absorbed = 0
    for line in target.log_lines():
        match = IMAGE_ID.search(line)
        if match is None or match.group(0) not in sent:
            continue
        if "result recorded" in line:
            written[match.group(0)] += 1
        elif "duplicate delivery acknowledged" in line:
            absorbed += 1
    run.duplicated = sum(n - 1 for n in written.values() if n > 1)
    run.redeliveries_absorbed = absorbed
    return run


class LogCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.__dict__.get('image_id', '')}")


def embedded_runs(images: list[tuple[str, bytes]], bundle: Path, count: int,
                  instances_list: list[int], repeats: int, latency_count: int,
                  meter: BoundMeter) -> list[Summary]:
    summaries = []
    for instances in instances_list:
        root = Path(tempfile.mkdtemp(prefix="bench-embedded-"))
        logs = LogCollector()
        logger = logging.getLogger("detectflow.pipeline")
        logger.addHandler(logs)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # collected, not printed: printing costs CPU too
        try:
            name = Manifest.read(bundle).name
            settings = load_settings(storage="local", bus="memory", data_dir=root / "data",
                                     model_name=name, model_cache_dir=root / "cache")
            buckets = Buckets.local(settings.data_dir)
            publish_bundle(buckets.models, bundle)
            catalog = SqliteCatalog(root / "catalog.sqlite3")  # written in the path, as in `up`
            with EmbeddedPipeline(buckets, settings, workers=instances, watch=False,
                                  catalog=catalog) as p:
                target = Target(p.buckets, lambda logs=logs: logs.lines)  # type: ignore[misc]
                summaries.append(measure(target, images, count, repeats, latency_count, meter,
                                         "embedded", instances))
        finally:
            logger.removeHandler(logs)
            logger.propagate = True
            shutil.rmtree(root, ignore_errors=True)
    return summaries


def catalog_ab(images: list[tuple[str, bytes]], bundle: Path, count: int, repeats: int,
               meter: BoundMeter) -> dict[str, list[float]]:
    """The catalog's share of the embedded pipeline: runs with and without it (SQLite), one
    instance, alternating, each bracketed by the compute bound: what a catalog write costs
    per image, whatever else the machine is doing."""
    ratios: dict[str, list[float]] = {"with catalog": [], "without": []}
    root = Path(tempfile.mkdtemp(prefix="bench-catalog-ab-"))
    try:
        name = Manifest.read(bundle).name
        pipelines = {}
        for variant in ratios:
            settings = load_settings(storage="local", bus="memory",
                                     data_dir=root / variant / "data", model_name=name,
                                     model_cache_dir=root / "cache")
            buckets = Buckets.local(settings.data_dir)
            publish_bundle(buckets.models, bundle)
            catalog = SqliteCatalog(root / variant / "c.sqlite3") if variant != "without" \
                else None
            pipelines[variant] = EmbeddedPipeline(buckets, settings, watch=False,
                                                  catalog=catalog).start()
        logs = LogCollector()
        logger = logging.getLogger("detectflow.pipeline")
        logger.addHandler(logs)
        logger.propagate = False
        try:
            for variant, pipeline in pipelines.items():  # warm-up
                drive(Target(pipeline.buckets, lambda: logs.lines), images, 8, None, variant, 1)
            for _ in range(repeats):
                for variant, pipeline in pipelines.items():
                    run = meter.bracket(lambda p=pipeline, v=variant: drive(
                        Target(p.buckets, lambda: logs.lines), images, count, None, v, 1))
                    ratios[variant].append(run.throughput / run.bound_per_s)
        finally:
            logger.removeHandler(logs)
            logger.propagate = True
            for pipeline in pipelines.values():
                pipeline.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"  catalog A/B: {ratios}", file=sys.stderr)
    return ratios


def emulator_runs(images: list[tuple[str, bytes]], bundle: Path, count: int,
                  instances_list: list[int], repeats: int, latency_count: int,
                  cold_starts: int, meter: BoundMeter
                  ) -> tuple[list[Summary], dict[str, float]]:
    summaries: list[Summary] = []
    cold: dict[str, float] = {}
    name = Manifest.read(bundle).name
    for instances in instances_list:
        stack = EmulatorStack(EmulatorConfig(model_name=name, instances=instances,
                                             ports=free_ports(),
                                             model_check_seconds=30)).start()
        try:
            buckets = make_buckets(stack.settings())
            publish_bundle(buckets.models, bundle)

            def lines(stack: EmulatorStack = stack) -> list[str]:
                return (stack.function_log("preprocess") + stack.function_log("infer")
                        ).splitlines()

            summaries.append(measure(Target(buckets, lines), images, count, repeats,
                                     latency_count, meter, "emulators", instances))
            if not cold and cold_starts:
                cold = cold_start(stack, buckets, images[0][1], bundle, cold_starts)
        finally:
            stack.stop()
    return summaries, cold


# --- 4. cold start -----------------------------------------------------------------------

TF_MAIN = """\
import tensorflow  # noqa: F401  (what a TensorFlow-based function pays at cold start)
import runpy
globals().update(runpy.run_path({path!r}))
"""


def cold_start(stack: EmulatorStack, buckets: Buckets, jpeg: bytes, bundle: Path,
               repeats: int) -> dict[str, float]:
    """Median seconds from spawning a fresh infer instance to its first result written."""
    manifest = Manifest.read(bundle)
    size = (manifest.input.width, manifest.input.height)
    tf_dir = Path(tempfile.mkdtemp(prefix="bench-tf-main-"))
    (tf_dir / "main.py").write_text(TF_MAIN.format(
        path=str(REPO / "functions" / "infer" / "main.py")))
    out: dict[str, float] = {}
    for label, source in (("litert", REPO / "functions" / "infer" / "main.py"),
                          ("with_tensorflow", tf_dir / "main.py")):
        times = [_one_cold_start(stack, buckets, jpeg, size, source) for _ in range(repeats)]
        out[label] = statistics.median(times)
        print(f"  cold start {label}: {[round(t, 2) for t in times]} s", file=sys.stderr)
    out["tensorflow_import"] = statistics.median(_import_seconds("tensorflow")
                                                 for _ in range(repeats))
    out["repeats"] = repeats
    shutil.rmtree(tf_dir, ignore_errors=True)
    return out


def _import_seconds(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; " \
           "print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return float(done.stdout.strip().splitlines()[-1])


def _one_cold_start(stack: EmulatorStack, buckets: Buckets, jpeg: bytes,
                    size: tuple[int, int], source: Path) -> float:
    image_id = new_image_id()
    prepared = prepare_image(jpeg, size, DEFAULT_LIMITS)
    buckets.work.put(work_key(image_id), encode_prepared(prepared.pixels, prepared.placement))
    notice = PreparedNotice(image_id=image_id, work_key=work_key(image_id),
                            source=SourceObject(bucket=buckets.uploads.bucket, name="x.jpg",
                                                filename="x.jpg"))
    data, attributes = notice.to_message()
    body = json.dumps({"message": {"data": base64.b64encode(data).decode(),
                                   "attributes": attributes, "messageId": image_id},
                       "subscription": "cold-start"}).encode()
    port = free_port()
    cache = Path(tempfile.mkdtemp(prefix="bench-cold-cache-"))  # a new instance has no cache
    env = {**os.environ, **stack.env(), "DETECTFLOW_MODEL_CACHE_DIR": str(cache),
           "WORKERS": "1", "THREADS": "4", "TF_CPP_MIN_LOG_LEVEL": "3"}
    argv = [sys.executable, "-m", "functions_framework", "--target", "detect_objects",
            "--source", str(source), "--signature-type", "cloudevent", "--host", "127.0.0.1",
            "--port", str(port)]
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/projects/p/topics/prepared"
        while True:
            if time.perf_counter() - start > 120:
                raise RuntimeError("the infer function never answered")
            try:
                request = urllib.request.Request(url, data=body, headers={
                    "Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=60) as response:
                    if response.status == 200:
                        break
            except (TimeoutError, urllib.error.URLError, ConnectionError):
                time.sleep(0.01)
        elapsed = time.perf_counter() - start
        if buckets.results.stat(f"{image_id}.json") is None:
            raise RuntimeError("the function answered but wrote no result")
        return elapsed
    finally:
        os.killpg(process.pid, 9)
        process.wait()
        shutil.rmtree(cache, ignore_errors=True)


# --- report ------------------------------------------------------------------------------

def targets(summaries: list[Summary], cold: dict[str, float]) -> str:
    """The issue's targets, and whether this run met them."""
    def best(backend: str) -> float | None:
        ratios = [statistics.median(s.ratios) for s in summaries if s.backend == backend]
        return 100 * max(ratios) if ratios else None

    checks = []
    for backend, goal in (("embedded", 80), ("emulators", 50)):
        got = best(backend)
        if got is not None:
            checks.append(f"{backend} >= {goal} % of the compute bound: {got:.0f} % "
                          f"({'met' if got >= goal else 'missed'})")
    p50 = max(percentile(s.latencies_ms, 50) for s in summaries if s.latencies_ms)
    checks.append(f"p50 upload->result <= 250 ms at half saturation: worst {p50:.0f} ms "
                  f"({'met' if p50 <= 250 else 'missed'})")
    lost = sum(s.total("lost") + s.total("duplicated") for s in summaries)
    checks.append(f"0 lost, 0 duplicated: {lost} ({'met' if lost == 0 else 'missed'})")
    if cold:
        checks.append(f"cold start <= 1.5 s: {cold['litert']:.2f} s "
                      f"({'met' if cold['litert'] <= 1.5 else 'missed'})")
    return "Targets (the event-pipeline issue), this run: " + "; ".join(checks) + "."


def _spread(values: list[float], fmt: str) -> str:
    """median (min-max)"""
    if len(values) == 1:
        return format(values[0], fmt)
    return (f"{format(statistics.median(values), fmt)} "
            f"({format(min(values), fmt)}-{format(max(values), fmt)})")


def render(bound: dict[str, float], summaries: list[Summary], cold: dict[str, float],
           images: int, source: str, model: Manifest, count: int, repeats: int) -> str:
    lines = [
        f"Model `{model.name}` {model.version} ({model.export}, input "
        f"{model.input.width}x{model.input.height}); {images} distinct BCCD images from "
        f"{source}, cycled to {count} uploads per run. {report.machine_line()} "
        "Other engineers' jobs may share these two cores: compare ratios, which are measured "
        "under the same load, rather than absolute rates across runs.",
        "",
        "**Compute bound** (one process, tight loop: decode + letterbox + int8 inference + "
        "box decoding), medians per image:",
        "",
        "| decode | resize | inference | postprocess | total | images/s |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {bound['decode_ms']:.2f} ms | {bound['resize_ms']:.2f} ms | "
        f"{bound['inference_ms']:.2f} ms | {bound['postprocess_ms']:.2f} ms | "
        f"{bound['per_image_ms']:.2f} ms | {bound['images_per_s']:.1f} |",
        "",
        f"**Pipeline**: {repeats} runs of {count} uploads at once per configuration "
        "(throughput: median, min-max), then uploads at a steady half of the median rate "
        "(latency = result record written - upload started, same clock). The compute bound "
        "is measured again (120 images, same process as the uploader) right before and "
        "after every run, and each run's ratio uses their mean. Instances: worker threads per "
        "stage, one interpreter each (embedded), or gunicorn worker processes per function "
        "behind one push subscription (emulators). The catalog is written in the path, as "
        "in `detectflow up`: SQLite (embedded) or the Firestore emulator (emulators), "
        "`processing` and `done` per image (uploads here go straight to the bucket, so no "
        "`queued`). Lost = uploads without a result; duplicated = results written more than "
        "once (from the functions' logs).",
        "",
        "| backend | instances | images/s | % of compute bound | lost | duplicated | failed "
        "| latency p50 | p95 | p99 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for summary in summaries:
        lat = summary.latencies_ms or [float("nan")]
        uploads = sum(r.uploads for r in summary.runs)
        lines.append(
            f"| {summary.backend} | {summary.instances} | {_spread(summary.throughputs, '.1f')}"
            f" | {_spread([100 * r for r in summary.ratios], '.0f')} % | "
            f"{summary.total('lost')}/{uploads} | {summary.total('duplicated')} | "
            f"{summary.total('failed')} | {percentile(lat, 50):.0f} ms | "
            f"{percentile(lat, 95):.0f} ms | {percentile(lat, 99):.0f} ms |")
    absorbed = sum(s.total("redeliveries_absorbed") for s in summaries)
    lines += ["", f"Redeliveries absorbed by the idempotency check over all runs: {absorbed}.",
              "", targets(summaries, cold)]
    if cold:
        lines += [
            "",
            "**Cold start** of the infer function (spawn functions-framework -> first result "
            "written, fresh model cache, model downloaded from fake-gcs-server), median of "
            f"{cold['repeats']:.0f}:",
            "",
            "| LiteRT (as shipped) | same + `import tensorflow` | `import tensorflow` alone |",
            "|---:|---:|---:|",
            f"| {cold['litert']:.2f} s | {cold['with_tensorflow']:.2f} s | "
            f"{cold['tensorflow_import']:.2f} s |",
        ]
    return "\n".join(lines)


def render_ab(ab: dict[str, list[float]], bound: dict[str, float], count: int) -> str:
    with_catalog = statistics.median(ab["with catalog"])
    without = statistics.median(ab["without"])
    cost_ms = (1 / with_catalog - 1 / without) * bound["per_image_ms"]
    return (
        f"**Catalog writes in the path** (embedded, 1 instance, runs of {count} uploads with "
        "and without the SQLite catalog, alternating, each against the compute bound measured "
        "around it): "
        f"{100 * with_catalog:.0f} % with the catalog "
        f"({', '.join(f'{100 * r:.0f}' for r in ab['with catalog'])}) against "
        f"{100 * without:.0f} % without "
        f"({', '.join(f'{100 * r:.0f}' for r in ab['without'])}): about "
        f"{cost_ms:+.2f} ms per image at this run's compute bound "
        f"({bound['per_image_ms']:.2f} ms per image). Two writes per image here (processing, "
        "done); `benchmarks/catalog.py` times one write alone.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "bccd",
                        help="BCCD (VOC) folder; default ../shared/data/bccd, else the "
                        "committed samples")
    parser.add_argument("--model", type=Path, default=REPO / "models" / "bccd")
    parser.add_argument("--images", type=int, default=500, help="uploads per throughput run")
    parser.add_argument("--repeats", type=int, default=3, help="throughput runs per setting")
    parser.add_argument("--latency-images", type=int, default=200)
    parser.add_argument("--instances", default="1,2")
    parser.add_argument("--cold-starts", type=int, default=3)
    parser.add_argument("--skip-emulators", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    data = args.data if args.data.is_dir() else REPO / "tests" / "data" / "samples"
    images = load_images(data)
    instances = [int(v) for v in args.instances.split(",")]
    print(f"compute bound over {len(images)} images...", file=sys.stderr)
    bound = compute_bound(images, args.model)
    print(f"  {bound['per_image_ms']:.2f} ms/image, {bound['images_per_s']:.1f} images/s",
          file=sys.stderr)
    meter = BoundMeter(images, args.model)
    ab = catalog_ab(images, args.model, args.images, args.repeats, meter)
    summaries = embedded_runs(images, args.model, args.images, instances, args.repeats,
                              args.latency_images, meter)
    cold: dict[str, float] = {}
    if not args.skip_emulators:
        emulated, cold = emulator_runs(images, args.model, args.images, instances,
                                       args.repeats, args.latency_images, args.cold_starts,
                                       meter)
        summaries += emulated
    source = "../shared/data/bccd" if data == args.data else "tests/data/samples"
    body = render(bound, summaries, cold, len(images), source, Manifest.read(args.model),
                  args.images, args.repeats) + "\n\n" + render_ab(ab, bound, args.images)
    print(body)
    if not args.no_write:
        report.write_section(SECTION, f"## Event pipeline (`benchmarks/pipeline.py`)\n\n{body}")
        print(f"\nwritten to {report.DOCS.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

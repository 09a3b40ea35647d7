"""Capacity on paper, but computed: what 1k, 1M and 100M images a day need on Google Cloud, what
they cost, and which quota or hot spot is hit first. Writes its section of docs/scaling.md.

    .venv/bin/python benchmarks/capacity.py              # measures CPU per image first (~20 s)
    .venv/bin/python benchmarks/capacity.py --images 50 --no-write

Inputs, each named below with where it comes from:
  * CPU seconds per image of each function: measured here, the median over the images: the
    real handlers, in this process, over local folders with the SQLite catalog, on the BCCD
    samples (CPU only: on Cloud Run, storage and Pub/Sub calls add waiting, not CPU; on a
    busy machine CPU time per image grows too, so the load is printed with the figures);
  * each function's memory: its Cloud Run allocation (detectflow/topology.py), which holds the
    measured peaks (docs/architecture.md, "Memory");
  * catalog writes per image: 3 for an upload through the API (queued, processing, done), 2
    for a file copied into the bucket; their cost: docs/benchmarks.md, catalog section;
  * providers' list prices and published limits: PRICES and LIMITS below (us-central1, list
    prices without free tiers or discounts, as published in 2026; check the pricing pages).
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import report  # benchmarks/report.py

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
SCALING = REPO_ROOT / "docs" / "scaling.md"
SECTION = "capacity"
DAY = 86_400

# --- inputs --------------------------------------------------------------------------------------

# List prices, USD (us-central1; Cloud Run functions 2nd gen bill as Cloud Run services).
PRICES = {
    "run_vcpu_second": 0.000024,  # Cloud Run, request-based billing, tier 1
    "run_gib_second": 0.0000025,
    "run_request": 0.40 / 1e6,
    "pubsub_tib": 40.0,  # message throughput (publish + deliver), 1 KB minimum per message
    "gcs_gib_month": 0.020,  # Standard storage, regional
    "gcs_class_a": 0.005 / 1000,  # writes, lists
    "gcs_class_b": 0.0004 / 1000,  # reads, metadata gets
    "firestore_write": 0.09 / 100_000,  # native mode, regional
    "firestore_read": 0.03 / 100_000,
    "firestore_gib_month": 0.15,
}


@dataclass(frozen=True)
class Limit:
    name: str
    per_second: float  # images/s at which it is reached (computed from the published number)
    published: str
    design: str


@dataclass(frozen=True)
class Inputs:
    preprocess_cpu_s: float
    infer_cpu_s: float
    preprocess_gib: float = 0.5  # topology: memory_mb 512
    infer_gib: float = 1.0  # topology: memory_mb 1024
    io_wait_s: float = 0.05  # per stage: storage and Pub/Sub round trips (estimate)
    catalog_writes: int = 3  # queued + processing + done (API uploads)
    upload_kib: float = 250.0  # an average upload (a phone photo is larger, BCCD smaller)
    work_kib: float = 576.0  # 512x384x3 uint8 .npz, deleted within seconds
    result_kib: float = 3.0  # ~30 detections of JSON
    catalog_kib: float = 1.0  # a catalog document with its index entries
    message_kib: float = 1.0  # Pub/Sub bills at least 1 KB per message
    peak_factor: float = 3.0  # the busiest hour against the day's average
    utilisation: float = 0.7  # how busy an instance may run at the peak
    upload_days: int = 30  # uploads bucket lifecycle rule
    max_instances: int = 10  # per function, detectflow/topology.py


def limits(inputs: Inputs) -> list[Limit]:
    """The published limits, as images/s at which each is reached."""
    per_image_writes = inputs.catalog_writes
    busiest_stage_s = max(inputs.preprocess_cpu_s, inputs.infer_cpu_s) + inputs.io_wait_s
    return [
        Limit("Cloud Run max instances (this topology: 10 per function)",
              inputs.max_instances * inputs.utilisation / busiest_stage_s,
              "max_instances = 10 (topology); project default quota 100 per service",
              "raise max_instances in detectflow/topology.py (Terraform reads it); each "
              "instance runs one image at a time, so throughput grows linearly"),
        Limit("Firestore: sequentially increasing indexed field (created_ms, updated)",
              500 / per_image_writes,
              "~500 writes/s to a collection whose indexed field increases monotonically",
              "catalog writes are best effort (a throttled write never fails an image; the "
              "stuck pass repairs it); above it: drop the `processing` write (2 per image), "
              "then shard the collection (a `shard` field leading the composite indexes, the "
              "API merging one stream per shard)"),
        Limit("Cloud Storage: sequential object names per bucket",
              1000,
              "~1,000 object writes/s per bucket to start, more after gradual ramp-up, "
              "unless names are sequential (ids start with the time)",
              "with the catalog ordering the gallery, ids need not sort by time: put their "
              "random half first (layout.new_image_id) before sustaining ~1,000 uploads/s"),
        Limit("Firestore: writes per database",
              10_000 / per_image_writes,
              "10,000 writes/s per database (soft; higher after ramp-up)",
              "the same sharding, or one database per region"),
        Limit("Cloud Run max instances (project default quota)",
              100 * inputs.utilisation / busiest_stage_s,
              "100 instances per service by default (quota increase on request)",
              "request a quota increase; the functions are stateless"),
    ]


# --- measuring CPU per image ----------------------------------------------------------------------


class CapturingBus:
    """An EventBus that keeps what is published (the next stage's input)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str]]] = []

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        self.published.append((topic, data, attributes or {}))
        return str(len(self.published))


def measure(images: int = 200) -> tuple[float, float, float]:
    """(preprocess CPU s, infer CPU s, max RSS MiB) per image: the real handlers over local
    folders and a SQLite catalog, the BCCD samples cycled."""
    from detectflow.bus import Message
    from detectflow.catalog.sqlite import SqliteCatalog
    from detectflow.layout import new_image_id, upload_key
    from detectflow.model.registry import publish_bundle
    from detectflow.pipeline.events import StorageObject, storage_notification
    from detectflow.pipeline.handlers import PipelineHandlers
    from detectflow.settings import load_settings
    from detectflow.storage import Buckets

    samples = sorted((REPO_ROOT / "tests" / "data" / "samples" / "JPEGImages").glob("*.jpg"))
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(storage="local", bus="memory", data_dir=Path(tmp) / "data",
                                 model_cache_dir=Path(tmp) / "cache")
        buckets = Buckets.local(settings.data_dir)
        publish_bundle(buckets.models, REPO_ROOT / "models" / "bccd")
        bus = CapturingBus()
        handlers = PipelineHandlers.from_settings(settings, buckets, bus,  # type: ignore[arg-type]
                                                  catalog=SqliteCatalog(Path(tmp) / "c.db"))
        pre_cpu: list[float] = []
        inf_cpu: list[float] = []
        for n in range(images + 10):
            data = samples[n % len(samples)].read_bytes()
            info = buckets.uploads.put(upload_key(new_image_id(), "x.jpg"), data, "image/jpeg")
            obj = StorageObject(bucket=buckets.uploads.bucket, name=info.key,
                                generation=info.generation, size=info.size)
            body, attributes = storage_notification(obj)
            started = time.process_time()
            handlers.preprocess_message(Message(body, attributes))
            middle = time.process_time()
            _, prepared, prepared_attributes = bus.published[-1]
            handlers.infer_message(Message(prepared, prepared_attributes))
            done = time.process_time()
            if n >= 10:  # after the model is loaded and caches are warm
                pre_cpu.append(middle - started)
                inf_cpu.append(done - middle)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return statistics.median(pre_cpu), statistics.median(inf_cpu), rss_mib


# --- the model ------------------------------------------------------------------------------------


@dataclass
class Scale:
    per_day: int
    inputs: Inputs

    @property
    def average(self) -> float:
        return self.per_day / DAY

    @property
    def peak(self) -> float:
        return self.average * self.inputs.peak_factor

    def instances(self, cpu_s: float) -> int:
        service_s = cpu_s + self.inputs.io_wait_s  # one image at a time per instance
        return max(1, math.ceil(self.peak * service_s / self.inputs.utilisation))

    def pubsub_messages(self) -> int:
        # published: upload notice, prepared notice, result notice; delivered: two pushes
        return self.per_day * 5

    def firestore_writes(self) -> int:
        return self.per_day * self.inputs.catalog_writes

    def gcs_class_a(self) -> int:
        return self.per_day * 3  # upload, work object, result (work delete is free)

    def gcs_class_b(self) -> int:
        return self.per_day * 3  # result stat (preprocess), upload get, work get

    def storage_gib_month(self) -> float:
        uploads = self.per_day * self.inputs.upload_days * self.inputs.upload_kib
        results_year = self.per_day * 365 * self.inputs.result_kib
        return (uploads + results_year) / 2**20

    def catalog_gib_year(self) -> float:
        return self.per_day * 365 * self.inputs.catalog_kib / 2**20

    def cost_per_day(self) -> dict[str, float]:
        i, p = self.inputs, PRICES
        compute = self.per_day * (
            (i.preprocess_cpu_s + i.io_wait_s) * (p["run_vcpu_second"]
                                                  + i.preprocess_gib * p["run_gib_second"])
            + (i.infer_cpu_s + i.io_wait_s) * (p["run_vcpu_second"]
                                               + i.infer_gib * p["run_gib_second"])
            + 2 * p["run_request"])
        pubsub = self.pubsub_messages() * i.message_kib / 2**30 * p["pubsub_tib"]
        gcs_ops = self.gcs_class_a() * p["gcs_class_a"] + self.gcs_class_b() * p["gcs_class_b"]
        gcs_storage = self.storage_gib_month() * p["gcs_gib_month"] / 30
        firestore = (self.firestore_writes() * p["firestore_write"]
                     + self.catalog_gib_year() * p["firestore_gib_month"] / 30)
        return {"functions": compute, "pubsub": pubsub, "storage ops": gcs_ops,
                "storage (1st year)": gcs_storage, "catalog": firestore}

    def first_limit(self) -> Limit | None:
        hit = [limit for limit in limits(self.inputs) if self.peak >= limit.per_second]
        return min(hit, key=lambda limit: limit.per_second) if hit else None


def fmt(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def tables(inputs: Inputs, measured: str) -> str:
    scales = [Scale(n, inputs) for n in (1_000, 1_000_000, 100_000_000)]
    out = [
        "## The numbers (`benchmarks/capacity.py`)",
        "",
        f"{measured}",
        "",
        f"Inputs: preprocess {inputs.preprocess_cpu_s * 1e3:.1f} ms and infer "
        f"{inputs.infer_cpu_s * 1e3:.1f} ms of CPU per image (plus an estimated "
        f"{inputs.io_wait_s * 1e3:.0f} ms of storage and Pub/Sub waits per stage), "
        f"{inputs.preprocess_gib:g} and {inputs.infer_gib:g} GiB per instance, one image at a "
        f"time, {inputs.utilisation:.0%} busy at a peak hour of {inputs.peak_factor:g}× the "
        f"day's average; {inputs.catalog_writes} catalog writes per image; uploads of "
        f"{inputs.upload_kib:g} KiB kept {inputs.upload_days} days, results kept.",
        "",
        "| images per day | 1k | 1M | 100M |",
        "|---|---:|---:|---:|",
        "| average / peak images/s | " + " | ".join(
            f"{s.average:.3g} / {s.peak:.3g}" for s in scales) + " |",
        "| preprocess instances at the peak | " + " | ".join(
            str(s.instances(inputs.preprocess_cpu_s)) for s in scales) + " |",
        "| infer instances at the peak | " + " | ".join(
            str(s.instances(inputs.infer_cpu_s)) for s in scales) + " |",
        "| Pub/Sub messages per day (3 published, 2 pushed per image) | " + " | ".join(
            fmt(s.pubsub_messages()) for s in scales) + " |",
        "| Firestore writes per day / at the peak per s | " + " | ".join(
            f"{fmt(s.firestore_writes())} / {s.peak * inputs.catalog_writes:.3g}"
            for s in scales) + " |",
        "| Cloud Storage writes / reads per day | " + " | ".join(
            f"{fmt(s.gcs_class_a())} / {fmt(s.gcs_class_b())}" for s in scales) + " |",
        "| storage after a year (uploads 30 d + results) | " + " | ".join(
            f"{s.storage_gib_month():.3g} GiB" for s in scales) + " |",
        "| catalog after a year | " + " | ".join(
            f"{s.catalog_gib_year():.3g} GiB" for s in scales) + " |",
    ]
    for part in scales[0].cost_per_day():
        out.append(f"| cost per day: {part} | " + " | ".join(
            f"${s.cost_per_day()[part]:.4g}" for s in scales) + " |")
    out.append("| **cost per million images** | " + " | ".join(
        f"**${sum(s.cost_per_day().values()) / s.per_day * 1e6:.2f}**" for s in scales) + " |")
    out.append("| first limit reached at the peak | " + " | ".join(
        (s.first_limit().name if s.first_limit() else "none") for s in scales) + " |")
    out += ["", "Limits, in the order they are reached (images/s at the peak):", "",
            "| limit | reached at | published | what the design does |",
            "|---|---:|---|---|"]
    for limit in sorted(limits(inputs), key=lambda item: item.per_second):
        out.append(f"| {limit.name} | {limit.per_second:,.0f} images/s "
                   f"({limit.per_second * DAY / inputs.peak_factor / 1e6:,.1f}M/day) | "
                   f"{limit.published} | {limit.design} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    pre, inf, rss = measure(args.images)
    measured = (f"Measured on {args.images} BCCD images (the real handlers, local folders, "
                f"SQLite catalog, one process: max RSS {rss:.0f} MiB; median CPU time per "
                "image and stage). " + report.machine_line() + " Other jobs share these two "
                "cores; CPU time per image grows under such load (the pipeline benchmark's "
                "compute bound, measured on a quiet machine, is the lower figure).")
    body = tables(Inputs(preprocess_cpu_s=pre, infer_cpu_s=inf), measured)
    print(body)
    if not args.no_write:
        report.write_section(SECTION, body, path=SCALING)


if __name__ == "__main__":
    main()

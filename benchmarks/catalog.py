"""Catalog benchmark: the read side and operations cost O(page), not O(bucket). Writes its
section of docs/benchmarks.md.

    .venv/bin/python benchmarks/catalog.py                     # everything (~15 min)
    .venv/bin/python benchmarks/catalog.py --sqlite 10000,100000 --firestore 10000 \\
        --uploads 10000 --missing 100 --skip-crash --no-write  # a quick look

1. Gallery page vs catalog size: the web app (create_app, one uvicorn process) over a catalog
   of N bulk-inserted synthetic records, SQLite at 10k/100k/1M and the Firestore emulator at
   10k/100k: GET /api/images?limit=24, the same with label= (and status=done), against a
   single-image GET /api/images/{id} measured in the same run (interleaved), p50/p95.
2. What one catalog write costs (SQLite file; Firestore emulator over gRPC).
3. Reconcile over U uploads of which M lack a result (local folders, the real CLI): the ids
   it re-drives, the scan time; then the idle CPU of `detectflow up` holding those images.
4. Crash: 100 uploads accepted (202), SIGKILL of the whole `detectflow up` process group,
   restart on the same --data-dir: results, lost, duplicated; embedded and local cloud.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import report  # benchmarks/report.py (this script's folder is on sys.path)

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from detectflow.catalog import Catalog, CatalogRecord  # noqa: E402
from detectflow.catalog.entries import id_time_ms  # noqa: E402
from detectflow.catalog.sqlite import SqliteCatalog  # noqa: E402
from detectflow.launcher.processes import (  # noqa: E402
    ManagedProcess,
    http_get,
)
from detectflow.launcher.services import port_in_use, start_firestore_emulator  # noqa: E402
from detectflow.launcher.testing import (  # noqa: E402
    free_port,
    free_ports,
    start_detectflow_up,
    up_port_flags,
)
from detectflow.layout import new_image_id, result_key, upload_key  # noqa: E402
from detectflow.records import ResultRecord, SourceObject  # noqa: E402

SECTION = "catalog"
MODEL = REPO_ROOT / "models" / "bccd"
SAMPLES = sorted((REPO_ROOT / "tests" / "data" / "samples" / "JPEGImages").glob("*.jpg"))
PROJECT = "detectflow-bench"
CLASSES = ("RBC", "WBC", "Platelets")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", default="10000,100000,1000000",
                        help="SQLite catalog sizes (default: %(default)s)")
    parser.add_argument("--firestore", default="10000,100000",
                        help="Firestore emulator catalog sizes ('' to skip)")
    parser.add_argument("--requests", type=int, default=200,
                        help="requests per kind and size, SQLite (default: %(default)s)")
    parser.add_argument("--firestore-requests", type=int, default=10,
                        help="the same on the Firestore emulator, whose queries take seconds "
                        "at 100k records (default: %(default)s)")
    parser.add_argument("--uploads", type=int, default=100_000)
    parser.add_argument("--missing", type=int, default=1_000)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--skip-crash", action="store_true")
    parser.add_argument("--state", type=Path, default=Path(tempfile.gettempdir())
                        / "detectflow-catalog-bench.json",
                        help="each step's results are saved here as it ends; --reuse takes "
                        "the steps found there instead of measuring them again")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--serve", nargs=3, metavar=("CATALOG", "BUCKETS", "PORT"),
                        help=argparse.SUPPRESS)  # internal: the web app in its own process
    return parser.parse_args()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def load_line() -> str:
    return f"{os.getloadavg()[0]:.1f}"


# --- synthetic records --------------------------------------------------------------------------

YEAR_MS = 365 * 24 * 3600 * 1000


def synthetic(count: int, start: int, rng: random.Random) -> Iterator[CatalogRecord]:
    """Records spread over a year: 90 % done, 5 % failed, 3 % queued, 2 % processing; done
    ones with RBC, WBC in 60 %, Platelets in 40 %."""
    now_ms = int(time.time() * 1000)
    for n in range(start, start + count):
        created = now_ms - YEAR_MS + int(n * YEAR_MS / 2_000_000)
        image_id = f"{created * 1_000_000:016x}{rng.getrandbits(64):016x}"
        roll = rng.random()
        status = "done" if roll < .90 else "failed" if roll < .95 else (
            "queued" if roll < .98 else "processing")
        counts: dict[str, int] = {}
        if status == "done":
            counts["RBC"] = rng.randint(1, 20)
            if rng.random() < .6:
                counts["WBC"] = rng.randint(1, 2)
            if rng.random() < .4:
                counts["Platelets"] = rng.randint(1, 4)
        yield CatalogRecord(
            image_id=image_id, upload_key=upload_key(image_id, f"img-{n}.jpg"),
            filename=f"img-{n}.jpg", created_ms=id_time_ms(image_id), status=status,
            updated=created / 1000, model_name="bccd" if status == "done" else None,
            model_version="1.1.0" if status == "done" else None,
            detection_count=sum(counts.values()) if status == "done" else None,
            class_counts=counts, error_code="corrupt" if status == "failed" else None)


def fill(catalog: Catalog, have: int, want: int, rng: random.Random) -> float:
    """Bulk-insert records up to `want`; seconds taken."""
    started = time.perf_counter()
    chunk = 50_000
    for offset in range(have, want, chunk):
        catalog.put_many(synthetic(min(chunk, want - offset), offset, rng))
    return time.perf_counter() - started


def real_image(buckets_dir: Path, catalog: Catalog) -> str:
    """One image with a real upload and result (the single-image GET reads the buckets)."""
    from detectflow.catalog import result_entry
    from detectflow.model import Detector
    from detectflow.storage import Buckets

    buckets = Buckets.local(buckets_dir)
    image_id = new_image_id()
    data = SAMPLES[0].read_bytes()
    key = upload_key(image_id, SAMPLES[0].name)
    buckets.uploads.put(key, data, "image/jpeg", metadata={"filename": SAMPLES[0].name})
    from detectflow.records import ImageSize, ModelRef

    detections = list(Detector.load(MODEL).detect(data))
    record = ResultRecord(image_id=image_id, status="done",
                          source=SourceObject(bucket="uploads", name=key,
                                              filename=SAMPLES[0].name),
                          image=ImageSize(width=640, height=480), detections=detections,
                          model=ModelRef(name="bccd", version="1.1.0"))
    buckets.results.put(result_key(image_id), record.model_dump_json().encode())
    catalog.put(result_entry(record))
    return image_id


# --- 1. the gallery page ------------------------------------------------------------------------


def serve(catalog_spec: str, buckets_dir: str, port: str) -> None:
    """The web app alone (no pipeline) over these buckets and catalog: what the page reads."""
    import uvicorn

    from detectflow.model import Manifest
    from detectflow.storage import Buckets
    from frontend.app import create_app

    kind, _, where = catalog_spec.partition(":")
    if kind == "sqlite":
        catalog: Catalog = SqliteCatalog(where)
    else:
        from detectflow.catalog.firestore import FirestoreCatalog

        host, collection = where.rsplit("/", 1)
        catalog = FirestoreCatalog(PROJECT, collection, emulator_host=host)
    manifest = Manifest.read(MODEL)
    app = create_app(Buckets.local(buckets_dir), catalog, lambda: manifest)
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")


@dataclass
class PageRow:
    backend: str
    records: int
    fill_s: float
    timings: dict[str, list[float]]

    def ms(self, kind: str, q: float) -> float:
        return percentile(self.timings[kind], q) * 1e3


def measure_pages(catalog_spec: str, buckets_dir: Path, image_id: str, requests: int
                  ) -> dict[str, list[float]]:
    port = free_port()
    log = buckets_dir / f"serve-{port}.log"
    server = ManagedProcess("web app", [sys.executable, __file__, "--serve", catalog_spec,
                                        str(buckets_dir), str(port)],
                            {**os.environ, "PYTHONPATH": str(REPO_ROOT)}, log).start()
    base = f"http://127.0.0.1:{port}"
    kinds = {"page": "/api/images?limit=24",
             "label": "/api/images?limit=24&label=Platelets",
             "status": "/api/images?limit=24&status=done",
             "single": f"/api/images/{image_id}"}
    timings: dict[str, list[float]] = {kind: [] for kind in kinds}
    try:
        server.ready_or_stop(lambda: http_get(f"{base}/healthz")[0] == 200, 60)
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(10):  # warm-up: connections, caches, the interpreter
                for path in kinds.values():
                    client.get(path).raise_for_status()
            for _ in range(requests):  # interleaved: every kind sees the same load
                for kind, path in kinds.items():
                    started = time.perf_counter()
                    response = client.get(path)
                    timings[kind].append(time.perf_counter() - started)
                    response.raise_for_status()
                    if kind != "single":
                        assert len(response.json()["images"]) == 24, response.text[:300]
    finally:
        server.stop()
    return timings


def sqlite_pages(sizes: list[int], requests: int, work: Path) -> list[PageRow]:
    rows = []
    work.mkdir(parents=True, exist_ok=True)
    catalog = SqliteCatalog(work / "catalog.sqlite3")
    rng = random.Random(1)
    image_id = real_image(work / "buckets", catalog)
    have = 0
    for size in sizes:
        seconds = fill(catalog, have, size, rng)
        have = size
        timings = measure_pages(f"sqlite:{catalog.path}", work / "buckets", image_id, requests)
        rows.append(PageRow("SQLite", size + 1, seconds, timings))
        print_row(rows[-1])
    catalog.close()
    return rows


def firestore_pages(sizes: list[int], requests: int, work: Path) -> list[PageRow]:
    from detectflow.catalog.firestore import FirestoreCatalog

    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    emulator = start_firestore_emulator("127.0.0.1", port, work / "firestore.log", PROJECT)
    rows = []
    try:
        host = f"127.0.0.1:{port}"
        catalog = FirestoreCatalog(PROJECT, "images", emulator_host=host)
        rng = random.Random(2)
        image_id = real_image(work / "buckets", catalog)
        have = 0
        for size in sizes:
            seconds = fill(catalog, have, size, rng)
            have = size
            timings = measure_pages(f"firestore:{host}/images", work / "buckets", image_id,
                                    requests)
            rows.append(PageRow("Firestore emulator", size + 1, seconds, timings))
            print_row(rows[-1])
        catalog.close()
    finally:
        emulator.stop()
    return rows


def print_row(row: PageRow) -> None:
    print(f"{row.backend} {row.records}: page p50 {row.ms('page', 50):.1f} ms, label "
          f"{row.ms('label', 50):.1f} ms, single {row.ms('single', 50):.1f} ms "
          f"(filled in {row.fill_s:.0f} s)", flush=True)


# --- 2. one catalog write -----------------------------------------------------------------------


def write_costs(work: Path, count: int = 300) -> dict[str, float]:
    """Median of single `put`s of a finished record (what the pipeline adds per stage)."""
    costs = {}
    rng = random.Random(3)
    records = list(synthetic(count, 5_000_000, rng))
    sqlite = SqliteCatalog(work / "writes.sqlite3")
    costs["sqlite_ms"] = _median_put(sqlite, records)
    port = free_port()
    emulator = start_firestore_emulator("127.0.0.1", port, work / "fs-writes.log", PROJECT)
    try:
        from detectflow.catalog.firestore import FirestoreCatalog

        firestore = FirestoreCatalog(PROJECT, "writes", emulator_host=f"127.0.0.1:{port}")
        costs["firestore_ms"] = _median_put(firestore, records)
        firestore.close()
    finally:
        emulator.stop()
    return costs


def _median_put(catalog: Catalog, records: list[CatalogRecord]) -> float:
    times = []
    for record in records:
        started = time.perf_counter()
        catalog.put(record)
        times.append(time.perf_counter() - started)
    return statistics.median(times[20:]) * 1e3


# --- 3. reconcile and idle CPU ------------------------------------------------------------------


def make_uploads(data_dir: Path, count: int, missing: int) -> set[str]:
    """`count` uploads in the embedded layout, all but `missing` with a result (and a catalog
    record); the missing ones are real images. Returns the ids without a result."""
    from detectflow.catalog import result_entry, upload_entry

    catalog = SqliteCatalog(data_dir / "catalog.sqlite3")
    uploads, results = data_dir / "uploads", data_dir / "results"
    results.mkdir(parents=True, exist_ok=True)
    lacking: set[str] = set()
    batch: list[CatalogRecord] = []
    for n in range(count):
        image_id = new_image_id()
        name = f"img-{n}.jpg"
        folder = uploads / image_id
        folder.mkdir(parents=True)
        if n % max(1, count // missing) == 0 and len(lacking) < missing:
            (folder / name).write_bytes(SAMPLES[n % len(SAMPLES)].read_bytes())
            lacking.add(image_id)
            batch.append(upload_entry(image_id, f"{image_id}/{name}", "queued"))
        else:
            (folder / name).write_bytes(b"\xff\xd8 placeholder")
            record = ResultRecord(image_id=image_id, status="done",
                                  source=SourceObject(bucket="uploads",
                                                      name=f"{image_id}/{name}"))
            (results / f"{image_id}.json").write_text(record.model_dump_json())
            batch.append(result_entry(record))
        if len(batch) >= 20_000:
            catalog.put_many(batch)
            batch = []
    catalog.put_many(batch)
    catalog.close()
    return lacking


def run_reconcile(data_dir: Path, *args: str) -> tuple[dict[str, object], float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "detectflow.cli", "reconcile", "--data-dir", str(data_dir),
         "--json", *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=1800,
        env={**os.environ, "DETECTFLOW_MODEL_CACHE_DIR": str(data_dir.parent / "cache")})
    if done.returncode != 0:
        raise SystemExit(f"reconcile failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout), time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(data_dir: Path, seconds: float) -> dict[str, float]:
    """% of one core `detectflow up` uses while nobody uses it, after its start-up pass."""
    port = free_port()
    log = data_dir.parent / "up.log"
    started = time.perf_counter()
    up = start_detectflow_up(port, data_dir, log, model=MODEL, timeout=600, cwd=REPO_ROOT,
                             env={"DETECTFLOW_MODEL_CACHE_DIR": str(data_dir.parent / "cache")})
    try:
        assert up.pid is not None
        while "reconcile pass" not in log.read_text():  # the start-up scan is over
            time.sleep(0.5)
        startup_s = time.perf_counter() - started
        startup_cpu = cpu_seconds(up.pid)
        time.sleep(5)
        before, t0 = cpu_seconds(up.pid), time.perf_counter()
        time.sleep(seconds)
        used, wall = cpu_seconds(up.pid) - before, time.perf_counter() - t0
        rss = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{up.pid}/status").read_text())
                  .group(1)) / 1024  # type: ignore[union-attr]
    finally:
        up.stop(grace=30)
    return {"idle_pct": 100 * used / wall, "idle_seconds": wall, "startup_s": startup_s,
            "startup_cpu_s": startup_cpu, "rss_mb": rss}


# --- 4. crash and restart -----------------------------------------------------------------------


@dataclass
class CrashRow:
    backend: str
    accepted: int
    done_before: int
    done_after: int
    failed: int
    lost: int
    duplicated: int | None
    restart_to_all_done_s: float


def crash(backend: str, work: Path) -> CrashRow:
    """100 uploads (5 requests of 20), SIGKILL of the whole group, restart, wait."""
    data = work / backend
    work.mkdir(parents=True, exist_ok=True)
    extra = ["--emulators", *up_port_flags(free_ports())] if backend == "emulators" else []
    port = free_port()
    env = {"DETECTFLOW_MODEL_CACHE_DIR": str(work / f"cache-{backend}"),
           "DETECTFLOW_LOG_LEVEL": "INFO"}
    log = work / f"up-{backend}.log"
    up = start_detectflow_up(port, data, log, model=MODEL, env=env, extra_args=extra,
                             timeout=180, cwd=REPO_ROOT)
    base = f"http://127.0.0.1:{port}"
    ids: list[str] = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for batch in range(5):
            files = [("file", (f"b{batch}-{i}.jpg", SAMPLES[i % len(SAMPLES)].read_bytes(),
                               "image/jpeg")) for i in range(20)]
            response = client.post("/api/images", files=files)
            assert response.status_code == 202
            ids += [image["id"] for image in response.json()["images"]]
    up.kill()  # SIGKILL to the group; the emulators and functions follow (parent death)
    results = (data / "local-cloud" / "gcs" / "detectflow-results" if backend == "emulators"
               else data / "results")
    done_before = len(list(results.glob("*.json")))
    if extra:  # wait until the old services' ports are free
        ports = [int(p) for p in extra[2::2]]
        while any(port_in_use("127.0.0.1", p) for p in ports):
            time.sleep(0.2)
    restarted = time.perf_counter()
    up = start_detectflow_up(port, data, log, model=MODEL, env=env, extra_args=extra,
                             timeout=180, cwd=REPO_ROOT)
    statuses: dict[str, str] = {}
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                for image_id in ids:
                    if statuses.get(image_id) not in ("done", "failed"):
                        statuses[image_id] = client.get(f"/api/images/{image_id}").json()[
                            "status"]
                if all(s in ("done", "failed") for s in statuses.values()):
                    break
                time.sleep(0.5)
        all_done_s = time.perf_counter() - restarted
    finally:
        up.stop(grace=60)
    written = len(list(results.glob("*.json")))
    recorded = re.findall(r"result recorded image_id=([0-9a-f]{32})", log.read_text())
    duplicated = len(recorded) - len(set(recorded)) if backend == "embedded" else None
    return CrashRow(backend, len(ids), done_before,
                    sum(1 for s in statuses.values() if s == "done"),
                    sum(1 for s in statuses.values() if s == "failed"),
                    sum(1 for s in statuses.values() if s not in ("done", "failed")),
                    duplicated if duplicated is not None else written - len(set(ids)),
                    all_done_s)


# --- the report ---------------------------------------------------------------------------------


def section(pages: list[PageRow], writes: dict[str, float], recon: dict[str, object],
            idle: dict[str, float], crashes: list[CrashRow], args: argparse.Namespace,
            loads: tuple[str, str], machine: str) -> str:
    lines = [
        "## Catalog: the gallery, reconcile and restarts at scale (`benchmarks/catalog.py`)",
        "",
        f"`.venv/bin/python benchmarks/catalog.py` — {machine} 1-min load "
        f"average {loads[0]} at the start, {loads[1]} at the end: other engineers' jobs and "
        "a training run share these two cores, so absolute times are noisy; the ratios are "
        "measured side by side, interleaved, in one run.",
        "",
        "**Gallery page vs catalog size.** The web app alone (one uvicorn process, no "
        "pipeline) over a catalog of N bulk-inserted synthetic records (90 % done, spread over "
        "a year); a keep-alive client in another process; "
        f"{args.requests} requests of each kind on SQLite, {args.firestore_requests} on the "
        "Firestore emulator, interleaved. Ratio = page p50 / single-image p50 (the target: "
        "≤ 10×). The single-image GET reads the buckets (local folders here), not the "
        "catalog.",
        "",
        "| catalog | records | page `limit=24` p50 / p95 | `label=Platelets` p50 / p95 | "
        "`status=done` p50 / p95 | single image p50 / p95 | page ÷ single | label ÷ single |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in pages:
        single = row.ms("single", 50)
        lines.append(
            f"| {row.backend} | {row.records:,} | {row.ms('page', 50):.1f} / "
            f"{row.ms('page', 95):.1f} ms | {row.ms('label', 50):.1f} / "
            f"{row.ms('label', 95):.1f} ms | {row.ms('status', 50):.1f} / "
            f"{row.ms('status', 95):.1f} ms | {single:.1f} / {row.ms('single', 95):.1f} ms | "
            f"{row.ms('page', 50) / single:.2f}× | {row.ms('label', 50) / single:.2f}× |")
    firestore = [row for row in pages if row.backend.startswith("Firestore")]
    if len(firestore) >= 2:
        small, large = firestore[0], firestore[-1]
        growth = large.ms("page", 50) / small.ms("page", 50)
        lines += [
            "",
            f"SQLite meets the target at every size, and its page time does not follow the "
            f"catalog's size. The Firestore emulator does not: from {small.records:,} to "
            f"{large.records:,} records its page time grew {growth:.0f}× (the single-image "
            "GET, which does not touch it, stayed flat): the emulator's query time follows "
            "the number of documents in the collection, as if it went through all of them "
            "for each query. Cloud Firestore answers these queries from the composite "
            "indexes infra/terraform declares, and documents its query time as "
            "proportional to the result set, not the collection; that is not measured here "
            "(no cloud access). For the local cloud this means a gallery of tens of "
            "thousands of images pages in seconds: use the embedded backend (SQLite) for "
            "large local collections.",
        ]
    lines += [
        "",
        f"**One catalog write** (`put` of a finished record, median of 280): SQLite file "
        f"{writes['sqlite_ms']:.2f} ms; Firestore emulator {writes['firestore_ms']:.2f} ms "
        "(gRPC, one round trip; a real Firestore write is a network round trip of the same "
        "kind). An upload through the API costs three: `queued` (API), `processing` "
        "(preprocess), `done`/`failed` (where the result is recorded); what they cost inside "
        "the pipeline is what `benchmarks/pipeline.py`'s runs with and without the catalog "
        "measure.",
        "",
        f"**Reconcile** over {recon['uploads']:,} uploads in local folders of which "
        f"{recon['missing']:,} have no result (the real CLI, `detectflow reconcile "
        "--older-than 0`; catalog in step): it re-drove "
        f"{recon['redriven']:,} — exactly the ids without a result: {recon['exact']}; "
        f"scan (list uploads, list results, compare with the catalog): "
        f"{recon['scan_s']:.1f} s; the whole command, including processing the "
        f"{recon['redriven']:,} re-driven images: {recon['wall_s']:.1f} s. A second run "
        f"re-drove {recon['second']}.",
        "",
        f"**Idle CPU** of `detectflow up` (embedded) holding those {recon['uploads']:,} "
        f"stored images, after its start-up pass ({idle['startup_s']:.1f} s to ready and "
        f"scanned, {idle['startup_cpu_s']:.1f} s of CPU, once): "
        f"**{idle['idle_pct']:.2f} % of one core** over {idle['idle_seconds']:.0f} s "
        f"(RSS {idle['rss_mb']:.0f} MB). The issue measured 47-57 % of a core with 20,000 "
        "files before the watcher listened for events instead of polling every file.",
    ]
    if crashes:
        lines += [
            "",
            "**Crash**: 100 uploads accepted (5 requests of 20, each 202), SIGKILL of the "
            "whole `detectflow up` process group at once, restart on the same `--data-dir`; "
            "then every accepted id is polled until done or failed. Duplicated: results "
            "recorded twice for one id (from the log, embedded) or results beyond one per id "
            "(in the bucket, local cloud).",
            "",
            "| backend | accepted | results at the crash | done after restart | failed | "
            "lost | duplicated | restart → all done |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in crashes:
            lines.append(f"| {c.backend} | {c.accepted} | {c.done_before} | {c.done_after} | "
                         f"{c.failed} | {c.lost} | {c.duplicated} | "
                         f"{c.restart_to_all_done_s:.1f} s |")
    return "\n".join(lines)


class Steps:
    """Results of each step, saved as soon as it ends (a long run that fails late keeps the
    steps it finished; --reuse picks them up)."""

    def __init__(self, path: Path, reuse: bool) -> None:
        self.path = path
        self.saved: dict[str, object] = (
            json.loads(path.read_text()) if reuse and path.is_file() else {})

    def run(self, name: str, measure: Callable[[], object]) -> object:
        if name not in self.saved:
            self.saved[name] = measure()
            self.path.write_text(json.dumps(self.saved))
        else:
            print(f"{name}: reused from {self.path}", flush=True)
        return self.saved[name]


def main() -> None:
    args = parse_args()
    if args.serve:
        serve(*args.serve)
        return
    steps = Steps(args.state, args.reuse)
    meta = steps.run("machine", lambda: {"line": report.machine_line(), "load": load_line()})
    work = Path(tempfile.mkdtemp(prefix="detectflow-catalog-bench-"))
    try:
        pages = [PageRow(**row) for row in steps.run("pages_sqlite", lambda: [
            vars(row) for row in sqlite_pages([int(s) for s in args.sqlite.split(",") if s],
                                              args.requests, work / "sqlite")])]
        pages += [PageRow(**row) for row in steps.run("pages_firestore", lambda: [
            vars(row) for row in firestore_pages(
                [int(s) for s in args.firestore.split(",") if s], args.firestore_requests,
                work / "firestore")])]
        writes = steps.run("writes", lambda: write_costs(work))
        print(f"one write: {writes}", flush=True)
        recon, idle = steps.run("reconcile_idle", lambda: reconcile_and_idle(args, work))
        crashes = [] if args.skip_crash else [CrashRow(**row) for row in steps.run(
            "crash", lambda: [vars(crash(b, work / "crash")) for b in ("embedded", "emulators")])]
        for c in crashes:
            print(c, flush=True)
        end = steps.run("end", lambda: {"load": load_line()})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    body = section(pages, writes, recon, idle, crashes, args,
                   (meta["load"], end["load"]), meta["line"])  # type: ignore[index]
    print(body)
    if not args.no_write:
        report.write_section(SECTION, body)


def reconcile_and_idle(args: argparse.Namespace, work: Path
                       ) -> tuple[dict[str, object], dict[str, float]]:
    data = work / "reconcile" / "data"
    lacking = make_uploads(data, args.uploads, args.missing)
    dry, _ = run_reconcile(data, "--older-than", "0", "--dry-run")
    wet, wall = run_reconcile(data, "--older-than", "0")
    second, _ = run_reconcile(data, "--older-than", "0", "--dry-run")
    redriven = set(wet["redriven_ids"])  # type: ignore[call-overload]
    recon = {"uploads": args.uploads, "missing": len(lacking), "redriven": len(redriven),
             "exact": "yes" if set(dry["redriven_ids"]) == lacking  # type: ignore[call-overload]
             and redriven == lacking else "NO",
             "scan_s": float(wet["seconds"]),  # type: ignore[arg-type]
             "wall_s": wall, "second": second["redriven"]}
    print(f"reconcile: {recon}", flush=True)
    idle = idle_cpu(data, args.idle_seconds)
    print(f"idle: {idle}", flush=True)
    return recon, idle


if __name__ == "__main__":
    main()

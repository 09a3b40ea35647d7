"""Benchmark: the REST API on the embedded backend, as a client sees it.

    .venv/bin/python benchmarks/api.py --data ../shared/data/bccd/JPEGImages --images 200

Starts `detectflow up` (one process: one uvicorn worker + the embedded pipeline + the bundled
model) on a free port with a fresh data folder, then measures:

1. upload -> result latency seen by the client: POST /api/images, then long-poll
   GET /api/images/{id}?wait=30 until `done`; one image in flight at a time, then several
   (clients in parallel), p50/p95/p99 and images/s;
2. GET /api/images/{id} requests/s on finished images (and GET /healthz, the framework's own
   floor, for scale), from a light keep-alive HTTP/1.1 client (asyncio streams, so the
   client is not the bottleneck on two cores) with several connections.

Prints a table and writes it to docs/benchmarks.md between the `api` markers. `--url` runs the
same measurements against a server that is already running (no server is started then).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import report  # benchmarks/report.py (this script's folder is on sys.path)

from detectflow.launcher.testing import free_port, start_detectflow_up

REPO_ROOT = Path(__file__).resolve().parent.parent
SECTION = "api"
SAMPLES = REPO_ROOT / "tests" / "data" / "samples" / "JPEGImages"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("../shared/data/bccd/JPEGImages"),
        help="folder of images to upload (default: %(default)s; falls back to "
        "the committed samples when missing)",
    )
    parser.add_argument("--images", type=int, default=200, help="uploads per latency run")
    parser.add_argument(
        "--parallel",
        type=int,
        default=4,
        help="clients in parallel for the loaded latency run (default: 4)",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each req/s run")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "bccd")
    parser.add_argument("--url", default=None, help="benchmark this running server instead")
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser.parse_args()


# --- the server -------------------------------------------------------------------------------


@contextmanager
def detectflow_up(model: Path) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="detectflow-bench-") as tmp:
        port = free_port()
        process = start_detectflow_up(
            port, Path(tmp) / "data", Path(tmp) / "server.log", model=model,
            env={"DETECTFLOW_MODEL_CACHE_DIR": f"{tmp}/model-cache"},
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.stop(grace=15)


def image_files(folder: Path) -> list[Path]:
    source = folder if folder.is_dir() else SAMPLES
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise SystemExit(f"no images in {source}")
    return files


def upload_and_wait(client: httpx.Client, path: Path, data: bytes) -> tuple[float, str, dict]:
    """Seconds from the start of the upload to the client holding the result."""
    start = time.perf_counter()
    response = client.post("/api/images", files={"file": (path.name, data, "image/jpeg")})
    response.raise_for_status()
    url = response.json()["images"][0]["url"]
    while True:
        body = client.get(url, params={"wait": 30}).json()
        if body["status"] in ("done", "failed"):
            return time.perf_counter() - start, body["id"], body
        # (only reached if a result takes longer than one 30 s long-poll)


def latency_run(
    base: str, files: list[Path], count: int, parallel: int
) -> tuple[list[float], float, list[str], list[dict]]:
    """`count` uploads by `parallel` clients, each with one image in flight at a time."""
    payloads = [(files[i % len(files)], files[i % len(files)].read_bytes()) for i in range(count)]
    latencies: list[float] = []
    ids: list[str] = []
    bodies: list[dict] = []
    lock = threading.Lock()
    cursor = iter(range(count))

    def client_loop() -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                seconds, image_id, body = upload_and_wait(client, *payloads[index])
                with lock:
                    latencies.append(seconds)
                    ids.append(image_id)
                    bodies.append(body)

    start = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - start, ids, bodies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# --- requests per second ----------------------------------------------------------------------


async def _connection(
    host: str,
    port: int,
    paths: list[str],
    stop_at: float,
    latencies: list[float],
    errors: list[str],
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    done = 0
    try:
        while time.perf_counter() < stop_at:
            path = paths[done % len(paths)]
            start = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                errors.append(str(status))
            done += 1
    finally:
        writer.close()
    return done


async def _requests_per_second(
    base: str, paths: list[str], seconds: float, connections: int
) -> tuple[float, list[float], list[str]]:
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    stop_at = start + seconds
    counts = await asyncio.gather(
        *(
            _connection(host, port, paths[i::connections] or paths, stop_at, latencies, errors)
            for i in range(connections)
        )
    )
    return sum(counts) / (time.perf_counter() - start), latencies, errors


def requests_per_second(
    base: str, paths: list[str], seconds: float, connections: int
) -> tuple[float, list[float], list[str]]:
    asyncio.run(_requests_per_second(base, paths, 0.5, connections))  # warm-up
    return asyncio.run(_requests_per_second(base, paths, seconds, connections))


# --- report -----------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def measure(args: argparse.Namespace, base: str) -> tuple[str, str]:
    files = image_files(args.data)
    latency_run(base, files, 5, 1)  # warm-up: first inference, page cache
    load_before = os.getloadavg()[0]
    rows = [
        "| measurement | clients | n | p50 | p95 | p99 | throughput |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    all_ids: list[str] = []
    lost = 0
    recorded: dict[str, list[float]] = {"upload_to_result_ms": [], "inference_ms": []}
    for parallel in (1, args.parallel):
        latencies, wall, ids, bodies = latency_run(base, files, args.images, parallel)
        all_ids += ids
        lost += sum(1 for b in bodies if b["status"] != "done")
        for name, values in recorded.items():
            values += [b["timings_ms"][name] for b in bodies if name in b["timings_ms"]]
        rows.append(
            f"| upload → result (ms) | {parallel} | {len(latencies)} | "
            f"{ms(percentile(latencies, 50))} | {ms(percentile(latencies, 95))} | "
            f"{ms(percentile(latencies, 99))} | "
            f"{len(latencies) / wall:.1f} images/s |"
        )
    detail_paths = [f"/api/images/{i}" for i in all_ids]
    for name, paths in (("GET /api/images/{id}", detail_paths), ("GET /healthz", ["/healthz"])):
        rate, latencies, errors = requests_per_second(base, paths, args.seconds, args.connections)
        if errors:
            raise SystemExit(f"{name}: {len(errors)} non-200 answers, e.g. {errors[:3]}")
        rows.append(
            f"| {name} (ms) | {args.connections} conn. | {len(latencies)} | "
            f"{percentile(latencies, 50) * 1000:.1f} | {percentile(latencies, 95) * 1000:.1f} | "
            f"{percentile(latencies, 99) * 1000:.1f} | **{rate:.0f} req/s** |"
        )
    pipeline_ms = {k: statistics.median(v) if v else float("nan") for k, v in recorded.items()}
    server = (
        f"The server at {args.url}"
        if args.url
        else "`detectflow up` (embedded: local folders, in-process bus, 1 pipeline worker per "
        f"stage, one uvicorn worker) with the bundled `{args.model.name}` model"
    )
    context = (
        f"{server}; {args.images} uploads "
        f"per row from `{image_files(args.data)[0].parent.name}` ({len(files)} files, cycled), "
        f"each client keeps one image in flight (POST, then long-poll `?wait=30`). Not done: "
        f"{lost} of {2 * args.images}. The pipeline's own record (median over both rows): "
        f"upload → result {pipeline_ms['upload_to_result_ms']:.1f} ms, of which inference "
        f"{pipeline_ms['inference_ms']:.1f} ms (from the stored object's time to the result "
        f"write); the client also sees the upload request, the result read and the long-poll "
        f"tick (20 ms). Requests/s: {args.seconds:.0f} s per row, keep-alive HTTP/1.1 from an "
        f"asyncio client in another process, over the {len(detail_paths)} finished images. "
        f"Machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}; client, server and pipeline share it; measured "
        f"{time.strftime('%Y-%m-%d')}, 1-min load average {load_before:.1f} before / "
        f"{os.getloadavg()[0]:.1f} after."
    )
    return context, "\n".join(rows)


def main() -> None:
    args = parse_args()
    if args.url:
        context, table = measure(args, args.url.rstrip("/"))
    else:
        with detectflow_up(args.model) as base:
            context, table = measure(args, base)
    print(context)
    print(table)
    if not args.no_write:
        command = (
            f"`.venv/bin/python benchmarks/api.py --data {args.data} --images "
            f"{args.images} --parallel {args.parallel}`"
        )
        body = f"## REST API: upload → result, requests/s\n\n{command}\n\n{context}\n\n{table}"
        report.write_section(SECTION, body)
        print(f"written to {report.DOCS}")


if __name__ == "__main__":
    main()

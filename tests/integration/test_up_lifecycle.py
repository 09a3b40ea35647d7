"""`detectflow up` as a process manager sees it: SIGTERM stops it like Ctrl-C, SIGKILL of `up`
alone leaves no service behind, and after a crash (SIGKILL of the whole process group) a
restart on the same --data-dir finishes every accepted upload exactly once; the local cloud's
gallery survives a restart. Driven as a user would: subprocesses, HTTP, signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from detectflow.launcher.testing import free_port, free_ports, up_port_flags

SAMPLES = sorted((Path(__file__).parents[1] / "data" / "samples" / "JPEGImages").glob("*.jpg"))
UPLOADS = 100


def process_tree() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process, from /proc."""
    tree = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        tree[int(stat.parent.name)] = (int(fields[1]), fields[0])
    return tree


def descendants(pid: int) -> set[int]:
    tree = process_tree()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, (parent, _) in tree.items() if parent in frontier}
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """Those still running (a zombie waiting for a reaper is not)."""
    tree = process_tree()
    return {pid for pid in pids if pid in tree and tree[pid][1] not in ("Z", "X")}


def wait_gone(pids: set[int], timeout: float = 30) -> set[int]:
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive(pids)


class Up:
    """One `detectflow up` subprocess in its own process group."""

    def __init__(self, tmp: Path, model: Path, emulators: bool) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.argv = [sys.executable, "-m", "detectflow.cli", "up", "--port", str(self.port),
                     "--data-dir", str(tmp / "data"), "--model", str(model)]
        if emulators:
            self.argv += ["--emulators", *up_port_flags(free_ports())]
        self.log = tmp / "up.log"
        self.env = {**os.environ, "DETECTFLOW_MODEL_CACHE_DIR": str(tmp / "cache")}
        for name in ("STORAGE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST"):
            self.env.pop(name, None)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> Up:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=log, env=self.env,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=1) as response:
                    if json.load(response).get("model"):
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("detectflow up never served a model:\n"
                             + self.log.read_text()[-3000:])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> int:
        """SIGTERM, as Docker, Kubernetes and systemd do; the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=90)

    def kill_group(self) -> None:
        os.killpg(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=30)

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()


@pytest.fixture
def ups(tmp_path: Path) -> Iterator[list[Up]]:
    started: list[Up] = []
    yield started
    for up in started:
        up.cleanup()


@pytest.mark.emulators
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_stopping_up_alone_leaves_no_service_behind(
        how: signal.Signals, tmp_path: Path, model_bundle: Path, ups: list[Up]) -> None:
    up = Up(tmp_path, model_bundle, emulators=True)
    ups.append(up)
    up.start()
    services = descendants(up.pid)
    # The Pub/Sub and Firestore emulators, fake-gcs-server, three functions (and gunicorn's
    # workers under them).
    assert len(services) >= 6, process_tree()
    os.kill(up.pid, how)  # `up` alone, not its group
    code = up.process.wait(timeout=90) if up.process else None
    if how == signal.SIGTERM:
        assert code == 0, up.log.read_text()[-3000:]
    assert wait_gone(services) == set(), "services outlived detectflow up"


def upload_batch(base: str) -> list[str]:
    """100 uploads in 5 requests of 20: accepted (202) at once, processed after."""
    ids: list[str] = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for batch in range(UPLOADS // 20):
            files = [("file", (f"b{batch}-{i}.jpg", SAMPLES[i % len(SAMPLES)].read_bytes(),
                               "image/jpeg")) for i in range(20)]
            response = client.post("/api/images", files=files)
            assert response.status_code == 202, response.text
            ids += [image["id"] for image in response.json()["images"]]
    return ids


def results_on_disk(tmp: Path, emulators: bool) -> int:
    folder = (tmp / "data" / "local-cloud" / "gcs" / "detectflow-results" if emulators
              else tmp / "data" / "results")
    return len([p for p in folder.glob("*.json")]) if folder.is_dir() else 0


def wait_all_finished(base: str, ids: list[str], timeout: float = 240) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    status: dict[str, str] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        while time.monotonic() < deadline:
            for image_id in ids:
                if status.get(image_id) not in ("done", "failed"):
                    status[image_id] = client.get(f"/api/images/{image_id}").json()["status"]
            if all(s in ("done", "failed") for s in status.values()):
                break
            time.sleep(0.5)
    return status


@pytest.mark.parametrize("emulators", [False, pytest.param(True, marks=pytest.mark.emulators)],
                         ids=["embedded", "emulators"])
def test_crash_then_restart_finishes_every_upload_once(
        emulators: bool, tmp_path: Path, model_bundle: Path, ups: list[Up]) -> None:
    up = Up(tmp_path, model_bundle, emulators)
    ups.append(up)
    up.start()
    services = descendants(up.pid)
    ids = upload_batch(up.base)
    assert len(set(ids)) == UPLOADS
    up.kill_group()  # a crash: `up` and everything in its group, at once
    assert wait_gone(services) == set()
    done_before = results_on_disk(tmp_path, emulators)
    assert done_before < UPLOADS, "everything finished before the crash: nothing was tested"

    up.start()  # the same --data-dir (and ports)
    status = wait_all_finished(up.base, ids)
    assert [i for i in ids if status.get(i) != "done"] == [], status
    assert results_on_disk(tmp_path, emulators) == UPLOADS  # one result each, none twice
    listing = httpx.get(f"{up.base}/api/images", params={"limit": 200}, timeout=60).json()
    assert sorted(image["id"] for image in listing["images"]) == sorted(ids)
    stats = httpx.get(f"{up.base}/api/stats", timeout=60).json()
    assert stats["images"]["done"] == UPLOADS and stats["total"] == UPLOADS

    assert up.stop() == 0
    if emulators:  # the local cloud keeps the gallery across a clean restart too
        up.start()
        again = httpx.get(f"{up.base}/api/images", params={"limit": 200}, timeout=60).json()
        assert sorted(image["id"] for image in again["images"]) == sorted(ids)
        assert {image["status"] for image in again["images"]} == {"done"}
        assert up.stop() == 0


def readme_block(language: str, containing: str) -> str:
    """The README's fenced `language` block that contains `containing`."""
    text = (Path(__file__).parents[2] / "README.md").read_text()
    for block in re.findall(rf"```{language}\n(.*?)```", text, flags=re.S):
        if containing in block:
            return str(block)
    raise AssertionError(f"README has no {language} block with {containing!r}")


@pytest.mark.emulators
def test_uploading_straight_into_the_emulated_bucket_as_the_readme_shows(
        tmp_path: Path, model_bundle: Path, ups: list[Up]) -> None:
    """`up --emulators` prints the exports; in a shell with them, the README's
    google-cloud-storage snippet and its `gcloud storage cp` feed the pipeline, and every
    image shows up done in the gallery."""
    import shutil

    from support.services import unavailable

    up = Up(tmp_path, model_bundle, emulators=True)
    ups.append(up)
    up.start()
    exports = dict(re.findall(r"^export (\w+)=(\S+)$", up.log.read_text(), flags=re.M))
    assert exports["STORAGE_EMULATOR_HOST"].startswith("http://127.0.0.1:")
    assert {"PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT",
            "DETECTFLOW_UPLOADS_BUCKET"} <= exports.keys()
    images = tmp_path / "my-images"
    images.mkdir()
    for sample in SAMPLES:
        shutil.copy(sample, images / sample.name)
    shell = {**{k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")},
             **exports}
    snippet = readme_block("python", "DETECTFLOW_UPLOADS_BUCKET")
    done = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, env=shell,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = {f"batch-1/{p.name}" for p in SAMPLES}
    if shutil.which("gcloud") is None:
        unavailable("gcloud (Google Cloud CLI) is not installed")
    command = readme_block("bash", "gcloud storage cp")
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=shell,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    expected |= {f"batch-2/{p.name}" for p in SAMPLES}

    deadline = time.monotonic() + 120
    names: dict[str, str] = {}
    while time.monotonic() < deadline:
        listing = httpx.get(f"{up.base}/api/images", params={"limit": 200}, timeout=30).json()
        names = {image["id"]: image["status"] for image in listing["images"]}
        if len(names) == len(expected) and set(names.values()) == {"done"}:
            break
        time.sleep(0.5)
    assert len(names) == len(expected) and set(names.values()) == {"done"}, names
    files = {httpx.get(f"{up.base}/api/images/{i}", timeout=30).json()["filename"]
             for i in names}
    assert files == {p.name for p in SAMPLES}

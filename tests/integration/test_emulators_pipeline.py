"""The pipeline on the local cloud: Google's Pub/Sub emulator, fake-gcs-server with its object
events, and both functions under functions-framework (2 worker processes each, sharing one
push subscription), started once for this module and always torn down.

The end-to-end and bad-input tests run the same body on the embedded backend too.
Under CI=true a missing emulator is a failure, not a skip.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.bad_inputs import MAX_BYTES, corpus
from support.matching import assert_matches
from support.services import unavailable

from detectflow.bus import EventBus
from detectflow.bus.pubsub import make_subscriber
from detectflow.launcher.embedded import EmbeddedPipeline
from detectflow.launcher.testing import free_port, free_ports, up_port_flags
from detectflow.layout import image_id_for_upload, new_image_id, upload_key, work_key
from detectflow.model import Detector, Manifest
from detectflow.model.registry import publish_bundle
from detectflow.pipeline.events import PreparedNotice, StorageObject, storage_notification
from detectflow.pipeline.status import image_status
from detectflow.records import ResultRecord, SourceObject
from detectflow.settings import Settings, load_settings
from detectflow.storage import Buckets, make_buckets

pytestmark = pytest.mark.emulators



@dataclasses.dataclass
class Backend:
    """One way of running the pipeline, seen from outside: buckets, a bus, its logs."""

    name: str
    settings: Settings
    buckets: Buckets
    bus: EventBus
    log_text: Callable[[], str]
    diagnostics: Callable[[], str] = lambda: ""

    def upload(self, filename: str, data: bytes, content_type: str = "image/jpeg") -> str:
        image_id = new_image_id()
        self.buckets.uploads.put(upload_key(image_id, filename), data, content_type)
        return image_id

    def wait_results(self, image_ids: list[str], timeout: float = 60) -> list[ResultRecord]:
        deadline = time.monotonic() + timeout
        pending = list(image_ids)
        records: dict[str, ResultRecord] = {}
        while pending and time.monotonic() < deadline:
            for image_id in list(pending):
                _, record = image_status(self.buckets, image_id)
                if record is not None:
                    records[image_id] = record
                    pending.remove(image_id)
            time.sleep(0.05)
        assert not pending, (f"{self.name}: no result for {len(pending)} of {len(image_ids)}"
                             f" {pending[:3]}\n{self.diagnostics()}")
        return [records[i] for i in image_ids]

    def wait_log(self, pattern: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.log_text()):
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: {pattern!r} never logged")


class ListHandler:
    """Collects the embedded pipeline's log lines (it runs in this process)."""

    def __init__(self) -> None:
        import logging

        self.lines: list[str] = []
        self.handler = logging.Handler()
        self.handler.emit = lambda record: self.lines.append(  # type: ignore[method-assign]
            f"{record.getMessage()} {record.__dict__.get('image_id', '')}")
        logging.getLogger("detectflow.pipeline").addHandler(self.handler)
        logging.getLogger("detectflow.pipeline").setLevel(logging.INFO)

    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture(scope="module")
def stack(model_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from detectflow.launcher.emulators import EmulatorConfig, EmulatorStack, EmulatorUnavailable

    name = Manifest.read(model_bundle).name
    # Service logs go to pytest's temporary folder, which keeps the last runs for a look.
    config = EmulatorConfig(model_name=name, instances=2, model_check_seconds=0.5,
                            ports=free_ports(),
                            extra_env={"DETECTFLOW_MAX_IMAGE_BYTES": str(MAX_BYTES)},
                            log_dir=tmp_path_factory.mktemp("emulator-logs"))
    emulators = EmulatorStack(config)
    try:
        emulators.start()
    except EmulatorUnavailable as err:
        unavailable(str(err))
    try:
        publish_bundle(make_buckets(emulators.settings()).models, model_bundle)
        yield emulators
    finally:
        emulators.stop()


@pytest.fixture(scope="module")
def emulators_backend(stack: object) -> Backend:
    from detectflow.bus.pubsub import PubSubBus
    from detectflow.launcher.emulators import EmulatorStack

    assert isinstance(stack, EmulatorStack)
    settings = stack.settings(max_image_bytes=MAX_BYTES)
    def diagnostics() -> str:
        return "\n".join(f"--- {name} log (tail):\n{process.log_tail(4000)}"
                         for name, process in stack.processes.items())

    return Backend("emulators", settings, make_buckets(settings),
                   PubSubBus(stack.config.project, stack.pubsub_host),
                   lambda: stack.function_log("preprocess") + stack.function_log("infer"),
                   diagnostics)


@pytest.fixture(scope="module")
def embedded_backend(model_bundle: Path) -> Iterator[Backend]:
    root = Path(tempfile.mkdtemp(prefix="detectflow-embedded-"))
    settings = load_settings(storage="local", bus="memory", data_dir=root / "data",
                             model_name=Manifest.read(model_bundle).name,
                             model_cache_dir=root / "cache", max_image_bytes=MAX_BYTES)
    buckets = Buckets.local(settings.data_dir)
    publish_bundle(buckets.models, model_bundle)
    logs = ListHandler()
    with EmbeddedPipeline(buckets, settings, watch=False) as pipeline:
        yield Backend("embedded", settings, pipeline.buckets, pipeline.bus, logs.text)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["embedded", "emulators"])
def backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.getfixturevalue(f"{request.param}_backend")
    return backend


# --- the same bodies on both backends ----------------------------------------------------

def test_upload_to_result_with_correct_boxes(backend: Backend, model_bundle: Path,
                                             samples_dir: Path) -> None:
    data = (samples_dir / "JPEGImages" / "BloodImage_00011.jpg").read_bytes()
    image_id = backend.upload("BloodImage_00011.jpg", data)
    record, = backend.wait_results([image_id], timeout=30)
    assert record.status == "done", record.error
    assert record.image is not None and (record.image.width, record.image.height) == (640, 480)
    assert record.source.bucket == backend.settings.uploads_bucket or backend.name == "embedded"
    assert_matches(record.detections, Detector.load(model_bundle).detect(data))


def test_bad_input_corpus(backend: Backend, samples_dir: Path) -> None:
    sample = (samples_dir / "JPEGImages" / "BloodImage_00021.jpg").read_bytes()
    cases = corpus(sample)
    assert len(cases) >= 20
    ids = [backend.upload(case.filename, case.data, case.content_type) for case in cases]
    records = backend.wait_results(ids, timeout=90)
    problems = []
    for case, record in zip(cases, records, strict=True):
        got = (record.status, record.error.code if record.error else None)
        if got != (case.expect, case.code):
            problems.append(f"{case.name}: expected {(case.expect, case.code)}, got {got}")
        elif case.size is not None:
            assert record.image is not None
            if (record.image.width, record.image.height) != case.size:
                problems.append(f"{case.name}: size {record.image} != {case.size}")
        if record.error is not None:
            assert len(record.error.message) > 15  # a sentence, not just a code
        assert "/" not in (record.source.filename or "") and ".." not in record.source.name
    assert not problems, "\n".join(problems)
    # ...and the pipeline still works afterwards.
    after = backend.upload("after.jpg", sample)
    assert backend.wait_results([after])[0].status == "done"


def test_duplicate_delivery_writes_one_result(backend: Backend, samples_dir: Path) -> None:
    data = (samples_dir / "JPEGImages" / "BloodImage_00031.jpg").read_bytes()
    image_id = backend.upload("dup.jpg", data)
    record, = backend.wait_results([image_id])
    before = backend.buckets.results.stat(f"{image_id}.json")
    info = next(iter(backend.buckets.uploads.list(f"{image_id}/")))
    obj = StorageObject(bucket=backend.settings.uploads_bucket
                        if backend.name == "emulators" else backend.buckets.uploads.bucket,
                        name=info.key, generation=info.generation, size=info.size)
    # The same upload event, and the same prepared notice, delivered again.
    backend.bus.publish(backend.settings.uploads_topic, *storage_notification(obj))
    notice = PreparedNotice(image_id=image_id, work_key=work_key(image_id),
                            source=SourceObject(bucket=obj.bucket, name=obj.name))
    backend.bus.publish(backend.settings.prepared_topic, *notice.to_message())
    backend.wait_log(rf"duplicate delivery acknowledged.*{image_id}(?s:.*)"
                     rf"duplicate delivery acknowledged.*{image_id}")
    assert backend.buckets.results.stat(f"{image_id}.json") == before
    assert image_status(backend.buckets, image_id) == ("done", record)


# --- emulator-only failure and scaling behaviour ------------------------------------------

def test_raw_object_names_with_path_tricks(emulators_backend: Backend, samples_dir: Path
                                           ) -> None:
    """Objects put into the bucket by other tools, under any name GCS allows."""
    data = (samples_dir / "JPEGImages" / "BloodImage_00065.jpg").read_bytes()
    names = ["../../etc/passwd.jpg", "a b/c d/ünïcødé 血液.jpg", "./x/../y.jpg"]
    ids = []
    for name in names:
        info = emulators_backend.buckets.uploads.put(name, data, "image/jpeg")
        ids.append(image_id_for_upload(name, info.generation))
    records = emulators_backend.wait_results(ids)
    assert [r.status for r in records] == ["done"] * 3
    assert [r.source.name for r in records] == names


def test_poison_message_is_dead_lettered_with_an_error_record(
        stack: object, emulators_backend: Backend) -> None:
    from detectflow.launcher.emulators import EmulatorStack

    assert isinstance(stack, EmulatorStack)
    project = stack.config.project
    subscriber = make_subscriber(stack.pubsub_host)
    probe = f"projects/{project}/subscriptions/test-dead-letter-probe"
    dead_letter_topic = emulators_backend.settings.dead_letter_topic
    subscriber.create_subscription(name=probe,
                                   topic=f"projects/{project}/topics/{dead_letter_topic}")
    buckets = emulators_backend.buckets
    image_id = new_image_id()
    key = upload_key(image_id, "poison.jpg")
    buckets.uploads.put(f"elsewhere/{key}", b"not our trigger")  # no event for this id
    buckets.work.put(work_key(image_id), b"this is not an npz")
    notice = PreparedNotice(image_id=image_id, work_key=work_key(image_id),
                            source=SourceObject(bucket=buckets.uploads.bucket, name=key))
    emulators_backend.bus.publish(emulators_backend.settings.prepared_topic,
                                 *notice.to_message())
    # 5 failed pushes with backoff (~15 s when idle), then the dead-letter push.
    record, = emulators_backend.wait_results([image_id], timeout=120)
    assert record.status == "failed" and record.error is not None
    assert record.error.code == "processing_failed"
    assert "infer stage" in record.error.message
    assert "not a prepared image" in record.error.message
    response = subscriber.pull(subscription=probe, max_messages=10, timeout=10)
    dead = [m.message for m in response.received_messages
            if m.message.attributes.get("image_id") == image_id]
    assert len(dead) == 1
    assert dead[0].attributes["CloudPubSubDeadLetterSourceSubscription"].endswith(
        "detectflow-infer")
    subscriber.delete_subscription(subscription=probe)


def test_killed_function_redelivers_and_finishes(stack: object, emulators_backend: Backend,
                                                 samples_dir: Path) -> None:
    from detectflow.launcher.emulators import EmulatorStack

    assert isinstance(stack, EmulatorStack)
    samples = [p.read_bytes() for p in sorted((samples_dir / "JPEGImages").glob("*.jpg"))]
    ids = [emulators_backend.upload(f"batch-{i}.jpg", samples[i % 4]) for i in range(24)]
    # Kill the infer function (its whole process group, SIGKILL) once work is in flight.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(
            image_status(emulators_backend.buckets, i)[0] in ("processing", "done")
            for i in ids):
        time.sleep(0.005)
    stack.kill_function("infer")
    unfinished = [i for i in ids if image_status(emulators_backend.buckets, i)[0] != "done"]
    assert unfinished, "everything finished before the kill: nothing was tested"
    stack.start_function("infer")  # a fresh instance; Pub/Sub redelivers
    # Generous: the emulator slows its pushes to a subscription after failed ones, and a
    # push cut off by the kill may wait out the subscription's ack deadline (120 s) first.
    records = emulators_backend.wait_results(ids, timeout=300)
    assert [r.status for r in records] == ["done"] * len(ids), [r.error for r in records]


def test_two_instances_share_the_subscription(stack: object, emulators_backend: Backend,
                                              samples_dir: Path) -> None:
    from detectflow.launcher.emulators import EmulatorStack

    assert isinstance(stack, EmulatorStack)
    samples = [p.read_bytes() for p in sorted((samples_dir / "JPEGImages").glob("*.jpg"))]
    ids = [emulators_backend.upload(f"scale-{i}.jpg", samples[i % 4]) for i in range(40)]
    records = emulators_backend.wait_results(ids, timeout=60)
    assert all(r.status == "done" for r in records)
    pids = {json.loads(line)["pid"] for line in stack.function_log("infer").splitlines()
            if line.startswith("{") and '"result recorded"' in line
            and json.loads(line).get("image_id") in set(ids)}
    assert len(pids) == 2, f"results written by processes {pids}"
    results = [info.key for info in emulators_backend.buckets.results.list()]
    assert len(results) == len(set(results))


def test_new_model_version_is_served_without_restart(
        emulators_backend: Backend, model_bundle: Path, samples_dir: Path,
        tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    shutil.copytree(model_bundle, v2)
    manifest = Manifest.read(v2)
    manifest.model_copy(update={"version": manifest.version + "-hotswap"}).write(v2)
    publish_bundle(emulators_backend.buckets.models, v2)
    time.sleep(1.0)  # > model_check_seconds of the running functions
    data = (samples_dir / "JPEGImages" / "BloodImage_00011.jpg").read_bytes()
    record, = emulators_backend.wait_results([emulators_backend.upload("v2.jpg", data)])
    assert record.model is not None and record.model.version == manifest.version + "-hotswap"


# --- detectflow up --emulators: start, serve, tear down on Ctrl-C -------------------------

def _port_open(url: str) -> bool:
    host, port = url.replace("http://", "").split(":")
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, int(port))) == 0


def test_up_with_emulators_serves_and_tears_down(model_bundle: Path, samples_dir: Path,
                                                 tmp_path: Path, stack: object) -> None:

    port = free_port()
    env = {**os.environ, "DETECTFLOW_LOG_LEVEL": "INFO"}
    env.pop("PUBSUB_EMULATOR_HOST", None)
    env.pop("STORAGE_EMULATOR_HOST", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "detectflow.cli", "up", "--emulators", "--port", str(port),
         "--model", str(model_bundle), *up_port_flags(free_ports())], cwd=tmp_path, env=env,
        stderr=subprocess.PIPE,
        text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")),
                              daemon=True)  # type: ignore[union-attr]
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("detectflow up --emulators never became healthy:\n" + "".join(lines))
        data = (samples_dir / "JPEGImages" / "BloodImage_00065.jpg").read_bytes()
        boundary = "detectflowtestboundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"cells.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() + data + (
            f"\r\n--{boundary}--\r\n").encode()
        request = urllib.request.Request(f"{base}/api/images", data=body, headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            image_id = json.load(response)["images"][0]["id"]
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and status not in ("done", "failed"):
            with urllib.request.urlopen(f"{base}/api/images/{image_id}", timeout=5) as response:
                status = json.load(response)["status"]
            time.sleep(0.1)
        assert status == "done"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    reader.join(timeout=5)
    log = "".join(lines)
    match = re.search(r"storage=(http://[\d.:]+) pubsub=([\d.:]+)", log)
    assert match, log
    assert not _port_open(match.group(1)) and not _port_open("http://" + match.group(2))
    assert not _port_open(base)

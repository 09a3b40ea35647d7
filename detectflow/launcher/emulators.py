"""The local cloud: Google's Pub/Sub and Firestore emulators, fake-gcs-server and the two
functions, run by functions-framework exactly as Cloud Run would, wired by the same Topology as
Terraform.

    with EmulatorStack(EmulatorConfig(model_name="bccd", data_dir=Path("var/cloud"))) as stack:
        buckets = make_buckets(stack.settings())
        ...

Start order matters: topics must exist before fake-gcs-server starts, or its events are
dropped. With a `data_dir`, objects (fake-gcs-server's filesystem backend) and the catalog (a
Firestore export, imported at the next start) survive a restart; Pub/Sub messages do not, which
is what `detectflow reconcile` is for. Processes: detectflow/launcher/processes.py; where the
programs come from: programs.py; each service's flags: services.py.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from detectflow.launcher.processes import (
    EmulatorUnavailable,
    ManagedProcess,
    http_get,
    with_lifeline,
)
from detectflow.launcher.programs import find_functions_dir
from detectflow.launcher.services import (
    GcsEvents,
    ServicePorts,
    check_ports_free,
    export_firestore,
    firestore_ready,
    gcs_ready,
    pubsub_ready,
    start_fake_gcs_server,
    start_firestore_emulator,
    start_pubsub_emulator,
)
from detectflow.settings import Settings, load_settings
from detectflow.topology import FunctionSpec, Topology, default_topology

log = logging.getLogger(__name__)

LOCAL_MIN_THREADS = 4
CATALOG_EXPORT = "firestore-export"  # under data_dir: the catalog's last snapshot
OBJECTS_DIR = "gcs"  # under data_dir: fake-gcs-server's filesystem root

__all__ = ["EmulatorConfig", "EmulatorStack", "EmulatorUnavailable", "ServicePorts"]


@dataclass
class EmulatorConfig:
    project: str = "detectflow-local"
    host: str = "127.0.0.1"
    ports: ServicePorts = field(default_factory=ServicePorts)
    instances: int = 1  # worker processes per function (gunicorn WORKERS), one push endpoint
    model_name: str = "bccd"
    model_check_seconds: float = 2.0
    functions_dir: Path | None = None  # default: programs.find_functions_dir()
    log_dir: Path | None = None  # default: a fresh temporary folder, removed at stop
    data_dir: Path | None = None  # objects and catalog kept here; None: in memory only
    catalog: bool = True  # the Firestore emulator, written by the functions
    catalog_export_seconds: float = 300.0  # snapshot interval while running (with data_dir)
    topology: Topology = field(default_factory=lambda: default_topology("local"))
    extra_env: dict[str, str] = field(default_factory=dict)
    start_timeout: float = 60.0


class EmulatorStack:
    """Start: Pub/Sub emulator -> topics and subscriptions -> fake-gcs-server (with events) ->
    buckets -> Firestore emulator -> the functions. Stop: everything, process groups
    included, after a last catalog snapshot."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        cfg = self.config
        self._owns_log_dir = cfg.log_dir is None
        # Absolute: the functions run with their own folder as working directory.
        self.log_dir = (cfg.log_dir or Path(tempfile.mkdtemp(prefix="detectflow-emulators-"))
                        ).absolute()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.function_ports = {spec.name: cfg.ports.function(index)
                               for index, spec in enumerate(cfg.topology.functions)}
        self.model_cache_dir = self.log_dir / "model-cache"
        self.processes: dict[str, ManagedProcess] = {}
        self._lock = threading.Lock()
        self._atexit_registered = False
        self._stop_exports = threading.Event()
        self._exporter: threading.Thread | None = None

    # Addresses and settings -------------------------------------------------------------
    @property
    def pubsub_host(self) -> str:
        return f"{self.config.host}:{self.config.ports.pubsub}"

    @property
    def firestore_host(self) -> str:
        return f"{self.config.host}:{self.config.ports.firestore}"

    @property
    def storage_url(self) -> str:
        return f"http://{self.config.host}:{self.config.ports.storage}"

    def push_endpoint(self, function: str) -> str:
        sub = self.config.topology.subscription_for(function)
        return (f"http://{self.config.host}:{self.function_ports[function]}"
                f"/projects/{self.config.project}/topics/{sub.topic}")

    def env(self) -> dict[str, str]:
        """Environment for any process that should talk to this stack."""
        env = {
            "GOOGLE_CLOUD_PROJECT": self.config.project,
            "STORAGE_EMULATOR_HOST": self.storage_url,
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "DETECTFLOW_STORAGE": "gcs",
            "DETECTFLOW_BUS": "pubsub",
            "DETECTFLOW_CATALOG": "firestore" if self.config.catalog else "none",
            "DETECTFLOW_MODEL_NAME": self.config.model_name,
            "DETECTFLOW_MODEL_CHECK_SECONDS": str(self.config.model_check_seconds),
            "DETECTFLOW_MODEL_CACHE_DIR": str(self.model_cache_dir),
        }
        if self.config.catalog:
            env["FIRESTORE_EMULATOR_HOST"] = self.firestore_host
        return {**env, **self.config.extra_env}

    def user_env(self) -> dict[str, str]:
        """What a user's shell needs to reach this stack with Google's own clients and tools
        (printed by `detectflow up --emulators`)."""
        env = {"GOOGLE_CLOUD_PROJECT": self.config.project,
               "STORAGE_EMULATOR_HOST": self.storage_url,
               "PUBSUB_EMULATOR_HOST": self.pubsub_host}
        if self.config.catalog:
            env["FIRESTORE_EMULATOR_HOST"] = self.firestore_host
        for bucket in self.config.topology.buckets:
            env[f"DETECTFLOW_{bucket.role.upper()}_BUCKET"] = bucket.name
        return env

    def settings(self, **overrides: object) -> Settings:
        """Settings for clients in this process (buckets, bus, catalog) pointing at the stack."""
        values: dict[str, object] = {
            "storage": "gcs", "bus": "pubsub", "project": self.config.project,
            "storage_emulator_host": self.storage_url, "pubsub_emulator_host": self.pubsub_host,
            "catalog": "firestore" if self.config.catalog else "none",
            "model_name": self.config.model_name,
            "model_cache_dir": self.model_cache_dir,
            "model_check_seconds": self.config.model_check_seconds}
        if self.config.catalog:
            values["firestore_emulator_host"] = self.firestore_host
        return load_settings(**{**values, **overrides})

    # Lifecycle ----------------------------------------------------------------------------
    def start(self) -> EmulatorStack:
        started = time.monotonic()
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        functions_dir = find_functions_dir(self.config.functions_dir)  # fail before starting
        check_ports_free(self.config.host, self._ports())
        try:
            # Functions first: they need nothing until a push arrives, and start in parallel.
            for spec in self.config.topology.functions:
                self.start_function(spec.name, wait=False, functions_dir=functions_dir)
            if self.config.catalog:
                self._start_firestore()
            self._start_pubsub()
            self._provision()
            self._start_fake_gcs()
            self._create_buckets()
            if self.config.catalog:
                self._wait_firestore()
            for spec in self.config.topology.functions:
                self.wait_function(spec.name)
        except BaseException:
            self.stop()
            raise
        self._start_exporter()
        log.info("emulator stack ready", extra={
            "seconds": round(time.monotonic() - started, 2), "pubsub": self.pubsub_host,
            "storage": self.storage_url,
            "firestore": self.firestore_host if self.config.catalog else None,
            "functions": self.function_ports, "logs": str(self.log_dir),
            "data_dir": str(self.config.data_dir) if self.config.data_dir else None})
        return self

    def stop(self) -> None:
        """Snapshot the catalog (with a data_dir), then stop every service (whole process
        groups); remove the temporary folder of logs and model cache if the stack made it
        (a `log_dir` given in the config is kept)."""
        self._stop_exports.set()
        if self._exporter is not None:
            self._exporter.join(timeout=60)
            self._exporter = None
        self.export_catalog()
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

    def _ports(self) -> dict[str, int]:
        ports = {"pubsub": self.config.ports.pubsub, "storage": self.config.ports.storage,
                 **{f"function {name}": port for name, port in self.function_ports.items()}}
        if self.config.catalog:
            ports["firestore"] = self.config.ports.firestore
        return ports

    # The catalog's snapshots --------------------------------------------------------------
    def export_catalog(self) -> bool:
        """Write the catalog to data_dir (True when written). A failure is logged, not
        raised: the buckets are the source of truth and the next start repairs the catalog."""
        firestore = self.processes.get("firestore")
        if self.config.data_dir is None or firestore is None or not firestore.alive():
            return False
        try:
            export_firestore(self.firestore_host, self.config.project,
                             self.config.data_dir / CATALOG_EXPORT)
        except Exception:
            log.warning("catalog snapshot failed", exc_info=True)
            return False
        return True

    def _start_exporter(self) -> None:
        if self.config.data_dir is None or not self.config.catalog:
            return
        self._stop_exports.clear()

        def run() -> None:
            while not self._stop_exports.wait(self.config.catalog_export_seconds):
                self.export_catalog()

        self._exporter = threading.Thread(target=run, name="catalog-export", daemon=True)
        self._exporter.start()

    # Services -----------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], env: dict[str, str],
               cwd: Path | None = None) -> ManagedProcess:
        process = ManagedProcess(name, argv, env, self.log_dir / f"{name}.log", cwd).start()
        with self._lock:
            self.processes[name] = process
        return process

    def _register(self, name: str, process: ManagedProcess) -> ManagedProcess:
        with self._lock:
            self.processes[name] = process
        return process

    def _start_pubsub(self) -> None:
        process = self._register("pubsub", start_pubsub_emulator(
            self.config.host, self.config.ports.pubsub, self.log_dir / "pubsub.log",
            wait=False))
        process.wait_ready(lambda: pubsub_ready(self.pubsub_host), self.config.start_timeout)

    def _start_firestore(self) -> None:
        data = self.config.data_dir
        self._register("firestore", start_firestore_emulator(
            self.config.host, self.config.ports.firestore, self.log_dir / "firestore.log",
            self.config.project, import_from=data / CATALOG_EXPORT if data else None,
            wait=False))

    def _wait_firestore(self) -> None:
        self.processes["firestore"].wait_ready(lambda: firestore_ready(self.firestore_host),
                                               self.config.start_timeout)

    def _provision(self) -> None:
        from detectflow.bus.pubsub import provision

        endpoints = {spec.name: self.push_endpoint(spec.name)
                     for spec in self.config.topology.functions}
        provision(self.config.topology, self.config.project, endpoints,
                  emulator_host=self.pubsub_host)

    def _start_fake_gcs(self) -> None:
        uploads = self.config.topology.bucket("uploads")
        events = GcsEvents(self.pubsub_host, self.config.project, uploads.notify_topic or "",
                           uploads.name)
        data = self.config.data_dir
        process = self._register("fake-gcs-server", start_fake_gcs_server(
            self.config.host, self.config.ports.storage, self.log_dir / "fake-gcs-server.log",
            events, wait=False, data_dir=data / OBJECTS_DIR if data else None))
        process.wait_ready(lambda: gcs_ready(self.storage_url), self.config.start_timeout)

    def _create_buckets(self) -> None:
        from detectflow.storage import make_buckets

        make_buckets(self.settings(catalog="none"), create=True)

    def start_function(self, name: str, wait: bool = True,
                       functions_dir: Path | None = None) -> ManagedProcess:
        spec = self.config.topology.function(name)
        main = self._main_py(spec, functions_dir)
        argv = [sys.executable, "-m", "functions_framework", "--target", spec.target,
                "--source", str(main), "--signature-type", "cloudevent",
                "--host", self.config.host, "--port", str(self.function_ports[name])]
        instances = self.config.instances if name != "dead-letter" else 1
        # gunicorn's gthread worker with ONE thread serves a second connection only after the
        # first one's 2 s keep-alive expires: pushes then crawl at one per 2 s (measured).
        # Cloud Run's front end hides this; locally, a few threads do (the Detector's lock
        # still runs one inference at a time).
        threads = max(spec.concurrency, LOCAL_MIN_THREADS)
        env = {**os.environ, **self.env(), "WORKERS": str(instances),
               "THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
        # gunicorn forks workers: a lifeline takes the whole group down if we die.
        process = self._spawn(f"function-{name}", with_lifeline(argv), env, cwd=main.parent)
        if wait:
            self.wait_function(name)
        return process

    def _main_py(self, spec: FunctionSpec, functions_dir: Path | None = None) -> Path:
        folder = functions_dir or find_functions_dir(self.config.functions_dir)
        main = folder / Path(spec.source).name / "main.py"
        if not main.is_file():
            raise EmulatorUnavailable(f"function source {main} not found")
        return main

    def wait_function(self, name: str) -> None:
        port = self.function_ports[name]
        self.processes[f"function-{name}"].wait_ready(
            lambda: http_get(f"http://{self.config.host}:{port}/")[0] > 0,
            self.config.start_timeout)

    def kill_function(self, name: str) -> None:
        """SIGKILL a function's whole process group (simulates a crashed instance)."""
        with self._lock:
            process = self.processes.pop(f"function-{name}")
        process.kill()

    def function_log(self, name: str) -> str:
        return (self.log_dir / f"function-{name}.log").read_text(errors="replace")

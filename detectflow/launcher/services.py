"""Starting the local cloud's services one by one: Google's Pub/Sub and Firestore emulators and
fake-gcs-server, with their readiness probes, default ports and where they keep data.

Pub/Sub keeps nothing across restarts (the emulator cannot); storage and the catalog do when
given a folder: fake-gcs-server's filesystem backend, and the Firestore emulator's export (on
a clean stop, and every few seconds while running) imported again at start.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from detectflow.launcher.processes import EmulatorUnavailable, ManagedProcess, http_get
from detectflow.launcher.programs import (
    find_fake_gcs_server,
    find_firestore_jar,
    find_java,
    find_pubsub_jar,
)

log = logging.getLogger(__name__)

# The local cloud's documented default ports (`detectflow up --emulators --help`).
DEFAULT_PUBSUB_PORT = 8085  # the Pub/Sub emulator's own default
DEFAULT_STORAGE_PORT = 4443  # fake-gcs-server's own default
DEFAULT_FIRESTORE_PORT = 8086  # not the emulator's 8080: functions-framework's default
DEFAULT_FUNCTIONS_PORT = 8090  # preprocess 8090, infer 8091, dead-letter 8092
JVM_FAST_START = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
FIRESTORE_MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"


@dataclass(frozen=True)
class ServicePorts:
    """Where the local cloud listens. Functions take consecutive ports from `functions`."""

    pubsub: int = DEFAULT_PUBSUB_PORT
    storage: int = DEFAULT_STORAGE_PORT
    firestore: int = DEFAULT_FIRESTORE_PORT
    functions: int = DEFAULT_FUNCTIONS_PORT

    def function(self, index: int) -> int:
        return self.functions + index


def port_in_use(host: str, port: int) -> bool:
    """Whether a server could not listen there. SO_REUSEADDR, as servers set it: connections
    of a stopped server waiting out TIME_WAIT do not make its port busy."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_ports_free(host: str, ports: dict[str, int]) -> None:
    """A clear error, before anything starts, when a port is taken (another stack running)."""
    busy = [f"{name} {port}" for name, port in ports.items() if port_in_use(host, port)]
    if busy:
        raise EmulatorUnavailable(
            f"port{'s' if len(busy) > 1 else ''} already in use on {host}: {', '.join(busy)}. "
            "Stop the other detectflow up --emulators, or pick other ports (--pubsub-port, "
            "--storage-port, --firestore-port, --functions-port)")


def pubsub_ready(host_port: str) -> bool:
    status, body = http_get(f"http://{host_port}/")
    return status == 200 and body.strip() == b"Ok"


def firestore_ready(host_port: str) -> bool:
    status, body = http_get(f"http://{host_port}/")
    return status == 200 and body.strip() == b"Ok"


def gcs_ready(url: str) -> bool:
    return http_get(f"{url}/storage/v1/b")[0] == 200


def start_pubsub_emulator(host: str, port: int, log_path: Path, wait: bool = True,
                          timeout: float = 60.0) -> ManagedProcess:
    """Google's Pub/Sub emulator, JVM flags tuned for a fast start (~2 s)."""
    argv = [find_java(), *JVM_FAST_START, "-Xmx256m", "-jar", str(find_pubsub_jar()),
            f"--host={host}", f"--port={port}"]
    process = ManagedProcess("pubsub", argv, dict(os.environ), log_path).start()
    if wait:
        process.ready_or_stop(lambda: pubsub_ready(f"{host}:{port}"), timeout)
    return process


def start_firestore_emulator(host: str, port: int, log_path: Path, project: str,
                             import_from: Path | None = None, wait: bool = True,
                             timeout: float = 60.0) -> ManagedProcess:
    """Google's Firestore emulator (~3 s to ready), run as `java` directly (the SDK's shell
    wrapper would leave its Java child behind a signal). `import_from`: an export folder
    written by `export_firestore` to load at start."""
    argv = [find_java(), "-Duser.language=en", *JVM_FAST_START, "-Xmx512m",
            "-cp", str(find_firestore_jar()), FIRESTORE_MAIN_CLASS, "start",
            f"--host={host}", f"--port={port}", f"--project_id={project}"]
    metadata = firestore_export_metadata(import_from) if import_from else None
    if metadata is not None:
        argv.append(f"--import-data={metadata}")
    process = ManagedProcess("firestore", argv, dict(os.environ), log_path).start()
    if wait:
        process.ready_or_stop(lambda: firestore_ready(f"{host}:{port}"), timeout)
    return process


def firestore_export_metadata(folder: Path) -> Path | None:
    """The `.overall_export_metadata` file of an export folder, if it holds one."""
    found = sorted(folder.glob("*.overall_export_metadata")) if folder.is_dir() else []
    return found[0] if found else None


def export_firestore(host_port: str, project: str, folder: Path) -> None:
    """Snapshot the emulator's data into `folder`, replacing the previous snapshot only once
    the new one is complete (a crash mid-export keeps the old one)."""
    staging = folder.with_name(folder.name + ".exporting")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    body = json.dumps({"database": f"projects/{project}/databases/(default)",
                       "export_directory": str(staging.resolve())}).encode()
    request = urllib.request.Request(
        f"http://{host_port}/emulator/v1/projects/{project}:export", data=body, method="POST",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
    exported = next((p for p in staging.iterdir() if p.is_dir()), None)
    if exported is None or firestore_export_metadata(exported) is None:
        raise RuntimeError(f"the Firestore emulator wrote no export into {staging}")
    previous = folder.with_name(folder.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if folder.exists():
        folder.rename(previous)
    exported.rename(folder)
    shutil.rmtree(previous, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


@dataclass(frozen=True)
class GcsEvents:
    """fake-gcs-server's OBJECT_FINALIZE notifications to Pub/Sub (the topic must exist)."""

    pubsub_host: str
    project: str
    topic: str
    bucket: str


def start_fake_gcs_server(host: str, port: int, log_path: Path, events: GcsEvents | None = None,
                          wait: bool = True, timeout: float = 30.0,
                          data_dir: Path | None = None) -> ManagedProcess:
    """fake-gcs-server over HTTP; objects in memory, or under `data_dir` (kept across
    restarts) when given."""
    url = f"http://{host}:{port}"
    backend = ["-backend", "memory"]
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        backend = ["-backend", "filesystem", "-filesystem-root", str(data_dir.resolve())]
    argv = [str(find_fake_gcs_server()), "-scheme", "http", "-host", host, "-port", str(port),
            *backend, "-external-url", url, "-public-host", f"{host}:{port}",
            "-log-level", "warn"]
    env = dict(os.environ)
    if events is not None:
        argv += ["-event.pubsub-project-id", events.project, "-event.pubsub-topic",
                 events.topic, "-event.bucket", events.bucket, "-event.list", "finalize"]
        env["PUBSUB_EMULATOR_HOST"] = events.pubsub_host
    process = ManagedProcess("fake-gcs-server", argv, env, log_path).start()
    if wait:
        process.ready_or_stop(lambda: gcs_ready(url), timeout)
    return process

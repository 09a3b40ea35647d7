"""Helpers for tests and benchmarks that drive detectflow from outside, as a user would: free
ports, a `detectflow up` subprocess. Not used by the library itself."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from detectflow.launcher.processes import ManagedProcess, http_get
from detectflow.launcher.services import ServicePorts


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(host: str = "127.0.0.1", functions: int = 3) -> ServicePorts:
    """Ports for a second local cloud beside the default one: `functions` consecutive free
    ports for the functions (retried until a free run is found)."""
    while True:
        base = free_port(host)
        if all(_free(host, base + i) for i in range(1, functions)):
            return ServicePorts(pubsub=free_port(host), storage=free_port(host),
                                firestore=free_port(host), functions=base)


def _free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def up_port_flags(ports: ServicePorts) -> list[str]:
    """`detectflow up --emulators` flags for these ports."""
    return ["--pubsub-port", str(ports.pubsub), "--storage-port", str(ports.storage),
            "--firestore-port", str(ports.firestore), "--functions-port", str(ports.functions)]


def app_ready(base: str) -> bool:
    """`detectflow up` answers /healthz and has a model to serve."""
    status, body = http_get(f"{base}/healthz")
    return status == 200 and bool(json.loads(body or b"{}").get("model"))


def start_detectflow_up(
    port: int,
    data_dir: Path,
    log_path: Path,
    model: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    extra_args: list[str] | None = None,
    cwd: Path | None = None,
) -> ManagedProcess:
    """`detectflow up` on 127.0.0.1:`port` in its own process group, returned once it serves
    a model (embedded unless `extra_args` says otherwise)."""
    argv = [sys.executable, "-m", "detectflow.cli", "up", "--host", "127.0.0.1",
            "--port", str(port), "--data-dir", str(data_dir), *(extra_args or [])]
    if model is not None:
        argv += ["--model", str(model)]
    process = ManagedProcess("detectflow up", argv, {**os.environ, **(env or {})}, log_path,
                             cwd=cwd)
    process.start()
    return process.ready_or_stop(lambda: app_ready(f"http://127.0.0.1:{port}"), timeout)

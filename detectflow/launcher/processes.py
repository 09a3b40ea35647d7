"""Child processes that die with their parent: one process group each, stopped whole.

Every service runs in its own process group (`start_new_session`), so stopping it signals the
whole group: a wrapper's Java child cannot survive holding its port. On Linux each child also
asks the kernel for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`), so a `detectflow up`
that is itself SIGKILLed leaves no emulator or function behind; gunicorn's workers (the
functions' grandchildren) are taken down by a lifeline parent (lifeline.py) that kills
their whole group.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class EmulatorUnavailable(RuntimeError):
    """A service cannot be started here (not installed, or it did not become ready)."""


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies.

    The kernel sends it when the *thread* that forked exits, so services are started from
    the main thread (`detectflow up`, the test fixtures). Other platforms have no such call;
    there the stack relies on its own stop() (atexit, signal handlers)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def _die_with_parent() -> None:
    """Runs in the child between fork and exec (preexec_fn)."""
    die_with_parent(signal.SIGKILL)


def with_lifeline(argv: list[str]) -> list[str]:
    """`argv` run under detectflow/launcher/lifeline.py: for programs that fork workers, whose
    whole process group must die with us."""
    return [sys.executable, "-m", "detectflow.launcher.lifeline", *argv]


def http_get(url: str, timeout: float = 1.0) -> tuple[int, bytes]:
    """(status, body); any HTTP answer, error statuses included, means the server is up."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as err:
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
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
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

    def ready_or_stop(self, probe: Callable[[], bool], timeout: float) -> ManagedProcess:
        """wait_ready, and stop the process when it does not become ready."""
        try:
            self.wait_ready(probe, timeout)
        except BaseException:
            self.stop()
            raise
        return self

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

"""Starting and stopping services: process groups die whole, failures say what is missing,
and a stack that fails to start leaves nothing behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from detectflow.launcher.emulators import EmulatorConfig, EmulatorStack
from detectflow.launcher.processes import EmulatorUnavailable, ManagedProcess, live_group_members
from detectflow.launcher.programs import find_java
from detectflow.launcher.testing import free_ports


def group_alive(pgid: int) -> bool:
    """Any member of the group still running (zombies waiting for a reaper do not count:
    a container's PID 1 may never reap the orphans, see live_group_members)."""
    return bool(live_group_members(pgid))


def test_live_group_members_sees_a_running_group_and_ignores_zombies(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", ["sleep", "60"], dict(os.environ),
                             tmp_path / "s.log").start()
    assert process.pid is not None
    assert live_group_members(process.pid) == [process.pid]
    os.killpg(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while live_group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    # Not reaped yet: a zombie, which killpg still counts as alive.
    os.killpg(process.pid, 0)
    assert live_group_members(process.pid) == []
    process.kill()


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    """A wrapper whose child survives a SIGTERM to the wrapper alone (the gcloud pitfall)."""
    script = "trap '' TERM; sleep 60 & sleep 60 & wait"
    process = ManagedProcess("wrapper", ["sh", "-c", script], dict(os.environ),
                             tmp_path / "wrapper.log").start()
    assert process.pid is not None and group_alive(process.pid)
    process.stop(grace=0.5)
    assert not group_alive(process.pid)


def test_kill_is_immediate(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", ["sleep", "60"], dict(os.environ),
                             tmp_path / "s.log").start()
    assert process.pid is not None
    process.kill()
    assert not group_alive(process.pid)
    assert process.process is not None and process.process.returncode == -signal.SIGKILL


def test_missing_java_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EmulatorUnavailable, match="Java"):
        find_java()


def test_missing_function_source_is_a_clear_error(tmp_path: Path) -> None:
    stack = EmulatorStack(EmulatorConfig(functions_dir=tmp_path / "nowhere",
                                         log_dir=tmp_path / "logs"))
    with pytest.raises(EmulatorUnavailable, match=r"main\.py not found"):
        stack.start()
    assert stack.processes == {}


def test_a_failed_start_leaves_no_process_behind(tmp_path: Path) -> None:
    """The Pub/Sub emulator cannot be ready in 10 ms: start() must stop what it started."""
    stack = EmulatorStack(EmulatorConfig(start_timeout=0.01, log_dir=tmp_path / "logs",
                                         ports=free_ports()))
    spawned: list[int] = []
    original = stack._spawn

    def record(*args: object, **kwargs: object) -> ManagedProcess:
        process = original(*args, **kwargs)  # type: ignore[arg-type]
        assert process.pid is not None
        spawned.append(process.pid)
        return process

    stack._spawn = record  # type: ignore[method-assign]
    with pytest.raises(EmulatorUnavailable):
        stack.start()
    assert spawned, "nothing was started: the test tested nothing"
    assert not any(group_alive(pid) for pid in spawned)
    assert stack.processes == {}

"""`python -m detectflow.launcher.lifeline PROGRAM [ARGS...]`: run a program that forks workers
(functions-framework runs gunicorn) so that its whole process group dies with our parent.

The kernel's parent-death signal (`PR_SET_PDEATHSIG`) reaches only a direct child: gunicorn's
master would die with `detectflow up`, but a worker busy with a request (retrying a call to an
emulator that died too) can outlive it by minutes. This small parent asks for SIGTERM when
`up` dies, starts the program in its own process group, and on SIGTERM (from the kernel, or
from `ManagedProcess.stop`) SIGKILLs the whole group, itself included. Linux only; elsewhere
it just runs the program.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import FrameType

from detectflow.launcher.processes import die_with_parent


def _end_group(signum: int, frame: FrameType | None) -> None:
    os.killpg(0, signal.SIGKILL)


def main(argv: list[str]) -> int:
    if not argv:
        sys.stderr.write("usage: python -m detectflow.launcher.lifeline PROGRAM [ARGS...]\n")
        return 2
    parent = os.getppid()
    signal.signal(signal.SIGTERM, _end_group)
    die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request took effect
        _end_group(signal.SIGTERM, None)
    return subprocess.call(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

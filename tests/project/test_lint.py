"""ruff and mypy stay clean (configured in pyproject.toml): part of the suite, so CI holds it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.paths import REPO_ROOT

# Each function folder is deployed on its own, with its own `main` module: checked one by one.
MYPY_TARGETS = [["detectflow", "trainer", "frontend"],
                *([str(p)] for p in sorted(REPO_ROOT.glob("functions/*/main.py")))]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff_is_clean() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout[-4000:]


@pytest.mark.parametrize("targets", MYPY_TARGETS, ids=lambda t: " ".join(t))
def test_mypy_is_clean(targets: list[str]) -> None:
    result = run("mypy", *targets)
    assert result.returncode == 0, result.stdout[-4000:]

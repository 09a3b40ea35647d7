"""What a test does when a service it needs (an emulator, a browser) is missing."""

from __future__ import annotations

import os

import pytest


def unavailable(reason: str) -> None:
    """A test service is missing: skip locally, fail under CI (where it must be there)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required test service unavailable under CI: {reason}")
    pytest.skip(reason)

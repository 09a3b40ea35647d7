"""Where things are, for tests that read the repository itself."""

from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = TESTS_DIR.parent
SAMPLES_DIR = TESTS_DIR / "data" / "samples"

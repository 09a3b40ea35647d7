#!/usr/bin/env bash
# Set up everything the test suite needs (idempotent), then run it. CI runs exactly this.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[all,dev]"

# Chromium for the browser test: Debian's package (Playwright cannot download browsers here).
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

# Static checkers for infra/ and trainer/Dockerfile (checkov, hadolint, terraform fmt), pinned,
# in their own virtualenv. If this fails, tests/test_infra.py reports the missing tool.
bash scripts/install-infra-tools.sh || echo "warning: infra checkers not installed" >&2

exec .venv/bin/python -m pytest "$@"

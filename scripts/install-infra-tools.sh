#!/usr/bin/env bash
# Install the infra static checkers (checkov, hadolint, terraform for `fmt`) into .venv-infra,
# pinned by infra/requirements-checks.txt. Idempotent: does nothing when already installed from
# the same requirements. tests/test_infra.py uses them; under CI=true a missing one fails.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-infra
REQS=infra/requirements-checks.txt
STAMP="$VENV/requirements-checks.txt"

if [ -x "$VENV/bin/python" ] && cmp -s "$REQS" "$STAMP"; then
  exit 0
fi
PYTHON=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS"
cp "$REQS" "$STAMP"

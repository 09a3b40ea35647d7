#!/usr/bin/env bash
# Stage the deployable source of every function for Terraform (infra/terraform/functions.tf):
#
#   build/functions/<name>/ = functions/<name>/ (main.py, requirements.txt, ...)
#                             + detectflow/      (the shared package the functions import;
#                                                 it is not on PyPI, so it ships in the source)
#
# Cloud Run functions install requirements.txt and import main.py from the source root, where
# this copy of detectflow/ is importable as a top-level package. Run from anywhere:
#
#   bash infra/package_function.sh [OUT_DIR]      # default OUT_DIR: build/functions
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-"$ROOT/build/functions"}

staged=0
for src in "$ROOT"/functions/*/; do
  name=$(basename "$src")
  [ -f "$src/main.py" ] || continue
  if [ ! -f "$src/requirements.txt" ]; then
    echo "package_function: $src has no requirements.txt; Cloud Build would install nothing" >&2
    exit 1
  fi
  stage="$OUT/$name"
  rm -rf "$stage"
  mkdir -p "$stage"
  # Copy without caches, tests or local virtualenvs; tar keeps modes and works everywhere.
  tar -C "$src" --exclude=__pycache__ --exclude='*.pyc' --exclude=tests --exclude='.venv*' \
      -cf - . | tar -C "$stage" -xf -
  tar -C "$ROOT" --exclude=__pycache__ --exclude='*.pyc' -cf - detectflow | tar -C "$stage" -xf -
  echo "staged $stage"
  staged=$((staged + 1))
done

if [ "$staged" -eq 0 ]; then
  echo "package_function: no functions/*/main.py found under $ROOT" >&2
  exit 1
fi

#!/usr/bin/env bash
# Stage the deployable source of every function for Terraform (infra/terraform/functions.tf):
#
#   build/functions/<name>/ = functions/<name>/ (main.py, requirements.txt, ...)
#                             + the detectflow modules that main.py reaches, and only those
#                               (infra/function_modules.py follows its imports, the lazily
#                               imported storage and bus backends included; detectflow is not
#                               on PyPI, so it ships in the source)
#
# Cloud Run functions install requirements.txt and import main.py from the source root, where
# this partial copy of detectflow/ is importable as a top-level package. Run from anywhere:
#
#   bash infra/package_function.sh [OUT_DIR]      # default OUT_DIR: build/functions
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-"$ROOT/build/functions"}
PYTHON=${PYTHON:-python3}

staged=0
for src in "$ROOT"/functions/*/; do
  src=${src%/}
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
  modules=$("$PYTHON" "$ROOT/infra/function_modules.py" --root "$ROOT" "$src/main.py")
  # shellcheck disable=SC2086  # one repo-relative path per line, no spaces
  tar -C "$ROOT" -cf - $modules | tar -C "$stage" -xf -
  echo "staged $stage ($(echo "$modules" | wc -l | tr -d ' ') detectflow modules)"
  staged=$((staged + 1))
done

if [ "$staged" -eq 0 ]; then
  echo "package_function: no functions/*/main.py found under $ROOT" >&2
  exit 1
fi

"""The layering rule: the core, the web app and the functions never import TensorFlow, Keras
or the trainer (cold start, memory); only `trainer/` does, reached lazily by train/export."""

from __future__ import annotations

import json
import subprocess
import sys

from support.paths import REPO_ROOT

PROBE = """
import importlib, json, pkgutil, runpy, sys
import detectflow, frontend
names = [m.name for pkg in (detectflow, frontend)
         for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")
         if not m.name.endswith(".__main__")]
for name in names:
    importlib.import_module(name)
for main in sys.argv[1:]:
    runpy.run_path(main)
from detectflow.cli import build_parser
build_parser().format_help()
heavy = sorted(m for m in sys.modules
               if m.split(".")[0] in ("tensorflow", "keras", "tf_keras", "trainer"))
print(json.dumps({"modules": len(names), "heavy": heavy}))
"""


def test_core_frontend_and_functions_import_no_tensorflow_or_trainer() -> None:
    mains = [str(p) for p in sorted(REPO_ROOT.glob("functions/*/main.py"))]
    result = subprocess.run([sys.executable, "-c", PROBE, *mains], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["modules"] > 40
    assert report["heavy"] == []

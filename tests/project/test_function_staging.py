"""A deployable function ships only what it imports, and runs with only its requirements.txt.

infra/package_function.sh stages, per function, main.py + requirements.txt + the detectflow
modules main.py reaches (infra/function_modules.py reads the imports with ast). Checked here:
the closure finder on a small synthetic package (lazy imports count, TYPE_CHECKING ones do
not); every staged module is really imported by the function under some supported setting
(local, GCS, S3, Pub/Sub), and nothing else is; and `main` imports from the staged folder in a
fresh virtualenv holding only that function's requirements (pip, from PyPI).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import pytest
from support.paths import REPO_ROOT, SAMPLES_DIR
from support.services import unavailable

from detectflow import topology as topo

FUNCTIONS = topo.default_topology("cloud").functions
SOURCES = sorted({Path(f.source).name for f in FUNCTIONS})
NOWHERE = "127.0.0.1:9"  # nothing listens: building the clients must not need a server

# The settings a deployed function supports; each selects other backends at run time.
SETTINGS: dict[str, dict[str, str]] = {
    "local-memory": {"DETECTFLOW_STORAGE": "local", "DETECTFLOW_BUS": "memory"},
    "gcs-pubsub": {"GOOGLE_CLOUD_PROJECT": "demo", "STORAGE_EMULATOR_HOST": f"http://{NOWHERE}",
                   "PUBSUB_EMULATOR_HOST": NOWHERE, "FIRESTORE_EMULATOR_HOST": NOWHERE},
    "s3-pubsub": {"DETECTFLOW_STORAGE": "s3", "DETECTFLOW_S3_ENDPOINT_URL": f"http://{NOWHERE}",
                  "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                  "GOOGLE_CLOUD_PROJECT": "demo", "PUBSUB_EMULATOR_HOST": NOWHERE},
}

# Import main from the current folder, check its entry points, build the runtime the first
# event would build, and report every detectflow module loaded (name -> file).
PROBE = """
import json, sys
import main
from detectflow.pipeline import runtime
missing = [t for t in sys.argv[1:] if not callable(getattr(main, t, None))]
assert not missing, f"main.py lacks {missing}"
runtime.handlers()
print(json.dumps({m: getattr(sys.modules[m], "__file__", None) for m in sorted(sys.modules)
                  if m == "detectflow" or m.startswith("detectflow.")}))
"""


def load_function_modules() -> ModuleType:
    path = REPO_ROOT / "infra" / "function_modules.py"
    spec = importlib.util.spec_from_file_location("function_modules", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any detectflow, cloud or Python path setting, plus `extra`."""
    prefixes = ("DETECTFLOW_", "GOOGLE_", "AWS_", "STORAGE_EMULATOR", "PUBSUB_EMULATOR",
                "FIRESTORE_EMULATOR", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", **extra}


def targets(source: str) -> list[str]:
    return sorted(f.target for f in FUNCTIONS if Path(f.source).name == source)


def staged_modules(stage: Path) -> set[str]:
    names = set()
    for path in (stage / "detectflow").rglob("*.py"):
        parts = path.relative_to(stage).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def probe(python: Path | str, stage: Path, source: str, env: dict[str, str]
          ) -> dict[str, str | None]:
    result = subprocess.run([str(python), "-c", PROBE, *targets(source)], cwd=stage, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded: dict[str, str | None] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("functions")
    result = subprocess.run(["bash", str(REPO_ROOT / "infra" / "package_function.sh"), str(out)],
                            capture_output=True, text=True, timeout=120, env=clean_env())
    assert result.returncode == 0, result.stderr
    return out


# --- the closure finder ------------------------------------------------------------------------


def test_closure_follows_lazy_and_relative_imports_but_not_type_checking(tmp_path: Path) -> None:
    finder = load_function_modules()
    files = {
        "main.py": "from pkg import core\n",
        "pkg/__init__.py": "",
        "pkg/core.py": textwrap.dedent("""
            from typing import TYPE_CHECKING
            from . import helpers
            if TYPE_CHECKING:
                from pkg import typing_only
            def backend(name):
                if name == "cloud":
                    from pkg.backends.cloud import Client
                    return Client
                import pkg.backends.local
                return pkg.backends.local
            """),
        "pkg/helpers.py": "import json\nfrom .core import backend\n",
        "pkg/typing_only.py": "",
        "pkg/backends/__init__.py": "",
        "pkg/backends/cloud.py": "Client = object\n",
        "pkg/backends/local.py": "",
        "pkg/unused.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    found = finder.closure(tmp_path / "main.py", root=tmp_path, package="pkg")

    assert found == {"pkg", "pkg.core", "pkg.helpers", "pkg.backends", "pkg.backends.cloud",
                     "pkg.backends.local"}
    assert [p.as_posix() for p in finder.closure_files(tmp_path / "main.py", tmp_path, "pkg")] \
        == ["pkg/__init__.py", "pkg/backends/__init__.py", "pkg/backends/cloud.py",
            "pkg/backends/local.py", "pkg/core.py", "pkg/helpers.py"]


# --- what is staged ----------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_stage_holds_the_function_and_its_detectflow_closure(staged: Path, source: str) -> None:
    stage = staged / source
    assert (stage / "main.py").is_file() and (stage / "requirements.txt").is_file()
    assert not list(stage.rglob("__pycache__"))
    finder = load_function_modules()
    closure = {p.as_posix() for p in finder.closure_files(REPO_ROOT / "functions" / source
                                                          / "main.py")}
    shipped = {p.relative_to(stage).as_posix() for p in (stage / "detectflow").rglob("*")
               if p.is_file()}
    assert shipped == closure
    # The layers a function never runs stay home.
    assert not {m for m in staged_modules(stage)
                if m.split(".")[1:2] in (["cli"], ["launcher"], ["datasets"], ["evaluation"])}


@pytest.mark.parametrize("source", SOURCES)
def test_every_staged_module_is_imported_under_some_supported_setting(
        staged: Path, source: str, tmp_path: Path) -> None:
    stage = staged / source
    imported: set[str] = set()
    for name, setting in SETTINGS.items():
        env = clean_env(**setting, DETECTFLOW_DATA_DIR=str(tmp_path / name))
        loaded = probe(sys.executable, stage, source, env)
        outside = sorted(m for m, f in loaded.items() if f and not Path(f).is_relative_to(stage))
        assert outside == [], f"{name}: loaded from outside the stage: {outside}"
        imported |= set(loaded)
    assert imported == staged_modules(stage), {
        "staged, never imported": sorted(staged_modules(stage) - imported),
        "imported, not staged": sorted(imported - staged_modules(stage)),
    }


# --- a fresh virtualenv with only requirements.txt ----------------------------------------------


def fresh_venv(where: Path, requirements: Path) -> tuple[Path, str | None]:
    """A new virtualenv with only `requirements` installed (from PyPI): (its python, why
    pip failed or None)."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=120,
                   env=clean_env())
    python = where / "bin" / "python"
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-r", str(requirements)], capture_output=True, text=True, timeout=600, env=clean_env())
    problem = None if result.returncode == 0 else result.stderr[-2000:]
    return python, problem


@pytest.fixture(scope="module")
def venvs(staged: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> dict[str, tuple[Path, str | None]]:
    """One fresh virtualenv per function, installed side by side (pip mostly waits)."""
    root = tmp_path_factory.mktemp("venvs")
    with ThreadPoolExecutor(len(SOURCES)) as pool:
        futures = {s: pool.submit(fresh_venv, root / s, staged / s / "requirements.txt")
                   for s in SOURCES}
        return {s: f.result() for s, f in futures.items()}


@pytest.mark.parametrize("source", SOURCES)
def test_staged_main_imports_with_only_its_requirements(
        staged: Path, venvs: dict[str, tuple[Path, str | None]], source: str,
        model_bundle: Path) -> None:
    """The deployed setting (GCS + Pub/Sub) in a virtualenv that has nothing but the
    function's requirements.txt; the infer function also detects with the bundled model."""
    stage = staged / source
    python, problem = venvs[source]
    if problem is not None:
        unavailable(f"pip could not install {source}/requirements.txt: {problem}")
    loaded = probe(python, stage, source, clean_env(**SETTINGS["gcs-pubsub"]))
    assert all(f is None or Path(f).is_relative_to(stage) for f in loaded.values())
    tensorflow = subprocess.run([str(python), "-c", "import tensorflow"], capture_output=True,
                                timeout=60, env=clean_env())
    assert tensorflow.returncode != 0  # not installed: nothing declared pulls it in
    if source != "infer":
        return
    image = next((SAMPLES_DIR / "JPEGImages").glob("*.jpg"))
    detect = ("import sys\nfrom detectflow.model import Detector\n"
              "print(len(Detector.load(sys.argv[1]).detect(sys.argv[2])))\n")
    result = subprocess.run([str(python), "-c", detect, str(model_bundle), str(image)],
                            cwd=stage, capture_output=True, text=True, timeout=120,
                            env=clean_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.strip().splitlines()[-1]) > 0

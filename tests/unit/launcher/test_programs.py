"""Finding what the local stack runs works from an installed package (no source checkout),
through explicit settings, and says clearly what to set when something is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectflow.launcher import programs
from detectflow.launcher.processes import EmulatorUnavailable


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """As from a wheel: no checkout above the package, an empty working directory."""
    monkeypatch.setattr(programs, "_source_checkout", lambda: None)
    monkeypatch.delenv("DETECTFLOW_FUNCTIONS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def make_functions(root: Path) -> Path:
    for name in programs.FUNCTION_FOLDERS:
        (root / name).mkdir(parents=True)
        (root / name / "main.py").write_text("# a function\n")
    return root


def test_functions_are_not_found_without_a_checkout_and_the_error_says_what_to_set(
        installed: Path) -> None:
    with pytest.raises(EmulatorUnavailable, match="DETECTFLOW_FUNCTIONS_DIR"):
        programs.find_functions_dir()


def test_functions_are_found_through_the_setting_or_the_working_directory(
        installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = make_functions(installed / "deploy" / "functions")
    monkeypatch.setenv("DETECTFLOW_FUNCTIONS_DIR", str(elsewhere))
    assert programs.find_functions_dir() == elsewhere.resolve()
    monkeypatch.delenv("DETECTFLOW_FUNCTIONS_DIR")
    here = make_functions(installed / "functions")
    assert programs.find_functions_dir() == here.resolve()
    assert programs.find_functions_dir(elsewhere) == elsewhere.resolve()


def test_an_explicit_folder_without_functions_is_an_error(installed: Path) -> None:
    with pytest.raises(EmulatorUnavailable, match=r"main\.py not found"):
        programs.find_functions_dir(installed / "nowhere")


def test_the_bundled_model_is_optional_when_installed(installed: Path) -> None:
    assert programs.find_bundled_model() is None
    bundle = installed / "models" / "bccd"
    bundle.mkdir(parents=True)
    (bundle / "manifest.json").write_text("{}")
    assert programs.find_bundled_model() == Path("models/bccd")


def test_the_source_checkout_is_found_from_the_package() -> None:
    checkout = programs._source_checkout()
    assert checkout is not None and (checkout / "functions" / "infer" / "main.py").is_file()


def test_a_missing_emulator_names_the_component(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setattr(programs, "SDK_ROOTS", (str(tmp_path),))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("DETECTFLOW_FIRESTORE_EMULATOR_JAR", raising=False)
    with pytest.raises(EmulatorUnavailable, match="cloud-firestore-emulator"):
        programs.find_firestore_jar()

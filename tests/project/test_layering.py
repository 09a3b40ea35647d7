"""The layering rules of docs/architecture.md ("Where things live"), stated as data and checked
on the source.

Every `import` and `from ... import` in detectflow/, frontend/, functions/ and trainer/ is read
with ast, the ones inside functions and under `if TYPE_CHECKING:` too, so a lazy import breaks a
rule as surely as one at the top of a file. A dynamic import (`importlib.import_module`,
`__import__`) of a literal name is checked like a static one; one of a name computed at run
time is allowed only in the modules listed below, with the reason: everywhere else the code
must be readable by a static check (infra/function_modules.py stages a function's modules by
the same reading). A run-time probe adds what a static reading of our own code cannot see:
that no third-party package we import pulls TensorFlow in.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping

from support.paths import REPO_ROOT

# Layer -> the module prefixes it holds (longest prefix wins). Functions are named
# `functions.<name>.main`; TensorFlow and Keras are one layer of their own.
LAYERS: dict[str, tuple[str, ...]] = {
    "core": ("detectflow",),
    "datasets": ("detectflow.datasets",),
    "evaluation": ("detectflow.evaluation",),
    "launcher": ("detectflow.launcher",),
    "cli": ("detectflow.cli",),
    "frontend": ("frontend",),
    "functions": ("functions",),
    "trainer": ("trainer",),
    "tensorflow": ("tensorflow", "keras", "tf_keras", "tensorflow_model_optimization"),
}

# Layer -> the layers it may import (besides itself). Anything not named here is a violation.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "datasets": frozenset({"core"}),
    "evaluation": frozenset({"core", "datasets"}),
    "launcher": frozenset({"core"}),
    "frontend": frozenset({"core"}),
    "functions": frozenset({"core"}),
    "trainer": frozenset({"core", "datasets", "evaluation", "tensorflow"}),
    "cli": frozenset({"core", "datasets", "evaluation", "launcher", "frontend", "trainer"}),
}

# Modules that import a module whose name is computed at run time, and why that is safe.
COMPUTED_IMPORTS: dict[str, str] = {
    "detectflow.cli.main": "loads the module of the subcommand it runs (detectflow.cli.*)",
    "detectflow.datasets": "module __getattr__: its own submodules, on first use",
    "detectflow.catalog.firestore": "google-cloud-firestore by name, kept out of mypy's view",
}

SOURCE_ROOTS = ("detectflow", "frontend", "functions", "trainer")


def layer_of(module: str) -> str | None:
    """The layer a dotted module name belongs to; None for third-party and stdlib modules."""
    best: tuple[int, str] | None = None
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                    best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    return best[1] if best else None


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import statement, wherever it is."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            yield node.lineno, base


def _dynamic_imports(tree: ast.AST) -> Iterator[tuple[int, str | None]]:
    """(line, module name, or None when it is computed) for each import_module/__import__."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                first = node.args[0] if node.args else None
                literal = first.value if isinstance(first, ast.Constant) else None
                yield node.lineno, literal if isinstance(literal, str) else None


def violations(sources: Mapping[str, tuple[str, bool]]) -> list[str]:
    """Every broken rule in `sources` (module name -> (source text, is a package)), as
    'module:line imports target (layer -> layer)'."""
    found = []
    for module, (text, is_package) in sorted(sources.items()):
        layer = layer_of(module)
        if layer is None or layer == "tensorflow":
            continue
        tree = ast.parse(text, filename=module)
        dynamic = list(_dynamic_imports(tree))
        literal = [(line, name) for line, name in dynamic if name is not None]
        for line, target in [*_imports(tree, module, is_package), *literal]:
            target_layer = layer_of(target)
            if target_layer not in (None, layer) and target_layer not in MAY_IMPORT[layer]:
                found.append(f"{module}:{line} imports {target} ({layer} -> {target_layer})")
        if module not in COMPUTED_IMPORTS:
            found.extend(f"{module}:{line} imports a module by a computed name"
                         for line, name in dynamic if name is None)
    return found


def repo_sources() -> dict[str, tuple[str, bool]]:
    sources = {}
    for root in SOURCE_ROOTS:
        for path in sorted((REPO_ROOT / root).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            sources[name] = (path.read_text(), is_package)
    return sources


def test_every_module_belongs_to_a_layer_with_rules() -> None:
    sources = repo_sources()
    assert len(sources) > 80
    assert {layer_of(m) for m in sources} == set(MAY_IMPORT)


def test_the_source_follows_the_layering_rules() -> None:
    assert violations(repo_sources()) == []


def test_the_checker_finds_lazy_relative_and_dynamic_violations() -> None:
    """The checker itself, on a small synthetic tree: each rule it enforces can fail."""
    lazy_cli = "def serve():\n    from detectflow.cli import main\n    return main\n"
    typed_only = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                  "    from frontend.schemas import ModelInfo\n")
    sources = {
        "detectflow.pipeline.fine": ("from detectflow.storage import Buckets\nimport numpy\n",
                                     False),
        "detectflow.pipeline.lazy": (lazy_cli, False),
        "detectflow.model.typed": (typed_only, False),
        "detectflow.pipeline.relative": ("from ..launcher import embedded\n", False),
        "detectflow.storage.dynamic": ("import importlib\nimportlib.import_module(name)\n",
                                       False),
        "detectflow.bus.literal": ("__import__('detectflow.launcher.emulators')\n", False),
        "detectflow.cli.main": ("import importlib\nimportlib.import_module(f'a.{x}')\n", False),
        "frontend.tf": ("import keras\n", False),
        "functions.infer.main": ("import trainer.model\n", False),
        "trainer.fine": ("import tensorflow as tf\nfrom detectflow.evaluation import metrics\n",
                         False),
        "detectflow.evaluation.up": ("from detectflow.launcher import embedded\n", False),
    }

    found = violations(sources)

    assert found == [
        "detectflow.bus.literal:1 imports detectflow.launcher.emulators (core -> launcher)",
        "detectflow.evaluation.up:1 imports detectflow.launcher (evaluation -> launcher)",
        "detectflow.model.typed:3 imports frontend.schemas (core -> frontend)",
        "detectflow.pipeline.lazy:2 imports detectflow.cli (core -> cli)",
        "detectflow.pipeline.relative:1 imports detectflow.launcher (core -> launcher)",
        "detectflow.storage.dynamic:2 imports a module by a computed name",
        "frontend.tf:1 imports keras (frontend -> tensorflow)",
        "functions.infer.main:1 imports trainer.model (functions -> trainer)",
    ]


PROBE = """
import importlib, json, pkgutil, runpy, sys
import detectflow, frontend

def loaded(tops):
    return sorted(m for m in sys.modules if m.split(".")[0] in tops)

names = [m.name for pkg in (detectflow, frontend)
         for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")
         if not m.name.endswith(".__main__")]
for name in names:
    importlib.import_module(name)
for main in sys.argv[1:]:
    runpy.run_path(main)
after_imports = loaded(("tensorflow", "keras", "tf_keras", "trainer"))
from detectflow.cli import build_parser
build_parser().format_help()
print(json.dumps({"modules": len(names), "after_imports": after_imports,
                  "after_help": loaded(("tensorflow", "keras", "tf_keras"))}))
"""


def test_importing_everything_but_the_trainer_loads_no_tensorflow() -> None:
    """Every module of detectflow and frontend, and each function's main.py, imported in one
    fresh process, loads neither TensorFlow/Keras (no third-party import on the way pulls it
    in) nor the trainer; building `detectflow --help` then loads no TensorFlow either (the
    command line reads its training defaults from the TensorFlow-free trainer.config)."""
    mains = [str(p) for p in sorted(REPO_ROOT.glob("functions/*/main.py"))]
    result = subprocess.run([sys.executable, "-c", PROBE, *mains], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["modules"] > 40
    assert report["after_imports"] == []
    assert report["after_help"] == []

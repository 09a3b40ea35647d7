"""The detectflow modules a deployable function needs: the import closure of its main.py.

Follows every `import` and `from ... import` statement by reading the source (ast), including
the ones inside functions: the storage and bus backends are imported lazily, when a setting
(local, GCS, S3, Pub/Sub) selects them at run time, so a static reading is what finds them all.
Imports under `if TYPE_CHECKING:` are skipped (they never run). Importing `a.b.c` runs
`a/__init__.py` and `a/b/__init__.py` too, so packages on the way are part of the closure.

    python infra/function_modules.py functions/infer/main.py   # one path per line, repo-relative

infra/package_function.sh stages exactly these files next to the function's main.py.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "detectflow"


def module_file(root: Path, module: str) -> Path | None:
    """The source file of a module under `root` (a package's __init__.py), or None."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of `tree` except the bodies of `if TYPE_CHECKING:` blocks."""
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Dotted names a module imports at run time (at import or inside functions): for
    `from a import b` both `a` and `a.b` (b may be a submodule); relative imports resolved."""
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def closure(entry: Path, root: Path = ROOT, package: str = PACKAGE) -> set[str]:
    """Names of the `package` modules that `entry` (a script, e.g. main.py) reaches."""
    found: set[str] = set()
    todo = [(entry, "__main__", False)]
    while todo:
        path, module, is_package = todo.pop()
        tree = ast.parse(path.read_text(), filename=str(path))
        for name in imported_names(tree, module, is_package):
            if name.split(".")[0] != package:
                continue
            for candidate in _with_parents(name):
                source = module_file(root, candidate)
                if source is None or candidate in found:
                    continue  # `from a import b` where b is not a module
                found.add(candidate)
                todo.append((source, candidate, source.name == "__init__.py"))
    return found


def closure_files(entry: Path, root: Path = ROOT, package: str = PACKAGE) -> list[Path]:
    """The source files of `closure(entry)`, relative to `root`, sorted."""
    files = (module_file(root, name) for name in closure(entry, root, package))
    return sorted(f.relative_to(root) for f in files if f is not None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("entry", type=Path, help="a function's main.py")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the folder that holds the package (default: this repository)")
    args = parser.parse_args(argv)
    for path in closure_files(args.entry, args.root):
        sys.stdout.write(f"{path.as_posix()}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

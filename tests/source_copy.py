"""A copy of the source tree to break on purpose, where checkers about the source show teeth.

:func:`copy_source` copies the packages into a temporary directory (their
source only: a copy runs the pure-Python build); :func:`rename_method` and
:func:`add_import` edit one file of the copy by its syntax tree's line
numbers, so that an edit cannot silently miss; :func:`run_in_copy` runs a
script against the copy.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("spec", "impl", "models", "tests", "bench")


def copy_source(target: Path, packages: tuple[str, ...] = PACKAGES) -> Path:
    """Copy ``packages`` (without caches) into ``target``; returns ``target``."""
    for package in packages:
        shutil.copytree(
            ROOT / package,
            target / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.so", "_compiled.json"),
        )
    return target


def rename_method(path: Path, cls: str, method: str, new_name: str) -> None:
    """Rename ``cls.method`` to ``new_name`` in the file at ``path`` (it must be defined there)."""
    lines = path.read_text().splitlines(keepends=True)
    for node in ast.walk(ast.parse("".join(lines))):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == method:
                    line = item.lineno - 1
                    lines[line] = lines[line].replace(f"def {method}(", f"def {new_name}(", 1)
                    path.write_text("".join(lines))
                    return
    raise LookupError(f"{cls}.{method} is not defined in {path}")


def add_import(path: Path, module: str) -> None:
    """Add ``import module`` after the module docstring and ``__future__`` import of ``path``."""
    tree = ast.parse(path.read_text())
    after = max(
        (
            node.end_lineno or node.lineno
            for node in tree.body[:2]
            if isinstance(node, ast.Expr | ast.ImportFrom)
        ),
        default=0,
    )
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(after, f"import {module}  # planted\n")
    path.write_text("".join(lines))


def run_in_copy(copy: Path, script: str, *args: str) -> str:
    """What ``script`` printed, run by this interpreter with the copy first on the path.

    It must exit 0 (AssertionError with its stderr otherwise).
    """
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=copy,
        env={**os.environ, "PYTHONPATH": str(copy)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout

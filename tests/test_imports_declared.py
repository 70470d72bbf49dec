"""Every package the source imports is declared in pyproject.toml (or is Python's own)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

from tests.source_copy import PACKAGES, ROOT, add_import, copy_source

DISTRIBUTION = {"z3": "z3-solver", "_pytest": "pytest", "PIL": "pillow"}
"""Import names whose distribution is called otherwise."""


def declared(root: Path) -> set[str]:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return {re.split(r"[<>=!\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def undeclared(root: Path) -> list[tuple[str, str]]:
    """(module, distribution) for each third-party import not declared."""
    names = declared(root)
    found = set()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    tops = [alias.name.partition(".")[0] for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    tops = [node.module.partition(".")[0]]
                else:
                    continue
                for top in tops:
                    if top in sys.stdlib_module_names or top in PACKAGES:
                        continue
                    if DISTRIBUTION.get(top, top).lower() not in names:
                        module = ".".join(path.relative_to(root).with_suffix("").parts)
                        found.add((module, DISTRIBUTION.get(top, top)))
    return sorted(found)


def test_every_imported_package_is_declared() -> None:
    assert {"hypothesis", "z3-solver", "coverage"} <= declared(ROOT)
    assert undeclared(ROOT) == []


def test_an_undeclared_import_is_caught(tmp_path: Path) -> None:
    root = copy_source(tmp_path)
    (root / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    add_import(root / "models" / "workload.py", "numpy")
    assert undeclared(root) == [("models.workload", "numpy")]

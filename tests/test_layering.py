"""The layering rule, enforced on the source and at run time (docs/architecture.md, "Sharing").

* ``spec`` imports nothing of ours; ``impl`` imports only ``impl`` and the
  specification's vocabulary (``spec.vocabulary``, ``spec.errors``,
  ``spec.arguments``); ``models`` imports ``spec``, ``impl`` and ``models``;
  ``bench`` measures ``impl`` and the evidence's tools (it may import all
  three); nothing outside ``tests`` imports ``tests``.
* ``import impl`` in a fresh interpreter loads none of the specification's
  state machine (``spec/__init__.py`` loads only the vocabulary).

Every import counts, including those under ``TYPE_CHECKING`` and inside
functions. Each checker is shown failing on an edited copy of the source.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from tests.source_copy import ROOT, add_import, copy_source

OURS = ("spec", "impl", "models", "tests", "bench")
VOCABULARY = ("spec", "spec.vocabulary", "spec.errors", "spec.arguments")
"""What ``impl`` may import of the specification (``spec`` itself loads only the vocabulary)."""


class Import(NamedTuple):
    importer: str
    imported: str


class Violation(NamedTuple):
    importer: str
    imported: str
    rule: str


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_in(root: Path) -> list[Import]:
    """Every import of one of our modules by one of our modules under ``root``.

    ``from package import name`` counts as importing ``package.name`` when that is a module.
    """
    modules = {
        module_name(root, path): path for package in OURS for path in (root / package).rglob("*.py")
    }
    found = []
    for importer, path in sorted(modules.items()):
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against the importer's package
                    package = importer.split(".")
                    package = package if is_package else package[:-1]
                    package = package[: len(package) - node.level + 1]
                    base = ".".join([*package, *([base] if base else [])])
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            found += [Import(importer, t) for t in targets if t.partition(".")[0] in OURS]
    return sorted(set(found))


def broken_rule(importer: str, imported: str) -> str | None:
    """The rule that ``importer`` importing ``imported`` breaks, or None."""
    mine, theirs = importer.partition(".")[0], imported.partition(".")[0]
    if theirs == "tests" and mine != "tests":
        return "nothing imports tests"
    if mine == "spec" and theirs != "spec":
        return "spec imports nothing of ours"
    if mine == "impl" and theirs != "impl" and imported not in VOCABULARY:
        return "impl imports only impl and the spec's vocabulary"
    if mine == "models" and theirs not in ("spec", "impl", "models"):
        return "models imports only spec, impl and models"
    if mine == "bench" and theirs not in ("spec", "impl", "models", "bench"):
        return "bench imports only spec, impl, models and bench"
    return None


def layering_violations(root: Path) -> list[Violation]:
    """The imports under ``root`` that break the layering rule."""
    return [
        Violation(importer, imported, rule)
        for importer, imported in imports_in(root)
        if (rule := broken_rule(importer, imported)) is not None
    ]


def spec_modules_loaded_by(root: Path, module: str) -> list[str]:
    """The ``spec`` modules that importing ``module`` loads, in a fresh interpreter at ``root``."""
    code = (
        f"import json, sys; import {module}; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'spec')))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(run.stdout)
    return loaded


def test_the_source_keeps_the_layering() -> None:
    assert len(imports_in(ROOT)) > 100  # the walk found the source
    assert layering_violations(ROOT) == []


def test_an_import_of_the_state_machine_in_impl_is_caught(tmp_path: Path) -> None:
    root = copy_source(tmp_path)
    add_import(root / "impl" / "memory_file.py", "spec.state")
    assert layering_violations(root) == [
        Violation(
            "impl.memory_file", "spec.state", "impl imports only impl and the spec's vocabulary"
        )
    ]


def test_imports_of_tests_and_from_spec_are_caught(tmp_path: Path) -> None:
    root = copy_source(tmp_path)
    add_import(root / "models" / "workload.py", "tests.figures")
    add_import(root / "spec" / "ranges.py", "impl.gaps")
    assert layering_violations(root) == [
        Violation("models.workload", "tests.figures", "nothing imports tests"),
        Violation("spec.ranges", "impl.gaps", "spec imports nothing of ours"),
    ]


def test_importing_impl_loads_only_the_vocabulary() -> None:
    assert spec_modules_loaded_by(ROOT, "impl") == sorted(VOCABULARY)


def test_a_state_machine_module_loaded_by_impl_is_caught(tmp_path: Path) -> None:
    root = copy_source(tmp_path, ("spec", "impl"))
    add_import(root / "impl" / "memory_file.py", "spec.state")
    assert "spec.state" in spec_modules_loaded_by(root, "impl")


def test_importing_spec_loads_only_the_vocabulary() -> None:
    assert spec_modules_loaded_by(ROOT, "spec") == ["spec", "spec.errors", "spec.vocabulary"]


# --- Inside impl: no import circle, no reaching into another module's private members ---------


def import_cycles(root: Path, package: str) -> list[list[str]]:
    """Every elementary circle of imports among ``package``'s modules, each from its least name."""
    edges: dict[str, set[str]] = {}
    for importer, imported in imports_in(root):
        if importer.partition(".")[0] == package and imported.partition(".")[0] == package:
            edges.setdefault(importer, set()).add(imported)
    cycles: set[tuple[str, ...]] = set()

    def walk(path: list[str]) -> None:
        for following in sorted(edges.get(path[-1], ())):
            if following == path[0]:
                cycles.add(tuple(path))
            elif following not in path and following > path[0]:
                walk([*path, following])

    for start in sorted(edges):
        walk([start])
    return [list(cycle) for cycle in sorted(cycles)]


class PrivateAccess(NamedTuple):
    module: str
    line: int
    name: str


def private_accesses(root: Path, package: str) -> list[PrivateAccess]:
    """``x._name`` in a module of ``package`` where ``_name`` is not defined in that module.

    A module defines ``_name`` by assigning ``self._name``, defining a function
    or class of that name, or listing it in ``__slots__``; ``self``, ``cls`` and
    ``super()`` may use any.
    """
    found = []
    for path in sorted((root / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        defined: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                defined.add(node.attr)
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
            ):
                defined |= {
                    c.value
                    for c in ast.walk(node.value)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
                continue
            if node.attr.startswith("__") or node.attr in defined:
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and getattr(owner.func, "id", None) == "super":
                continue
            found.append(PrivateAccess(module_name(root, path), node.lineno, node.attr))
    return found


def test_impl_has_no_import_circle() -> None:
    assert len([i for i in imports_in(ROOT) if i.importer.startswith("impl.")]) > 10
    assert import_cycles(ROOT, "impl") == []


def test_an_import_circle_in_impl_is_caught(tmp_path: Path) -> None:
    root = copy_source(tmp_path, ("spec", "impl"))
    add_import(root / "impl" / "reclaimer.py", "impl.memory_file")
    assert import_cycles(root, "impl") == [["impl.memory_file", "impl.reclaimer"]]


def test_no_impl_module_reaches_into_another_s_private_members() -> None:
    assert private_accesses(ROOT, "impl") == []


def test_reaching_into_another_module_s_private_members_is_caught(tmp_path: Path) -> None:
    root = copy_source(tmp_path, ("spec", "impl"))
    reclaimer = root / "impl" / "reclaimer.py"
    reclaimer.write_text(
        reclaimer.read_text() + "\n\ndef peek(f: object) -> object:\n    return f._mu\n"
    )
    (line,) = [n for n, text in enumerate(reclaimer.read_text().splitlines(), 1) if "f._mu" in text]
    assert private_accesses(root, "impl") == [PrivateAccess("impl.reclaimer", line, "_mu")]

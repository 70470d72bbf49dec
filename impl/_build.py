"""Which build of ``impl`` runs: the mypyc-compiled modules, or the pure-Python source.

Both come from the same ``.py`` files (setup.py compiles them at install when it
can; docs/performance.md, "Two builds"). Python itself prefers a compiled
module over its ``.py``; :func:`choose` installs :class:`PureFinder`, which
lets only the modules the manifest lists load compiled, and none of them when

* ``PGALLOC_PURE=1`` is set (the switch), or
* a compiled module's source, or a spec module it read (its constants are
  compiled in), changed since it was compiled (an edit in an editable
  install: running the stale compiled code would be wrong, so the edit runs,
  with a warning saying how to rebuild).

This module stays interpreted and imports nothing of ``impl``: ``impl/__init__``
imports it first, and its import makes the choice. :func:`describe` reports
what actually loaded (``impl.build()``).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Final

PURE_VARIABLE = "PGALLOC_PURE"
HERE = Path(__file__).resolve().parent
MANIFEST_PATH = HERE / "_compiled.json"


class PureFinder(importlib.abc.MetaPathFinder):
    """Finds ``impl``'s submodules as their ``.py`` source, but for those in ``compiled``.

    A compiled module is left to Python's own finders, which prefer its
    extension; every other one loads from source, even beside an extension
    (one left over from an earlier build, or one the switch turned off).
    """

    def __init__(self, compiled: frozenset[str]) -> None:
        self.compiled = compiled

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        source = HERE / f"{name}.py"
        if package != "impl" or fullname in self.compiled or not source.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def _read_manifest() -> dict[str, Any]:
    """The build's manifest, or {} if nothing was compiled."""
    try:
        manifest: dict[str, Any] = json.loads(MANIFEST_PATH.read_text())
    except (OSError, ValueError):
        return {}
    return manifest


MANIFEST: Final = _read_manifest()
"""Written by setup.py's build: ``{"mypy": version, "modules": {name: source sha256},
"inputs": {name: sha256}}`` (the spec modules the compiled ones read); read once."""
COMPILED: Final[dict[str, str]] = MANIFEST.get("modules", {})
"""The modules compiled and the hashes of their sources; empty if nothing was compiled."""


def _changed() -> list[str]:
    """The compiled modules, and the spec modules they read, changed since the build."""
    recorded = {**COMPILED, **MANIFEST.get("inputs", {})}
    changed = []
    for name, digest in recorded.items():
        package, _, module = name.rpartition(".")
        source = HERE.parent / package / f"{module}.py"
        try:
            now = hashlib.sha256(source.read_bytes()).hexdigest()
        except OSError:
            now = ""
        if now != digest:
            changed.append(name)
    return changed


def choose() -> str | None:
    """Install the :class:`PureFinder` this process needs; why it runs pure, or None."""
    trusted: frozenset[str] = frozenset()
    if os.environ.get(PURE_VARIABLE) == "1":
        reason: str | None = f"{PURE_VARIABLE}=1"
    elif changed := _changed():
        reason = f"{', '.join(changed)} changed since compiled"
        warnings.warn(
            f"pgalloc: {reason}: running the pure-Python impl "
            "(rebuild the compiled one with `pip install -e .`)",
            stacklevel=3,
        )
    else:
        reason, trusted = None, frozenset(COMPILED)
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, PureFinder)]
    sys.meta_path.insert(0, PureFinder(trusted))
    return reason


def loaded_compiled() -> int:
    """How many of the modules compiled at install are loaded compiled."""
    loaded = [sys.modules.get(name) for name in COMPILED]
    return sum(1 for module in loaded if module is not None and is_compiled(module))


def describe() -> str:
    """The build that is loaded, from the modules themselves: one line for humans.

    ``compiled (mypyc 2.4.1, 12 modules)``, or ``pure Python (why)``. A mix
    (some compiled, some not) is said as such: it is a broken install.
    """
    native = loaded_compiled()
    if COMPILED and native == len(COMPILED):
        return f"compiled (mypyc {MANIFEST.get('mypy', '?')}, {native} modules)"
    if native:
        return f"MIXED: {native} of {len(COMPILED)} modules compiled (reinstall pgalloc)"
    return f"pure Python ({REASON or 'not compiled at install'})"


def is_compiled(module: ModuleType) -> bool:
    """Whether ``module`` was loaded from a compiled extension."""
    return str(getattr(module, "__file__", "")).endswith(
        tuple(importlib.machinery.EXTENSION_SUFFIXES)
    )


REASON = choose()
"""Why the pure build runs, or None: chosen once, when ``impl`` is first imported."""

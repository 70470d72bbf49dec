"""The build: impl's hot modules compiled by mypyc from their typed source, when it can be.

Everything else about the package is in pyproject.toml. This file adds the
compiled build (docs/performance.md, "Two builds"): :data:`COMPILED` are
translated to C by mypyc (shipped in the ``mypy`` build requirement) and
compiled as optional extensions beside their ``.py`` files. When mypyc or a C
compiler is missing, or a module does not compile, the install still succeeds
and ``impl`` runs as pure Python; ``PGALLOC_PURE=1`` at build time skips the
compiled build on purpose. ``impl/_compiled.json`` records the hash of each
source compiled and of the spec modules it read, so that ``impl`` loads a
compiled module only while they are unchanged (impl/_build.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED = (
    "impl/leaves.py",
    "impl/gaps.py",
    "impl/segments.py",
    "impl/chunks.py",
    "impl/accounting.py",
    "impl/books.py",
    "impl/evictables.py",
    "impl/state.py",
    "impl/usage.py",
    "impl/eviction.py",
    "impl/reclaimer.py",
    "impl/operations.py",
)
"""The modules compiled: the range sets, the state, accounting, the reclaimer and eviction
steps, and the client's hot operations. Interpreted stay ``kernel``, ``runtime`` and
``pressure``, the seams tests and the scheduler replace (their cost is the kernel's), and
``memory_file``, whose public methods
take the caller's arguments: compiled, mypyc would convert each at the call, before the
file checks it, taking ``True`` as 1 and refusing a str with its own TypeError, where the
file must raise the spec's InvalidArgument and change nothing (tests/impl/test_bad_input.py)."""

INPUTS = ("spec/vocabulary.py", "spec/errors.py", "spec/arguments.py")
"""What the compiled modules read of the spec at compile time (its Final constants are
inlined): the only spec modules impl may import (tests/test_layering.py)."""
GROUP = "pgalloc_impl"
"""mypyc's shared library for the group is the top-level module ``pgalloc_impl__mypyc``."""


def say(message: str) -> None:
    print(f"pgalloc build: {message}", file=sys.stderr, flush=True)


def extensions() -> list[Any]:  # mypyc types them as distutils' or setuptools' Extension
    """mypyc's extensions for :data:`COMPILED`, or none (with the reason said)."""
    if os.environ.get("PGALLOC_PURE") == "1":
        say("PGALLOC_PURE=1: pure Python only, nothing compiled")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as error:
        say(f"mypyc is not available ({error}): impl will run as pure Python")
        return []
    try:
        built = mypycify(list(COMPILED), opt_level="3", group_name=GROUP)
    except (Exception, SystemExit) as error:  # mypyc exits on a type error
        say(f"mypyc could not translate impl ({error!r}): impl will run as pure Python")
        return []
    for extension in built:
        extension.optional = True  # no C compiler: a warning, not a failed install
    return built


class BuildWithManifest(build_ext):
    """build_ext, then the manifest of what was compiled (only if all of it was)."""

    def run(self) -> None:
        if not self.extensions:
            super().run()
            return
        outputs = [Path(self.get_ext_fullpath(ext.name)) for ext in self.extensions]
        manifest = Path(self.get_ext_fullpath("impl.leaves")).parent / "_compiled.json"
        leftovers = [*manifest.parent.glob("*.so"), *manifest.parent.parent.glob(f"{GROUP}_*.so")]
        for stale in [*leftovers, manifest]:  # a failed compile must not leave an old one
            stale.unlink(missing_ok=True)
        super().run()
        missing = [path.name for path in outputs if not path.exists()]
        if missing:
            say(f"{', '.join(missing)} did not compile: impl will run as pure Python")
            return
        manifest.write_text(
            json.dumps(
                {
                    "mypy": _mypy_version(),
                    "modules": {_name(source): _sha256(source) for source in COMPILED},
                    "inputs": {_name(source): _sha256(source) for source in INPUTS},
                },
                indent=1,
                sort_keys=True,
            )
            + "\n"
        )
        say(f"compiled {len(COMPILED)} modules of impl with mypyc")


def _name(source: str) -> str:
    return source[:-3].replace("/", ".")


def _sha256(source: str) -> str:
    return hashlib.sha256(Path(source).read_bytes()).hexdigest()


def _mypy_version() -> str:
    from mypy.version import __version__

    return __version__


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildWithManifest})

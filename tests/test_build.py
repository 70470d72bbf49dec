"""The two builds of impl: the one expected is the one loaded, and the switches work.

CI sets ``PGALLOC_EXPECT_BUILD`` (``compiled`` for the main run, ``pure`` for
the pure-build run, .ci/run), so a run on the wrong build fails here instead
of passing on the other one.
"""

from __future__ import annotations

import ast
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import impl
from tests.source_copy import ROOT

REPORT = """
import sys, impl
print(impl.build())
files = [str(m.__file__) for n, m in sorted(sys.modules.items()) if n.startswith("impl.")]
print(*files, sep="\\n")
"""


def _loaded(env: dict[str, str], path: Path | None = None) -> tuple[str, list[str], str]:
    """impl's build line, its modules' files and stderr, in a fresh interpreter."""
    if path is not None:
        env = {**env, "PYTHONPATH": str(path)}
    done = subprocess.run(
        [sys.executable, "-c", REPORT],
        env=env,
        cwd=path or ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    build, *files = done.stdout.splitlines()
    return build, files, done.stderr


def _compiled_modules() -> list[str]:
    """setup.py's list of compiled modules, as module names."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMPILED":
            value = ast.literal_eval(node.value)
            return [source[:-3].replace("/", ".") for source in value]
    raise LookupError("setup.py defines no COMPILED")


def test_the_expected_build_is_loaded() -> None:
    expected = os.environ.get("PGALLOC_EXPECT_BUILD")
    build = impl.build()
    assert not build.startswith("MIXED"), build
    if expected is not None:
        assert expected in ("compiled", "pure"), f"PGALLOC_EXPECT_BUILD={expected}"
        assert build.startswith(expected), f"expected the {expected} build, loaded {build}"
    compiled = [sys.modules[name] for name in _compiled_modules()]
    native = [module.__name__ for module in compiled if not str(module.__file__).endswith(".py")]
    assert native == (_compiled_modules() if impl.compiled() else []), build


def test_the_switch_loads_every_module_from_its_source() -> None:
    build, files, _ = _loaded({**os.environ, "PGALLOC_PURE": "1"})
    assert build == "pure Python (PGALLOC_PURE=1)"
    assert files and all(file.endswith(".py") for file in files), files


def test_the_seams_stay_interpreted_in_either_build() -> None:
    """Tests and the scheduler replace the kernel, the runtime and the pressure source."""
    for name in ("impl.kernel", "impl.runtime", "impl.pressure", "impl._build"):
        assert name not in _compiled_modules()
        assert str(sys.modules[name].__file__).endswith(".py")


@pytest.mark.parametrize("edited", ["impl/gaps.py", "spec/vocabulary.py"])
def test_a_source_changed_since_compiled_runs_pure_and_says_how_to_rebuild(
    tmp_path: Path, edited: str
) -> None:
    """An edit to a compiled module, or to a spec module it read (its constants are inlined)."""
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "impl", copy / "impl", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "spec", copy / "spec", ignore=shutil.ignore_patterns("__pycache__"))
    manifest = copy / "impl" / "_compiled.json"
    if not manifest.exists():  # not compiled here: a manifest as the build writes it
        modules = dict.fromkeys(_compiled_modules(), "0" * 64)
        inputs = {"spec.vocabulary": "0" * 64}
        manifest.write_text(json.dumps({"mypy": "?", "modules": modules, "inputs": inputs}))
    else:  # an edit after the build
        with (copy / edited).open("a") as source:
            source.write("# edited after the build\n")
    env = {k: v for k, v in os.environ.items() if k != "PGALLOC_PURE"}
    build, files, stderr = _loaded(env, copy)
    assert build.startswith("pure Python (") and "changed since compiled" in build, build
    assert edited[:-3].replace("/", ".") in build
    assert "pip install -e ." in stderr
    assert all(file.startswith(str(copy)) and file.endswith(".py") for file in files), files


def test_an_extension_the_manifest_does_not_list_is_never_loaded(tmp_path: Path) -> None:
    """A leftover of an earlier build (memory_file was compiled once) must not shadow its .py."""
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "impl", copy / "impl", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "spec", copy / "spec", ignore=shutil.ignore_patterns("__pycache__"))
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    (copy / "impl" / f"memory_file{suffix}").write_bytes(b"not an extension")
    env = {k: v for k, v in os.environ.items() if k != "PGALLOC_PURE"}
    build, files, _ = _loaded(env, copy)
    assert str(copy / "impl" / "memory_file.py") in files, (build, files)

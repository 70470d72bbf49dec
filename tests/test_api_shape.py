"""``MemoryFileApi`` has teeth: mypy rejects ``tests/api_shape.py`` once a class loses a method.

Each case renames one method in a copy of the source and runs mypy (strict)
on the copy's ``api_shape.py``; the failure must name the class and the
missing member. The unedited copy must pass, so the failures are the edit's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from spec.vocabulary import MemoryFileApi
from tests.source_copy import copy_source, rename_method

MISSING = re.compile(r'note: "(\w+)" is missing following "MemoryFileApi" protocol member')


def mypy_problems(root: Path) -> tuple[int, list[tuple[str, str]]]:
    """mypy's exit status on the copy's api_shape.py, and the (class, missing member) pairs."""
    run = subprocess.run(
        [
            *(sys.executable, "-m", "mypy", "--strict", "--python-version", "3.11"),
            *("--cache-dir", str(root / ".mypy_cache"), "tests/api_shape.py"),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = run.stdout.splitlines()
    missing = []
    for number, line in enumerate(lines):
        found = MISSING.search(line)
        if found:  # the next lines list the members, one per line, indented
            for member in lines[number + 1 :]:
                name = member.partition("note:")[2].strip()
                if not member.partition("note:")[2].startswith("    ") or not name:
                    break
                missing.append((found[1], name))
    return run.returncode, missing


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_source(tmp_path_factory.mktemp("source"), ("spec", "impl", "tests"))


@pytest.mark.slow
def test_the_unedited_copy_passes(source: Path) -> None:
    assert mypy_problems(source) == (0, [])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "cls", "method"),
    [
        ("impl/memory_file.py", "MemoryFile", "total_size"),
        ("impl/memory_file.py", "MemoryFile", "mark_unevictable"),
        ("spec/memory_file.py", "SpecMemoryFile", "read"),
        ("spec/memory_file.py", "SpecMemoryFile", "run_evictions"),
    ],
)
def test_mypy_fails_when_a_method_is_removed(
    tmp_path: Path, path: str, cls: str, method: str
) -> None:
    assert hasattr(MemoryFileApi, method)
    root = copy_source(tmp_path, ("spec", "impl", "tests"))
    rename_method(root / path, cls, method, f"{method}_removed")
    status, missing = mypy_problems(root)
    assert status == 1
    assert missing == [(cls, method)]

"""mypy's proof that both memory files have the API: each is assigned to ``MemoryFileApi``.

Nothing here runs; ``mypy`` checks it with the rest of the tree, and
``tests/test_api_shape.py`` shows that it fails when either class loses a
method (by running mypy on an edited copy).
"""

from __future__ import annotations

from impl.memory_file import MemoryFile
from spec.memory_file import SpecMemoryFile
from spec.vocabulary import FileRange, MemoryFileApi


def spec_has_the_api(file: SpecMemoryFile) -> MemoryFileApi[tuple[FileRange, ...]]:
    return file


def impl_has_the_api(file: MemoryFile) -> MemoryFileApi[list[memoryview]]:
    return file

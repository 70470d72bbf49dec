"""pgalloc's real allocator: gVisor's ``pgalloc.MemoryFile`` over a memfd.

Read in this order: :mod:`impl.kernel` (the one seam to the OS),
:mod:`impl.runtime` (the one seam to threads), :mod:`impl.leaves`,
:mod:`impl.gaps`, :mod:`impl.segments` (the range structures),
:mod:`impl.chunks`, :mod:`impl.accounting`, :mod:`impl.books`,
:mod:`impl.evictables`, :mod:`impl.state` (the file's state and its lock),
:mod:`impl.usage`, :mod:`impl.eviction`, :mod:`impl.reclaimer` (the
spec's seams), :mod:`impl.operations` (the hot client methods' bodies),
:mod:`impl.memory_file` (the allocator's client methods),
:mod:`impl.pressure` (memory-cgroup notifications).

The same source runs compiled by mypyc or as pure Python: :func:`build`
says which (:mod:`impl._build` chooses).

``impl`` imports only the specification's vocabulary (``spec.vocabulary``,
``spec.errors``, ``spec.arguments``), never its state machine
(``tests/test_layering.py``).
"""

from impl import _build  # first: importing it chooses the build the imports below load
from impl.accounting import MEMORY_ACCOUNTING, MemoryAccounting
from impl.kernel import Kernel
from impl.memory_file import MemoryFile
from impl.pressure import (
    AnyPressure,
    MemcgPressureLevel,
    MemcgUsageThreshold,
    PressureSource,
    PressureUnavailable,
    PsiTrigger,
    current_memcg_pressure,
)


def build() -> str:
    """The build of impl loaded: ``compiled (mypyc ..., N modules)`` or ``pure Python (why)``.

    The modules compiled at install (setup.py) load unless ``PGALLOC_PURE=1`` is
    set or their source changed since (then the ``.py`` files load, with a warning).
    """
    return _build.describe()


def compiled() -> bool:
    """Whether every module compiled at install is loaded compiled (see :func:`build`)."""
    return bool(_build.COMPILED) and _build.loaded_compiled() == len(_build.COMPILED)


__all__ = [
    "MEMORY_ACCOUNTING",
    "AnyPressure",
    "Kernel",
    "MemcgPressureLevel",
    "MemcgUsageThreshold",
    "MemoryAccounting",
    "MemoryFile",
    "PressureSource",
    "PressureUnavailable",
    "PsiTrigger",
    "build",
    "compiled",
    "current_memcg_pressure",
]

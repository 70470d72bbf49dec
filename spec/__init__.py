"""pgalloc's executable specification of gVisor's ``pgalloc.MemoryFile``.

Read in this order:

* :mod:`spec.vocabulary`, :mod:`spec.errors`, :mod:`spec.arguments` — the
  shared vocabulary (ranges, kinds, options, errors, argument checks), which
  ``impl/`` imports too;
* :mod:`spec.ranges` — where an allocation goes, stated declaratively;
* :mod:`spec.rangemap`, :mod:`spec.host` — the canonical range map the state is
  made of, and the model of what the kernel holds;
* :mod:`spec.state` — the state, and the observation ports compare;
* :mod:`spec.allocator`, :mod:`spec.reclaimer`, :mod:`spec.eviction`,
  :mod:`spec.usage` — every transition, split where the seed drops its lock;
* :mod:`spec.invariants` — what must always hold;
* :mod:`spec.memory_file` — the same transitions behind the seed's method names.

Nothing here touches the OS, starts a thread or reads a clock.

Importing ``spec`` loads only the vocabulary and the errors (what ``impl``
shares); the state machine's names (``SpecMemoryFile``, ``State``, ...) load
on first use, so that ``import impl`` never loads the specification's
transitions (``tests/test_layering.py`` checks it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from spec.errors import (
    ContractViolation,
    InvalidArgument,
    InvalidLength,
    InvalidOptions,
    InvalidRange,
    InvariantViolation,
    NoReferences,
    RangeBeyondFile,
    UnallocatedPages,
    UseAfterDestroy,
)
from spec.vocabulary import (
    CHUNK_SIZE,
    HUGE_PAGE_SIZE,
    MAX_PAGE,
    PAGE_SIZE,
    READ,
    READ_WRITE,
    WRITE,
    AccessType,
    BytesReader,
    DelayedEviction,
    EvictableMemoryUser,
    EvictableRange,
    FileRange,
    FillResult,
    MemoryFileApi,
    MemoryFileOpts,
    MemoryKind,
    Observation,
    Reader,
)

if TYPE_CHECKING:
    from spec.invariants import check_invariants
    from spec.memory_file import SpecMemoryFile
    from spec.ranges import find_available_range
    from spec.state import SEED, SeedDefects, State, observe

_STATE_MACHINE = {
    "check_invariants": "spec.invariants",
    "SpecMemoryFile": "spec.memory_file",
    "find_available_range": "spec.ranges",
    "SEED": "spec.state",
    "SeedDefects": "spec.state",
    "State": "spec.state",
    "observe": "spec.state",
}
"""The names loaded on first use, and the module each comes from."""


def __getattr__(name: str) -> object:
    module = _STATE_MACHINE.get(name)
    if module is None:
        raise AttributeError(f"module 'spec' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "CHUNK_SIZE",
    "HUGE_PAGE_SIZE",
    "MAX_PAGE",
    "PAGE_SIZE",
    "READ",
    "READ_WRITE",
    "SEED",
    "WRITE",
    "AccessType",
    "BytesReader",
    "ContractViolation",
    "DelayedEviction",
    "EvictableMemoryUser",
    "EvictableRange",
    "FileRange",
    "FillResult",
    "InvalidArgument",
    "InvalidLength",
    "InvalidOptions",
    "InvalidRange",
    "InvariantViolation",
    "MemoryFileApi",
    "MemoryFileOpts",
    "MemoryKind",
    "NoReferences",
    "Observation",
    "RangeBeyondFile",
    "Reader",
    "SeedDefects",
    "SpecMemoryFile",
    "State",
    "UnallocatedPages",
    "UseAfterDestroy",
    "check_invariants",
    "find_available_range",
    "observe",
]

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
"""

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
from spec.invariants import check_invariants
from spec.memory_file import SpecMemoryFile
from spec.ranges import find_available_range
from spec.state import SEED, SeedDefects, State, observe
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
    MemoryFileOpts,
    MemoryKind,
    Observation,
    Reader,
)

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

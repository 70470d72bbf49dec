"""The shared vocabulary of pgalloc: ranges, kinds, options, constants.

Everything here is immutable and imported by both the specification and the
real implementation (``impl/``), so that the two speak about the same things.
Names follow gVisor (``memmap.FileRange``, ``usage.MemoryKind``,
``pgalloc.MemoryFileOpts``, ``usermem.AccessType``) in Python spelling.

All offsets and lengths are Go ``uint64`` values: integers in ``[0, 2**64)``.
Ranges are plain named tuples so that the hot paths of ``impl/`` can create
them cheaply; they do not validate themselves (neither does Go's), the
operations that receive them do.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol, TypeVar, runtime_checkable

# --- Constants ---------------------------------------------------------------

PAGE_SIZE: Final = 4096
"""usermem.PageSize."""

PAGE_SHIFT: Final = 12

HUGE_PAGE_SIZE: Final = 2 << 20
"""usermem.HugePageSize: allocations at least this long are aligned to it."""

CHUNK_SHIFT: Final = 30
CHUNK_SIZE: Final = 1 << CHUNK_SHIFT
"""The file is grown and mapped in 1 GiB chunks."""

CHUNK_MASK: Final = CHUNK_SIZE - 1

UINT64_MAX: Final = (1 << 64) - 1
INT64_MAX: Final = (1 << 63) - 1

MAX_PAGE: Final = UINT64_MAX & ~(PAGE_SIZE - 1)
"""The highest 64-bit page (the seed's ``maxPage``): the longest possible length."""

FILL_BUFFER: Final = 1 << 20
"""How much ``allocate_and_fill`` asks its reader for at a time (invisible to callers)."""

CLOCKS_PER_SEC: Final = 100
"""linux.CLOCKS_PER_SEC."""

NANOSECOND: Final = 1
MILLISECOND: Final = 1_000_000
SECOND: Final = 1_000_000_000

RESCAN_INTERVAL: Final = 1000 // CLOCKS_PER_SEC * MILLISECOND
"""update_usage never scans twice within this (10 ms): Linux updates usage at CONFIG_HZ."""


def is_uint64(value: object) -> bool:
    """Whether ``value`` is an int (not a bool) representable as a Go uint64."""
    return type(value) is int and 0 <= value <= UINT64_MAX


# --- Ranges -------------------------------------------------------------------


class HalfOpenRange(NamedTuple):
    """A half-open range ``[start, end)`` of uint64 offsets (gVisor's generated range types)."""

    start: int
    end: int

    def well_formed(self) -> bool:
        return self.start <= self.end

    def length(self) -> int:
        """The number of offsets in the range (0 for an ill-formed one, unlike Go)."""
        return max(0, self.end - self.start)

    def __str__(self) -> str:
        return f"[{self.start:#x}, {self.end:#x})"


class FileRange(HalfOpenRange):
    """A half-open range ``[start, end)`` of byte offsets into the backing file."""

    __slots__ = ()

    def contains(self, offset: int) -> bool:
        return self.start <= offset < self.end

    def overlaps(self, other: FileRange) -> bool:
        return self.start < other.end and other.start < self.end

    def is_superset_of(self, other: FileRange) -> bool:
        return self.start <= other.start and other.end <= self.end

    def intersect(self, other: FileRange) -> FileRange:
        """The common part; an empty range at ``max(starts)`` if there is none."""
        start = max(self.start, other.start)
        end = min(self.end, other.end)
        return FileRange(start, max(start, end))


class EvictableRange(HalfOpenRange):
    """A half-open range of offsets in an :class:`EvictableMemoryUser`'s own space."""

    __slots__ = ()


# --- Kinds, options, access ----------------------------------------------------


class MemoryKind(enum.IntEnum):
    """usage.MemoryKind: the accounting categories (same numbering as gVisor)."""

    SYSTEM = 0
    ANONYMOUS = 1
    PAGE_CACHE = 2
    TMPFS = 3
    RAMDISKFS = 4
    MAPPED = 5


class DelayedEviction(enum.IntEnum):
    """pgalloc.DelayedEvictionType: how long evictable memory may be kept."""

    DEFAULT = 0
    """Unspecified behaviour; normalised to ENABLED at creation."""
    DISABLED = 1
    """Evict as soon as a range is marked evictable."""
    ENABLED = 2
    """Evict on memcg pressure, or (without it) when the reclaimer runs out of work."""
    MANUAL = 3
    """Evict only when start_evictions is called."""


@dataclass(frozen=True, slots=True)
class MemoryFileOpts:
    """pgalloc.MemoryFileOpts."""

    delayed_eviction: DelayedEviction = DelayedEviction.DEFAULT
    use_host_memcg_pressure: bool = False
    """Drive evictions from memory-cgroup pressure notifications (ENABLED only)."""
    manual_zeroing: bool = False
    """Zero pages by writing instead of trusting fresh or punched pages to read as zero."""


@dataclass(frozen=True, slots=True)
class HostFaults:
    """Kernel calls that fail, each with its errno, every time while set (None: it works).

    An explicit input of the specification and the fault-injection seam of
    ``impl.kernel.Kernel``, so both can be driven through the same failure.
    """

    truncate: int | None = None
    """``ftruncate``, when ``allocate`` grows the file."""
    map: int | None = None
    """``mmap`` of a chunk not yet mapped."""
    punch: int | None = None
    """``fallocate(PUNCH_HOLE)`` (``decommit`` raises it; the reclaimer zeroes instead)."""
    mincore: int | None = None
    """``mincore``, during ``update_usage``'s scan."""


NO_FAULTS = HostFaults()


@dataclass(frozen=True, slots=True)
class AccessType:
    """usermem.AccessType: the kinds of access a mapping must permit."""

    read: bool = False
    write: bool = False
    execute: bool = False


READ = AccessType(read=True)
WRITE = AccessType(write=True)
READ_WRITE = AccessType(read=True, write=True)
ANY_ACCESS = AccessType(read=True, write=True, execute=True)


# --- Collaborators ---------------------------------------------------------------


@runtime_checkable
class EvictableMemoryUser(Hashable, Protocol):
    """pgalloc.EvictableMemoryUser: something that can give memory back on request.

    ``evict`` is called without any allocator lock held, so it may race with
    ``mark_unevictable`` and must then do nothing for ranges no longer evictable.
    """

    def evict(self, er: EvictableRange) -> None: ...


class Reader(Protocol):
    """The source of ``allocate_and_fill``: Python's ``readinto`` convention.

    ``readinto`` fills a prefix of ``buffer`` and returns how many bytes it
    wrote; 0 means end of data. It may raise to report an error, after which it
    must not have written into ``buffer``.
    """

    def readinto(self, buffer: memoryview, /) -> int: ...


class BytesReader:
    """A :class:`Reader` that supplies ``data`` and then raises ``error`` (or ends).

    The abstract reader of the specification, and a convenient real one.
    """

    def __init__(self, data: bytes, error: BaseException | None = None) -> None:
        self.data = data
        self.error = error
        self.offset = 0

    def readinto(self, buffer: memoryview, /) -> int:
        n = min(len(buffer), len(self.data) - self.offset)
        if n == 0 and self.error is not None and len(buffer) > 0:
            raise self.error
        buffer[:n] = self.data[self.offset : self.offset + n]
        self.offset += n
        return n


@dataclass(frozen=True, slots=True)
class FillResult:
    """What ``allocate_and_fill`` returns, as the seed's ``(FileRange, error)``.

    ``file_range`` holds the pages filled (rounded down to whole pages; the rest
    was freed again); ``error`` is what the reader raised, or :class:`EOFError`
    if it ended early, or None if it supplied every byte.
    """

    file_range: FileRange
    error: BaseException | None


# --- The observation -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observation:
    """The canonical, comparable snapshot of a MemoryFile that spec, impl and ports share.

    ``spec.state.observe`` and ``impl.MemoryFile.observation`` build it; the
    conformance protocol's ``state`` result is its JSON form.
    """

    file_size: int
    usage: tuple[tuple[FileRange, MemoryKind, int, bool], ...]
    """(range, kind, refs, known committed), maximally merged."""
    reclaim: tuple[FileRange, ...]
    accounting: tuple[tuple[MemoryKind, int], ...]
    """What this file contributed to its MemoryAccounting, for every kind in order."""
    usage_expected: int
    usage_swapped: int
    evictable: tuple[tuple[str, tuple[EvictableRange, ...], bool], ...]
    """(user label, evictable ranges, evicting), sorted by label."""


# --- The API both sides implement -------------------------------------------------

Blocks_co = TypeVar("Blocks_co", bound=Sequence[object], covariant=True)
"""What ``map_internal`` returns: file ranges in the spec, memoryviews in ``impl``."""


class MemoryFileApi(Protocol[Blocks_co]):
    """The seed's ``MemoryFile`` methods, as ``SpecMemoryFile`` and ``impl.MemoryFile`` share them.

    mypy checks both classes against it (``tests/api_shape.py``) and the
    conformance ports drive either through it. It leaves out only what differs
    by nature: construction, and ``update_usage``'s inputs (the spec takes the
    clock and, optionally, the host's answer as arguments; ``impl`` reads its
    clock and the kernel). ``reclaim``, ``run_evictions`` and ``observation``
    are not the seed's: they drive its goroutines and take its snapshot.
    """

    def allocate(self, length: int, kind: MemoryKind) -> FileRange: ...
    def allocate_and_fill(self, length: int, kind: MemoryKind, reader: Reader) -> FillResult: ...
    def decommit(self, fr: FileRange) -> None: ...
    def inc_ref(self, fr: FileRange) -> None: ...
    def dec_ref(self, fr: FileRange) -> None: ...
    def map_internal(self, fr: FileRange, at: AccessType) -> Blocks_co: ...
    def read(self, fr: FileRange) -> bytes: ...
    def write(self, offset: int, data: bytes) -> None: ...
    def mark_evictable(self, user: Hashable, er: EvictableRange) -> None: ...
    def mark_unevictable(self, user: Hashable, er: EvictableRange) -> None: ...
    def mark_all_unevictable(self, user: Hashable) -> None: ...
    def should_cache_evictable(self) -> bool: ...
    def start_evictions(self) -> None: ...
    def wait_for_evictions(self) -> None: ...
    def memcg_pressure(self) -> bool: ...
    def total_usage(self) -> int: ...
    def total_size(self) -> int: ...
    def destroy(self) -> None: ...
    def reclaim(self) -> list[FileRange]: ...
    def run_evictions(self) -> list[tuple[Hashable, EvictableRange]]: ...
    def observation(self, label: Callable[[Hashable], str] = str) -> Observation: ...


@dataclass(frozen=True, slots=True)
class SeedDefects:
    """Defects of the seed that spec and impl correct, each restorable.

    Our default is correct; a test sets a flag to show a checker finding the
    seed's defect (the model checker in the spec, the controlled scheduler in
    impl). Shared vocabulary, so both read the same switch. See docs/divergences.md.
    """

    stale_mincore: bool = False
    """Trust a mincore result taken while the lock was dropped, even if pages were
    decommitted (and maybe reallocated) meanwhile, and book swap against the
    usage read when the scan began, so usage that vanished meanwhile is booked
    as swap."""
    adjacent_segment: bool = False
    """Mark committed a segment that merely ends where a committed run starts (the
    seed's ``seg.End() < committedFR.Start``, which should be ``<=``)."""
    empty_unevictable: bool = False
    """``MarkUnevictable`` of an empty range ``[x, x)`` strictly inside an evictable
    range drops that range's tail ``[x, end)`` (the seed's loop isolates the
    segment at ``x`` and removes the upper part, though ``er`` holds no offset).
    The spec's only: impl refuses it."""

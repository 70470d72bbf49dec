"""What the usage set's values say, and the pure parts of ``update_usage``.

The seed's ``usageInfo`` (:class:`Usage`) and the transitions of a run of
pages (a reference more or fewer, committed learnt or forgotten); the skip
rules of ``UpdateUsage`` (:func:`should_skip`, written independently of
``spec.usage.should_skip`` on purpose: see docs/architecture.md, "Sharing");
the usage set's queries the scan and the reclaimer need; and the whole-file
``mincore`` report (:func:`committed_ranges`). The scan itself, which drops
the file's lock around ``mincore``, is ``MemoryFile.update_usage``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import NamedTuple

from impl.accounting import MemoryAccounting
from impl.chunks import Chunks
from impl.kernel import Kernel, ResidencyVector, committed_runs
from impl.segments import SegmentSet
from spec.errors import InvariantViolation, NoReferences, UnallocatedPages
from spec.vocabulary import (
    CHUNK_MASK,
    CHUNK_SHIFT,
    CHUNK_SIZE,
    PAGE_SHIFT,
    PAGE_SIZE,
    RESCAN_INTERVAL,
    SECOND,
    FileRange,
    MemoryKind,
)

SYSTEM = MemoryKind.SYSTEM


class Usage(NamedTuple):
    """The seed's ``usageInfo``: what is known about a run of pages."""

    kind: MemoryKind
    known_committed: bool
    """True only if the pages are certainly committed."""
    refs: int


FREED = Usage(SYSTEM, False, 0)
FREED_KNOWN = Usage(SYSTEM, True, 0)
UNREFERENCED_SYSTEM = (FREED, FREED_KNOWN)
"""Every value of pages the reclaimer may take (values compare by ==, so `in` finds them)."""
FRESH = {kind: Usage(kind, False, 1) for kind in MemoryKind}
"""What a new allocation of each kind holds (made once: the allocation path is hot)."""


def add_ref(u: Usage) -> Usage:
    return Usage(u.kind, u.known_committed, u.refs + 1)


def drop_ref(u: Usage) -> Usage:
    # The last reference gone, the pages are System memory until reclaimed.
    if u.refs > 1:
        return Usage(u.kind, u.known_committed, u.refs - 1)
    return FREED_KNOWN if u.known_committed else FREED


def forget_committed(u: Usage) -> Usage:
    return Usage(u.kind, False, u.refs) if u.known_committed else u


def learn_committed(u: Usage) -> Usage:
    # Only committable pages (referenced, not yet known) change; see update_usage.
    return Usage(u.kind, True, u.refs) if not u.known_committed and u.refs else u


class Books:
    """What a file told its ``MemoryAccounting``, and what it expects the kernel to hold.

    Plain data under the file's lock. Invariants: ``contributed[k]`` is the
    sum of every change booked for kind ``k``; ``expected`` is the length of
    the pages known committed; ``swapped`` is what the last scan found the
    kernel holding beyond ``expected`` (booked as System).
    """

    __slots__ = ("accounting", "contributed", "expected", "last", "swapped")

    def __init__(self, accounting: MemoryAccounting) -> None:
        self.accounting = accounting
        self.contributed = [0] * len(MemoryKind)
        self.expected = 0
        self.swapped = 0
        self.last: int | None = None
        """When the last scan began (the seed's ``usageLast``); None: never."""

    def account(self, kind: MemoryKind, delta: int) -> None:
        self.contributed[kind] += delta
        if delta >= 0:
            self.accounting.inc(delta, kind)
        else:
            self.accounting.dec(-delta, kind)

    def freed(self, kind: MemoryKind, length: int) -> None:
        """Committed pages of ``kind`` lost their last reference: System until reclaimed."""
        self.contributed[kind] -= length
        self.contributed[SYSTEM] += length
        self.accounting.move(length, SYSTEM, kind)

    def should_skip(self, now: int, current: int) -> bool:
        """:func:`should_skip` on these books."""
        return should_skip(now, current, self.expected, self.swapped, self.last)

    def learn(self, usage: SegmentSet[Usage], start: int, end: int) -> None:
        """The committed run ``[start, end)`` found by ``mincore``: see :func:`mark_committed`."""
        self.expected += mark_committed(usage, start, end, self.account)

    def forget(self, usage: SegmentSet[Usage], start: int, end: int) -> None:
        """markDecommitted of ``[start, end)``: see :func:`mark_decommitted`."""
        self.expected -= mark_decommitted(usage, start, end, self.account)

    def reclaimed(self, usage: SegmentSet[Usage], start: int, end: int) -> None:
        """The reclaimer punched the free ``[start, end)``: see :func:`committed_if_free`."""
        committed = committed_if_free(usage, start, end)
        if committed:
            self.account(SYSTEM, -committed)
            self.expected -= committed

    def book_swap(self, current: int) -> None:
        """Book what the kernel holds (``current``) beyond ``expected`` as swap, or drop it."""
        if self.expected < current:
            swapped = current - self.expected
            self.account(SYSTEM, swapped - self.swapped)
            self.swapped = swapped
        elif self.swapped:
            self.account(SYSTEM, -self.swapped)
            self.swapped = 0

    def accounting_observation(self) -> tuple[tuple[MemoryKind, int], ...]:
        return tuple((kind, self.contributed[kind]) for kind in MemoryKind)


Account = Callable[[MemoryKind, int], None]
"""Books a change of ``delta`` bytes of a kind (``Books.account``)."""


def covering(
    usage: SegmentSet[Usage], fr: FileRange, operation: str
) -> list[tuple[int, int, Usage]]:
    """The usage segments over ``fr``; UnallocatedPages unless they cover all of it."""
    parts = usage.segments(fr.start, fr.end)
    position = fr.start
    for start, end, _ in parts:
        if start != position:
            break
        position = end
    else:
        if position == fr.end:
            return parts
    gap = usage.first_gap(fr.start, fr.end)
    raise UnallocatedPages(
        f"{operation}({fr}): attempted on unallocated pages {FileRange(*gap) if gap else fr}"
    )


def referenced(
    usage: SegmentSet[Usage], fr: FileRange, operation: str
) -> list[tuple[int, int, Usage]]:
    """The usage segments over ``fr``, all allocated and referenced (else the seed panics)."""
    parts = covering(usage, fr, operation)
    for start, end, u in parts:
        if u.refs == 0:
            raise NoReferences(
                f"{operation}({fr}): 0 existing references on {FileRange(start, end)}"
            )
    return parts


def should_skip(now: int, current: int, expected: int, swapped: int, last: int | None) -> bool:
    """UpdateUsage's three reasons not to scan, in the seed's order.

    ``current``: what the kernel holds; ``expected``, ``swapped``: the
    file's books; ``last``: when the last scan began (None: never).
    """
    if current == expected and swapped == 0:
        return True
    if last is None:  # Go's zero time: every interval since is huge
        return False
    if current == expected + swapped and now < last + SECOND:
        return True
    return now - last < RESCAN_INTERVAL


def next_committable(usage: SegmentSet[Usage], position: int) -> tuple[int, int] | None:
    """The first segment ending after ``position`` whose pages may newly be committed."""
    segment = usage.lower_bound(position)
    while segment is not None:
        start, end, u = segment
        if not u.known_committed and u.refs:
            return start, end
        segment = usage.lower_bound(end)
    return None


def mark_committed(usage: SegmentSet[Usage], start: int, end: int, account: Account) -> int:
    """Mark the committable pages of the committed run ``[start, end)``; the bytes learnt."""
    learnt = 0
    for s, e, u in usage.segments(start, end):
        if not u.known_committed and u.refs:
            account(u.kind, e - s)
            learnt += e - s
    if learnt:
        usage.update(start, end, learn_committed)
    return learnt


def mark_decommitted(usage: SegmentSet[Usage], start: int, end: int, account: Account) -> int:
    """markDecommitted: forget that the pages of ``[start, end)`` are committed; the bytes."""
    forgotten = 0
    for s, e, u in usage.segments(start, end):
        if u.known_committed:
            account(u.kind, -(e - s))
            forgotten += e - s
    if forgotten:
        usage.update(start, end, forget_committed)
    return forgotten


def committed_if_free(usage: SegmentSet[Usage], start: int, end: int) -> int:
    """The known committed bytes of ``[start, end)``, which must be unreferenced System pages.

    InvariantViolation otherwise (the reclaimer took pages that are not free).
    """
    segment = usage.lower_bound(start)
    if (
        segment is not None
        and segment[0] <= start
        and end <= segment[1]
        and segment[2] in UNREFERENCED_SYSTEM
    ):
        # The usual case, one free segment holds the whole range: what the
        # loop below finds when that segment is the only part.
        return end - start if segment[2].known_committed else 0
    committed = 0
    position = start
    for s, e, u in usage.segments(start, end):
        if s != position or u.refs or u.kind is not SYSTEM:
            raise InvariantViolation(f"reclaimed pages {FileRange(start, end)} are not free")
        if u.known_committed:
            committed += e - s
        position = e
    if position != end:
        raise InvariantViolation(f"reclaimed pages {FileRange(start, end)} are not in use")
    return committed


def committed_ranges(kernel: Kernel, fd: int, file_size: int, chunks: Chunks) -> list[FileRange]:
    """What ``mincore`` says is committed over the whole file, merged.

    ``SEEK_DATA``/``SEEK_HOLE`` find the regions worth asking about (a sparse
    file may be huge); chunks not mapped yet are mapped just for the question,
    so the file's own mappings are not changed.
    """
    found: list[FileRange] = []
    vector = ResidencyVector(CHUNK_SIZE >> PAGE_SHIFT)
    for region_start, end in _data_regions(fd, file_size):
        position = region_start
        while position < end:
            base = position & ~CHUNK_MASK
            stop = min(end, base + CHUNK_SIZE)
            for first, last in _residency(
                kernel, fd, chunks, base, position - base, stop - base, vector
            ):
                run = FileRange(base + first, base + last)
                if found and found[-1].end == run.start:
                    found[-1] = FileRange(found[-1].start, run.end)
                else:
                    found.append(run)
            position = stop
    return found


def _residency(
    kernel: Kernel, fd: int, chunks: Chunks, base: int, lo: int, hi: int, vector: ResidencyVector
) -> list[tuple[int, int]]:
    """The committed runs (offsets in the chunk at ``base``) of ``[lo, hi)`` of that chunk.

    A chunk the file has not mapped is mapped just for the question, and
    unmapped after it even if it fails.
    """
    mapping = chunks.get(base >> CHUNK_SHIFT)
    temporary = mapping is None
    if mapping is None:
        mapping = kernel.map_chunk(fd, base, CHUNK_SIZE)
    try:
        kernel.mincore(mapping.address + lo, hi - lo, vector)
        runs = committed_runs(vector.bytes, (hi - lo) >> PAGE_SHIFT)
    finally:
        if temporary:
            kernel.unmap_chunk(mapping)
    return [(lo + (first << PAGE_SHIFT), lo + (stop << PAGE_SHIFT)) for first, stop in runs]


def _data_regions(fd: int, file_size: int) -> list[tuple[int, int]]:
    regions = []
    position = 0
    while position < file_size:
        try:
            start = os.lseek(fd, position, os.SEEK_DATA)
        except OSError as error:
            if error.errno == errno.ENXIO:
                break
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), file_size)
        regions.append((start & ~(PAGE_SIZE - 1), (end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)))
        position = end
    return regions

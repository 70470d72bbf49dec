"""``update_usage``: its skip rules, its scan, and the usage set's queries.

The skip rules of ``UpdateUsage`` (:func:`should_skip`, written independently
of ``spec.usage.should_skip`` on purpose: see docs/architecture.md,
"Sharing"); the scan, which drops the file's lock around ``mincore``
(:func:`scan_locked`, on a :class:`impl.state.FileState`); the usage set's
queries the client's methods need (:func:`covering`, :func:`referenced`); and
the whole-file ``mincore`` report (:func:`committed_ranges`). What the usage
set's values are and how they are booked is :mod:`impl.books`.
"""

from __future__ import annotations

import errno
import os

from impl.books import Usage
from impl.chunks import Chunks
from impl.kernel import Kernel, ResidencyVector, committed_runs
from impl.segments import SegmentSet
from impl.state import FileState
from spec.errors import NoReferences, UnallocatedPages
from spec.vocabulary import (
    CHUNK_MASK,
    CHUNK_SHIFT,
    CHUNK_SIZE,
    PAGE_SHIFT,
    PAGE_SIZE,
    RESCAN_INTERVAL,
    SECOND,
    FileRange,
)


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


def scan_locked(state: FileState, vector: ResidencyVector) -> None:
    """UpdateUsage's scan: mark what ``mincore`` finds committed in each committable segment.

    Chunk slice by slice, it drops the lock around ``mincore`` (``vector``
    holds the answer, decoded with bytes operations, not a per-page loop) and
    marks the committed pages, accounting them to their kind; an answer taken
    while pages were decommitted is asked again. It stops if the file is
    destroyed meanwhile.
    """
    position = 0
    while not state.destroyed and (segment := next_committable(state.usage, position)):
        start, end = segment
        while start < end and not state.destroyed:
            stop = min(end, (start & ~CHUNK_MASK) + CHUNK_SIZE)
            _query_and_mark_locked(state, start, stop, vector)
            start = stop
        position = end


def _query_and_mark_locked(state: FileState, start: int, end: int, vector: ResidencyVector) -> None:
    """mincore the slice ``[start, end)`` without the lock, then mark what it found."""
    address = state.chunks.chunk(start >> CHUNK_SHIFT).address + (start & CHUNK_MASK)
    while True:
        generation = state.decommit_generation
        state.unlocked_users += 1
        state.mu.release()
        try:
            state.kernel.mincore(address, end - start, vector)
        finally:
            state.mu.acquire()
            state.unlocked_done_locked()
        if generation == state.decommit_generation or state.defects.stale_mincore:
            break
        # Pages were decommitted (maybe reallocated) meanwhile: the answer may be stale.
    adjacent = state.defects.adjacent_segment
    for first, stop in committed_runs(vector.bytes, (end - start) >> PAGE_SHIFT):
        run_start = start + (first << PAGE_SHIFT)
        if adjacent and run_start > start:
            _learn_adjacent_locked(state, run_start)
        state.books.learn(state.usage, run_start, start + (stop << PAGE_SHIFT))


def _learn_adjacent_locked(state: FileState, run_start: int) -> None:
    """The seed's defect D3: a committable segment ending at ``run_start``, marked whole."""
    segment = state.usage.lower_bound(run_start - PAGE_SIZE)
    if segment is not None and segment[1] == run_start:
        s, e, u = segment
        if not u.known_committed and u.refs:
            state.books.learn(state.usage, s, e)


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

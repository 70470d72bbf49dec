"""The client's operations: create, allocate, fill, reference, decommit, map, destroy.

Each public function is one of the seed's ``MemoryFile`` methods as a pure
transition: it takes a :class:`State` and returns the next one (with the
method's result, if it has one). Each validates everything first and raises
before changing anything; see :mod:`spec.errors`.

Where the seed drops its lock in the middle of a method (Decommit punches
holes without it), the method is also offered as its separate steps.

Kernel calls that fail are inputs too: each function that makes one takes
its errno (``truncate_error``, ``map_error``, ``punch_error``; None: it
works) and raises ``OSError`` with it. Where the seed has changed part of
its state before the call fails (``allocate`` grows the file, then zeroes),
the function is split at that point, so that ``SpecMemoryFile`` keeps the
first part and then raises.
"""

from __future__ import annotations

from dataclasses import replace

from spec import host as hostmodel
from spec.arguments import (
    check_access,
    check_file_range,
    check_kind,
    check_length,
    check_page_range,
    check_write,
    normalize_opts,
    read_count,
)
from spec.errors import (
    InvalidArgument,
    NoReferences,
    RangeBeyondFile,
    UnallocatedPages,
    UseAfterDestroy,
    eacces,
    enomem,
    os_error,
)
from spec.ranges import align_up, allocation_alignment, find_available_range
from spec.state import (
    Reclaimer,
    ReclaimerStep,
    SeedDefects,
    State,
    UsageInfo,
    account,
)
from spec.vocabulary import (
    CHUNK_SHIFT,
    CHUNK_SIZE,
    FILL_BUFFER,
    PAGE_SIZE,
    AccessType,
    DelayedEviction,
    FileRange,
    FillResult,
    MemoryFileOpts,
    MemoryKind,
    Reader,
)

# --- Creation and destruction ---------------------------------------------------


def new_memory_file(
    opts: MemoryFileOpts = MemoryFileOpts(),
    defects: SeedDefects = SeedDefects(),
    truncate_error: int | None = None,
) -> State:
    """NewMemoryFile: an empty file; the reclaimer goroutine is started (RUNNING).

    Raises :class:`InvalidOptions` for options the seed rejects, then the
    errno of a failing ``ftruncate`` (the file is first truncated to 0).
    """
    opts = normalize_opts(opts)
    if truncate_error is not None:
        raise os_error(truncate_error, "ftruncate(0) of the new memory file")
    return State(opts=opts, defects=defects)


def destroy(state: State) -> State:
    """Destroy: tell the reclaimer to release everything and exit.

    The reclaimer closes the file and unmaps the chunks when it next runs
    (``reclaimer_exit``). Destroying twice is allowed and changes nothing.
    """
    if state.destroyed:
        return state
    return signal_reclaimer(replace(state, destroyed=True))


def require_live(state: State) -> None:
    """None of a MemoryFile's methods may be called after Destroy."""
    if state.destroyed:
        raise UseAfterDestroy("the MemoryFile has been destroyed")


# --- Allocation -------------------------------------------------------------------


def allocate(
    state: State,
    length: int,
    kind: MemoryKind,
    truncate_error: int | None = None,
    map_error: int | None = None,
) -> tuple[State, FileRange]:
    """Allocate: a range of ``length`` zeroed bytes holding one reference.

    The range is the highest free fit (see :mod:`spec.ranges`); if it ends
    past the file, the file grows to the next chunk multiple. With
    ``manual_zeroing`` the pages are zeroed by writing, which commits them.
    Raises ENOMEM when no range fits. The two steps, :func:`find_and_grow`
    and :func:`take_range`, say what a failing kernel call leaves behind.
    """
    state, fr = find_and_grow(state, length, kind, truncate_error)
    return take_range(state, fr, kind, map_error), fr


def find_and_grow(
    state: State, length: int, kind: MemoryKind, truncate_error: int | None = None
) -> tuple[State, FileRange]:
    """Allocate's first step: check, find the range, grow the file if it must.

    Raises ENOMEM, or the errno of a failing ``ftruncate``, changing nothing.
    The growth stays even if the second step fails, as in the seed.
    """
    require_live(state)
    check_length(length)
    check_kind(kind)
    fr = find_available_range(
        state.usage.ranges(), state.file_size, length, allocation_alignment(length)
    )
    if fr is None:
        raise enomem(f"no range of {length:#x} bytes fits in a file of {state.file_size:#x}")
    if fr.end > state.file_size:
        if truncate_error is not None:
            raise os_error(truncate_error, f"ftruncate to hold {fr}")
        state = replace(state, file_size=align_up(fr.end, CHUNK_SIZE))
    return state, fr


def take_range(
    state: State, fr: FileRange, kind: MemoryKind, map_error: int | None = None
) -> State:
    """Allocate's second step: zero ``fr`` by hand if the options say so, then allocate it.

    Raises the errno of a failing ``mmap`` (manual zeroing of a chunk not
    yet mapped), changing nothing.
    """
    if state.opts.manual_zeroing:
        state = manually_zero(state, fr, map_error)
    usage = state.usage.assign(fr, UsageInfo(kind, known_committed=False, refs=1))
    return replace(state, usage=usage)


def fill(state: State, fr: FileRange, reader: Reader) -> tuple[State, FillResult]:
    """AllocateAndFill's fill, once ``fr`` is allocated and mapped: read until full, EOF or error.

    AllocateAndFill is the seed's composition of its methods (Allocate,
    MapInternal, DecRef if that fails, then this), and ``SpecMemoryFile``
    composes it the same way. Only whole pages filled are kept: the rest of
    the range (including a partly filled page) is released with ``dec_ref``
    at once, and the result holds the shorter range with the reader's error
    (``EOFError`` if it just ended).
    """
    length = fr.length()
    done, error = 0, None
    buffer = bytearray(min(length, FILL_BUFFER))
    while done < length:
        view = memoryview(buffer)[: min(len(buffer), length - done)]
        try:
            n = read_count(reader.readinto(view), len(view))
        except Exception as raised:  # the reader's error is part of the result
            error = raised
            break
        if not n:
            error = EOFError(f"reader ended after {done} of {length} bytes")
            break
        state = replace(state, host=hostmodel.write(state.host, fr.start + done, bytes(view[:n])))
        done += n
    kept = done - done % PAGE_SIZE
    if kept < length:
        state = dec_ref(state, FileRange(fr.start + kept, fr.end))
        fr = FileRange(fr.start, fr.start + kept)
    return state, FillResult(fr, error)


# --- References -------------------------------------------------------------------


def require_allocated(state: State, fr: FileRange, operation: str) -> None:
    """The seed's ApplyContiguous guard: every page of ``fr`` is in the usage set."""
    for gap in state.usage.gaps_within(fr):
        raise UnallocatedPages(f"{operation}({fr}): attempted on unallocated pages {gap}")


def require_referenced(state: State, fr: FileRange, operation: str) -> None:
    """IncRef's and DecRef's precondition: a reference is held on every page of ``fr``."""
    require_allocated(state, fr, operation)
    for part, info in state.usage.within(fr):
        if info.refs == 0:
            raise NoReferences(f"{operation}({fr}): 0 existing references on {part}")


def inc_ref(state: State, fr: FileRange) -> State:
    """IncRef: one more reference on every page of ``fr``."""
    require_live(state)
    check_page_range(fr)
    require_referenced(state, fr, "IncRef")
    return replace(state, usage=state.usage.update(fr, lambda u: replace(u, refs=u.refs + 1)))


def dec_ref(state: State, fr: FileRange) -> State:
    """DecRef: one reference fewer on every page of ``fr``.

    Pages whose count reaches zero join the reclaim set and are accounted as
    System until reclaimed; the reclaimer is signalled.
    """
    require_live(state)
    check_page_range(fr)
    require_referenced(state, fr, "DecRef")
    freed = [(part, info) for part, info in state.usage.within(fr) if info.refs == 1]
    accounting, reclaim = state.accounting, state.reclaim
    for part, info in freed:
        reclaim = reclaim.assign(part, None)
        if info.known_committed:
            accounting = account(accounting, info.kind, -part.length())
            accounting = account(accounting, MemoryKind.SYSTEM, part.length())
    state = replace(
        state,
        usage=state.usage.update(fr, _release_one),
        reclaim=reclaim,
        accounting=accounting,
    )
    if freed:
        state = signal_reclaimer(replace(state, reclaimable=True))
    return state


def _release_one(info: UsageInfo) -> UsageInfo:
    if info.refs > 1:
        return replace(info, refs=info.refs - 1)
    return UsageInfo(MemoryKind.SYSTEM, info.known_committed, refs=0)


def signal_reclaimer(state: State) -> State:
    """``reclaimCond.Signal()``: wakes the reclaimer if it waits; otherwise it is lost."""
    if state.reclaimer.step is ReclaimerStep.WAITING:
        return replace(state, reclaimer=Reclaimer(ReclaimerStep.RUNNING))
    return state


# --- Decommit -------------------------------------------------------------------------


def decommit(
    state: State, fr: FileRange, punch_error: int | None = None, map_error: int | None = None
) -> State:
    """Decommit: release the memory behind ``fr``; its pages then read as zeroes.

    Punches a hole (or zeroes by hand with ``manual_zeroing``), then clears
    knownCommitted. A failing ``fallocate`` (``punch_error``), or with manual
    zeroing a failing ``mmap`` (``map_error``), raises that errno and
    changes nothing, as the seed returns the error before marking.
    """
    state = decommit_punch(state, fr, punch_error, map_error)
    return decommit_mark(state, fr)


def decommit_punch(
    state: State, fr: FileRange, punch_error: int | None = None, map_error: int | None = None
) -> State:
    """Decommit's first step, which the seed runs without its lock."""
    require_live(state)
    check_page_range(fr)
    require_allocated(state, fr, "Decommit")
    if state.opts.manual_zeroing:
        state = manually_zero(state, fr, map_error)
    elif punch_error is not None:
        raise os_error(punch_error, f"fallocate(PUNCH_HOLE) of {fr}")
    else:
        state = replace(state, host=hostmodel.punch_hole(state.host, fr))
    return replace(state, decommits=(*state.decommits, fr))


def decommit_mark(state: State, fr: FileRange) -> State:
    """Decommit's second step: ``markDecommitted`` under the lock."""
    if fr not in state.decommits:
        raise InvalidArgument(f"no decommit of {fr} is in progress")
    pending = list(state.decommits)
    pending.remove(fr)
    return replace(mark_decommitted(state, fr), decommits=tuple(pending))


def mark_decommitted(state: State, fr: FileRange) -> State:
    """markDecommitted: the pages of ``fr`` are no longer known to be committed."""
    accounting, expected = state.accounting, state.usage_expected
    for part, info in state.usage.within(fr):
        if info.known_committed:
            accounting = account(accounting, info.kind, -part.length())
            expected -= part.length()
    return replace(
        state,
        usage=state.usage.update(fr, lambda u: replace(u, known_committed=False)),
        accounting=accounting,
        usage_expected=expected,
        decommit_generation=state.decommit_generation + 1,
    )


def manually_zero(state: State, fr: FileRange, map_error: int | None = None) -> State:
    """manuallyZero: write zeroes through the chunk mappings, which commits the pages.

    Raises ``map_error`` if a chunk of ``fr`` is not mapped yet, changing
    nothing (the seed zeroes the slices before that chunk first; see
    docs/divergences.md).
    """
    require_mappable(state, fr, map_error)
    return replace(
        state,
        host=hostmodel.zero(state.host, fr),
        mapped_chunks=state.mapped_chunks | chunks_of(fr),
    )


# --- Mappings -------------------------------------------------------------------------


def chunks_of(fr: FileRange) -> frozenset[int]:
    """The chunks ``fr`` touches."""
    return frozenset(range(fr.start >> CHUNK_SHIFT, (fr.end + CHUNK_SIZE - 1) >> CHUNK_SHIFT))


def chunk_slices(fr: FileRange) -> tuple[FileRange, ...]:
    """``fr`` cut at chunk boundaries: the blocks forEachMappingSlice visits."""
    slices = []
    start = fr.start
    while start < fr.end:
        end = min(fr.end, (start & ~(CHUNK_SIZE - 1)) + CHUNK_SIZE)
        slices.append(FileRange(start, end))
        start = end
    return tuple(slices)


def needs_mapping(state: State, fr: FileRange) -> bool:
    """Whether a chunk of ``fr`` is not mapped yet (so touching ``fr`` calls ``mmap``)."""
    return not chunks_of(fr) <= state.mapped_chunks


def require_mappable(state: State, fr: FileRange, map_error: int | None) -> None:
    """getChunkMapping: raise ``map_error`` if a chunk of ``fr`` must be mapped and that fails.

    The chunks before the first unmapped one are mapped already, so a failure
    leaves the mappings as they were.
    """
    if map_error is not None and needs_mapping(state, fr):
        first = min(chunks_of(fr) - state.mapped_chunks)
        raise os_error(map_error, f"mmap of chunk {first}")


def map_internal(
    state: State, fr: FileRange, at: AccessType, map_error: int | None = None
) -> tuple[State, tuple[FileRange, ...]]:
    """MapInternal: mappings of ``fr`` for the allocator's own use, one block per chunk.

    Maps each chunk on first use (never again until the file is destroyed).
    Any byte range inside the file may be mapped; execute access is EACCES;
    a failing ``mmap`` raises ``map_error``, changing nothing.
    """
    require_live(state)
    check_file_range(fr)
    check_access(at)
    if at.execute:
        raise eacces(f"MapInternal({fr}) with execute access")
    if fr.end > state.file_size:
        raise RangeBeyondFile(f"MapInternal({fr}): the file is {state.file_size:#x} bytes")
    require_mappable(state, fr, map_error)
    return replace(state, mapped_chunks=state.mapped_chunks | chunks_of(fr)), chunk_slices(fr)


def _require_mapped(state: State, fr: FileRange) -> None:
    require_live(state)
    check_file_range(fr)
    chunks = range(fr.start >> CHUNK_SHIFT, (fr.end + CHUNK_SIZE - 1) >> CHUNK_SHIFT)
    # Lazily: a range of 2**34 chunks must not become a set (it exhausted memory).
    if not all(chunk in state.mapped_chunks for chunk in chunks):
        raise RangeBeyondFile(f"{fr} is not inside a mapping returned by map_internal")


def read_mapped(state: State, fr: FileRange) -> tuple[State, bytes]:
    """Read ``fr`` through a mapping: its bytes; every page touched becomes committed."""
    _require_mapped(state, fr)
    host, data = hostmodel.read(state.host, fr)
    return replace(state, host=host), data


def write_mapped(state: State, offset: int, data: bytes) -> State:
    """Write ``data`` at ``offset`` through a mapping; every page touched becomes committed."""
    require_live(state)
    fr, data = check_write(offset, data)
    if not data:
        return state
    _require_mapped(state, fr)
    return replace(state, host=hostmodel.write(state.host, offset, data))


# --- Queries ---------------------------------------------------------------------------


def total_usage(state: State) -> int:
    """TotalUsage: the bytes the host holds for the file (``fstat`` blocks x 512)."""
    require_live(state)
    return hostmodel.committed_bytes(state.host)


def total_size(state: State) -> int:
    """TotalSize: the size of the backing file."""
    require_live(state)
    return state.file_size


def should_cache_evictable(state: State) -> bool:
    """ShouldCacheEvictable: whether evictions are meaningfully delayed."""
    require_live(state)
    opts = state.opts
    return opts.delayed_eviction is DelayedEviction.MANUAL or opts.use_host_memcg_pressure


def describe(state: State) -> str:
    """String: the usage set, one segment per line."""
    lines = [
        f"{fr}: kind={info.kind.name} refs={info.refs} known_committed={info.known_committed}"
        for fr, info in state.usage
    ]
    return "\n".join(lines) if lines else "(no pages in use)"

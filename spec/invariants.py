"""The invariants of a MemoryFile state, stated once.

:func:`check_invariants` must hold after every transition, whatever the
interleaving of threads; tests and the model checker call it after each step.
Two further properties hold at particular moments, not always:
:func:`check_fresh_allocation` right after ``allocate`` returns, and
:func:`check_swap_booking` right after an ``update_usage`` scan ends.
"""

from __future__ import annotations

from typing import TypeVar

from spec.errors import InvariantViolation
from spec.host import reads_as_zero
from spec.rangemap import EMPTY_SET, RangeMap, RangeSet, range_set
from spec.state import ReclaimerStep, State
from spec.vocabulary import CHUNK_SHIFT, CHUNK_SIZE, PAGE_SIZE, FileRange, MemoryKind

V = TypeVar("V")


def _canonical(rm: RangeMap[V]) -> bool:
    previous: tuple[int, int, V] | None = None
    for entry in rm.entries:
        start, end, value = entry
        if start >= end:
            return False
        if previous is not None and (
            start < previous[1] or (start == previous[1] and value == previous[2])
        ):
            return False
        previous = entry
    return True


def _aligned(rm: RangeMap[V]) -> bool:
    return all(start % PAGE_SIZE == 0 and end % PAGE_SIZE == 0 for start, end, _ in rm.entries)


def refs_zero_pages(state: State) -> RangeSet:
    """The pages whose reference count is zero."""
    return range_set(fr for fr, info in state.usage if info.refs == 0)


def held_by_reclaimer(state: State) -> RangeSet:
    """The range the reclaimer has taken off the reclaim set and not yet removed from usage."""
    held = state.reclaimer.range
    return range_set([held]) if held is not None else EMPTY_SET


def punched_unmarked(state: State) -> RangeSet:
    """Pages punched whose knownCommitted has not been cleared yet."""
    ranges = list(state.decommits)
    if state.reclaimer.step is ReclaimerStep.MARKING_DECOMMITTED and state.reclaimer.range:
        ranges.append(state.reclaimer.range)
    return range_set(ranges)


def known_committed(state: State) -> RangeSet:
    return range_set(fr for fr, info in state.usage if info.known_committed)


def violations(state: State) -> list[str]:
    """Every invariant ``state`` breaks, described (empty if none)."""
    found: list[str] = []

    def require(condition: bool, message: str) -> None:
        if not condition:
            found.append(message)

    size = state.file_size
    # The file grows from nothing by doubling chunks.
    require(
        size == 0
        or (size % CHUNK_SIZE == 0 and (size >> CHUNK_SHIFT) & ((size >> CHUNK_SHIFT) - 1) == 0),
        f"file size {size:#x} is not 0 or a power-of-two multiple of the chunk size",
    )
    # The usage set: canonical, page-aligned, inside the file, sensible values.
    require(_canonical(state.usage), "usage is not sorted, disjoint and maximally merged")
    require(_aligned(state.usage), "usage has a segment that is not page-aligned")
    require(all(fr.end <= size for fr, _ in state.usage), "usage extends past the file size")
    for fr, info in state.usage:
        if info.refs < 0 or (info.refs == 0 and info.kind is not MemoryKind.SYSTEM):
            found.append(f"{fr} has {info.refs} references and kind {info.kind.name}")
    # Pages with no references await reclaim: in the reclaim set, or held by the reclaimer.
    require(_canonical(state.reclaim), "the reclaim set is not canonical")
    held = held_by_reclaimer(state)
    require(
        not any(True for fr in state.reclaim.ranges() for _ in held.within(fr)),
        "the reclaimer holds a range still in the reclaim set",
    )
    awaiting = range_set((*state.reclaim.ranges(), *held.ranges()))
    require(
        refs_zero_pages(state) == awaiting,
        "the pages with no references are not exactly those awaiting reclaim",
    )
    require(
        state.reclaimable or not state.reclaim,
        "the reclaim set is non-empty but reclaimable is false",
    )
    # Accounting is what is known committed, by kind, plus the swap booking under System.
    by_kind = [0] * len(MemoryKind)
    for fr, info in state.usage:
        if info.known_committed:
            by_kind[info.kind] += fr.length()
    require(state.usage_expected == sum(by_kind), "usage_expected is not the known-committed total")
    require(state.usage_swapped >= 0, "usage_swapped is negative")
    by_kind[MemoryKind.SYSTEM] += state.usage_swapped
    require(
        list(state.accounting) == by_kind,
        f"accounting {list(state.accounting)} is not the known-committed bytes by kind {by_kind}",
    )
    require(min(state.accounting) >= 0, "accounting went negative")
    # Known committed means committed (unless a punch has run and its mark not yet).
    unsound = known_committed(state)
    for fr in (*state.host.committed.ranges(), *punched_unmarked(state).ranges()):
        unsound = unsound.remove(fr)
    require(not unsound, f"pages known committed that the host does not hold: {unsound.ranges()}")
    # The host holds nothing past the end of the file; data lives in committed pages.
    require(
        all(fr.end <= size for fr in state.host.committed.ranges()),
        "the host holds pages past the file size",
    )
    data_pages = range_set(FileRange(page, page + PAGE_SIZE) for page, _ in state.host.data)
    for fr in state.host.committed.ranges():
        data_pages = data_pages.remove(fr)
    require(not data_pages, "the host has data in an uncommitted page")
    require(
        all(c < (size >> CHUNK_SHIFT) for c in state.mapped_chunks),
        "a chunk past the file is mapped",
    )
    # Evictable users: canonical ranges, a range in flight only in a running goroutine.
    # (An entry may have no ranges: marking an empty range creates one, as in the seed.)
    users = [user for user, _ in state.evictable]
    require(len(users) == len(set(users)), "an evictable user appears twice")
    for user, entry in state.evictable:
        require(_canonical(entry.ranges), f"the evictable ranges of {user!r} are not canonical")
        require(
            entry.evicting or entry.in_flight is None,
            f"{user!r} has a range in flight but no eviction goroutine",
        )
    # Lifecycle: the reclaimer leaves only after destroy, and closes the file as it goes.
    step = state.reclaimer.step
    require(
        state.destroyed or step not in (ReclaimerStep.EXITING, ReclaimerStep.EXITED),
        "the reclaimer left early",
    )
    require(
        state.file_open == (step is not ReclaimerStep.EXITED),
        "the file is closed iff the reclaimer exited",
    )
    if state.scan is not None:
        require(
            state.scan.segment.is_superset_of(state.scan.slice),
            "the scanned slice is outside its segment",
        )
    return found


def check_invariants(state: State) -> None:
    """Raise :class:`InvariantViolation` listing every invariant ``state`` breaks."""
    found = violations(state)
    if found:
        raise InvariantViolation("; ".join(found))


def check_fresh_allocation(state: State, fr: FileRange) -> None:
    """Memory just allocated reads as zeroes (freed memory was punched or zeroed)."""
    if not reads_as_zero(state.host, fr):
        raise InvariantViolation(f"freshly allocated {fr} does not read as zeroes")


def check_swap_booking(state: State) -> None:
    """Right after a scan: swap booked is at most what the host holds that is not known.

    (Later reclaim of such pages may make the booking stale until the next scan.)
    """
    unknown = state.host.committed
    for fr in known_committed(state).ranges():
        unknown = unknown.remove(fr)
    if state.usage_swapped > unknown.total():
        raise InvariantViolation(
            f"usage_swapped {state.usage_swapped:#x} exceeds the {unknown.total():#x} committed "
            "bytes not known committed: usage that vanished during the scan was booked as swap"
        )

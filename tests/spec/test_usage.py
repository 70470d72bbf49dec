"""update_usage: the skip rules, what a scan learns, and the seed's two scan defects."""

from __future__ import annotations

import errno

import pytest

from spec import allocator, reclaimer, usage
from spec.errors import InvariantViolation
from spec.invariants import check_invariants, check_swap_booking
from spec.memory_file import SpecMemoryFile
from spec.rangemap import range_set
from spec.state import SEED, SeedDefects, State
from spec.vocabulary import (
    CHUNK_SIZE,
    MILLISECOND,
    PAGE_SIZE,
    READ_WRITE,
    SECOND,
    FileRange,
    MemoryFileOpts,
    MemoryKind,
)

P = PAGE_SIZE
C = CHUNK_SIZE
ANON = MemoryKind.ANONYMOUS


def touched(f: SpecMemoryFile, fr: FileRange) -> None:
    f.map_internal(fr, READ_WRITE)
    f.write(fr.start, b"\x01" * fr.length())


def test_a_scan_marks_exactly_the_touched_pages_of_live_allocations() -> None:
    f = SpecMemoryFile()
    a = f.allocate(4 * P, ANON)
    b = f.allocate(2 * P, MemoryKind.TMPFS)
    touched(f, FileRange(a.start + P, a.start + 3 * P))
    touched(f, FileRange(b.start, b.start + P))
    f.update_usage(SECOND)
    assert f.observation().usage == (
        (FileRange(b.start, b.start + P), MemoryKind.TMPFS, 1, True),
        (FileRange(b.start + P, b.end), MemoryKind.TMPFS, 1, False),
        (FileRange(a.start, a.start + P), ANON, 1, False),
        (FileRange(a.start + P, a.start + 3 * P), ANON, 1, True),
        (FileRange(a.start + 3 * P, a.end), ANON, 1, False),
    )
    accounting = dict(f.observation().accounting)
    assert accounting[ANON] == 2 * P and accounting[MemoryKind.TMPFS] == P
    assert f.state.usage_expected == 3 * P and f.state.usage_swapped == 0
    check_invariants(f.state)


def test_pages_awaiting_reclaim_are_booked_as_swap() -> None:
    f = SpecMemoryFile()
    fr = f.allocate(2 * P, ANON)
    touched(f, fr)
    f.dec_ref(fr)  # refs 0: not committable; the reclaimer has not run
    f.update_usage(SECOND)
    assert f.state.usage_expected == 0
    assert f.state.usage_swapped == 2 * P
    assert dict(f.observation().accounting)[MemoryKind.SYSTEM] == 2 * P
    f.reclaim()
    f.update_usage(3 * SECOND)
    assert f.state.usage_swapped == 0
    assert dict(f.observation().accounting)[MemoryKind.SYSTEM] == 0


def scanned(f: SpecMemoryFile, now: int) -> bool:
    before = f.state.usage_last
    f.update_usage(now)
    return f.state.usage_last != before


def test_skip_rule_one_nothing_new() -> None:
    f = SpecMemoryFile()
    f.allocate(P, ANON)
    assert not scanned(f, SECOND)  # usage 0 == expected 0, no swap


def test_skip_rule_three_ten_milliseconds() -> None:
    f = SpecMemoryFile()
    fr = f.allocate(2 * P, ANON)
    touched(f, FileRange(fr.start, fr.start + P))
    assert scanned(f, SECOND)
    touched(f, FileRange(fr.start + P, fr.end))  # new usage: a scan is due...
    assert not scanned(f, SECOND + 10 * MILLISECOND - 1)  # ...but not within 10 ms
    assert scanned(f, SECOND + 10 * MILLISECOND)


def test_skip_rule_two_rescan_swap_at_most_every_second() -> None:
    f = SpecMemoryFile()
    fr = f.allocate(P, ANON)
    touched(f, fr)
    f.dec_ref(fr)
    assert scanned(f, SECOND)
    assert f.state.usage_swapped == P
    assert not scanned(f, 2 * SECOND - 1)  # usage == expected + swapped, within a second
    assert scanned(f, 2 * SECOND)


def test_the_first_scan_is_never_skipped_by_the_clock() -> None:
    f = SpecMemoryFile()
    fr = f.allocate(P, ANON)
    touched(f, fr)
    assert scanned(f, 0)  # Go's zero time is long ago


def test_a_scan_can_be_fed_a_real_kernel_view() -> None:
    f = SpecMemoryFile()
    fr = f.allocate(2 * P, ANON)
    view = range_set([FileRange(fr.start, fr.start + P)])
    f.update_usage(SECOND, committed=view)
    assert f.state.usage_expected == P


def test_scan_is_split_per_chunk_slice() -> None:
    f = SpecMemoryFile()
    f.allocate(C, ANON)
    f.allocate(C, ANON)  # grows to 2C; both chunks merge into one segment [0, 2C)
    touched(f, FileRange(C - P, C + P))
    state = usage.begin_update_usage(f.state, SECOND)
    assert state.scan is not None and state.scan.slice == FileRange(0, C)
    state = usage.apply_committed(usage.query_committed(state))
    assert state.scan is not None and state.scan.slice == FileRange(C, 2 * C)
    state = usage.apply_committed(usage.query_committed(state))
    assert state.scan is None and state.usage_expected == 2 * P


# --- The seed's defects: a stale mincore answer ---------------------------------------------


def stale_scan(defects: SeedDefects) -> State:
    """A scan that asked about live pages, which were freed, reclaimed and reused meanwhile."""
    f = SpecMemoryFile(MemoryFileOpts(), defects=defects)
    fr = f.allocate(P, ANON)
    touched(f, fr)
    state = usage.query_committed(usage.begin_update_usage(f.state, SECOND))  # lock dropped here
    state = allocator.dec_ref(state, fr)
    while reclaimer.reclaimer_runnable(state):
        state = reclaimer.reclaimer_step(state)
    state, again = allocator.allocate(state, P, ANON)  # the same page, now a hole
    assert again == fr and state.host.committed.total() == 0
    return usage.apply_committed(state)


def test_a_stale_mincore_answer_is_asked_again() -> None:
    state = stale_scan(SeedDefects())
    assert state.scan is not None and state.scan.committed is None  # to be asked again
    state = usage.apply_committed(usage.query_committed(state))
    assert state.scan is None
    check_invariants(state)
    assert state.usage_expected == 0


def test_the_seed_trusts_a_stale_mincore_answer() -> None:
    state = stale_scan(SEED)
    with pytest.raises(InvariantViolation, match="known committed that the host does not hold"):
        check_invariants(state)


def phantom_swap(defects: SeedDefects) -> State:
    """A scan during which known-committed pages were decommitted."""
    f = SpecMemoryFile(MemoryFileOpts(), defects=defects)
    a = f.allocate(2 * P, ANON)
    touched(f, a)
    f.update_usage(SECOND)  # a is known committed
    b = f.allocate(P, ANON)
    touched(f, b)
    state = usage.query_committed(usage.begin_update_usage(f.state, 2 * SECOND))
    state = allocator.decommit(state, a)  # while the scan's lock is dropped
    while state.scan is not None:
        state = usage.apply_committed(
            state if state.scan.committed else usage.query_committed(state)
        )
    return state


def test_usage_that_vanishes_during_a_scan_is_not_booked_as_swap() -> None:
    state = phantom_swap(SeedDefects())
    check_invariants(state)
    check_swap_booking(state)
    assert state.usage_swapped == 0


def test_the_seed_books_vanished_usage_as_swap() -> None:
    state = phantom_swap(SEED)
    assert state.usage_swapped == 2 * P  # two pages of swap on a host without swap
    with pytest.raises(InvariantViolation, match="booked as swap"):
        check_swap_booking(state)


# --- The seed's defects: a segment that merely touches a committed run ------------------------


def split_during_scan(defects: SeedDefects) -> State:
    """inc_ref splits a segment while the scan's lock is dropped; only its upper half is touched."""
    f = SpecMemoryFile(MemoryFileOpts(), defects=defects)
    fr = f.allocate(4 * P, ANON)
    middle = fr.start + 2 * P
    touched(f, FileRange(middle, fr.end))
    state = usage.query_committed(usage.begin_update_usage(f.state, SECOND))
    state = allocator.inc_ref(state, FileRange(fr.start, middle))  # [start, middle) now refs 2
    return usage.apply_committed(state)


def test_only_pages_in_a_committed_run_are_marked() -> None:
    state = split_during_scan(SeedDefects())
    check_invariants(state)
    assert state.usage_expected == 2 * P


def test_the_seed_marks_the_segment_that_ends_where_a_run_starts() -> None:
    state = split_during_scan(SeedDefects(adjacent_segment=True))
    assert state.usage_expected == 4 * P  # the untouched lower half too
    with pytest.raises(InvariantViolation, match="known committed that the host does not hold"):
        check_invariants(state)


def test_a_scan_maps_the_chunk_it_asks_about_even_when_mincore_then_fails() -> None:
    # The seed maps the slice's chunk under its lock, then calls mincore: a failure
    # there leaves the chunk mapped (impl does the same; they once disagreed here).
    f = SpecMemoryFile()
    low = f.allocate(P, ANON)
    touched(f, low)
    f.update_usage(SECOND)  # low is known committed: the scan below starts in chunk 1
    high = f.allocate(C, ANON)
    assert high.start == C and f.state.mapped_chunks == {0}
    host = range_set([low, FileRange(C, C + P)])  # what the host says: one page of high too
    state, error = usage.update_usage(f.state, 2 * SECOND, host, mincore_error=errno.EIO)
    assert error is not None and error.errno == errno.EIO
    assert state.mapped_chunks == {0, 1}
    assert state.scan is None and state.usage_swapped == P  # the booking still ran
    # A failing mmap, on the other hand, maps nothing.
    state, error = usage.update_usage(f.state, 2 * SECOND, host, map_error=errno.ENOMEM)
    assert error is not None and error.errno == errno.ENOMEM
    assert state.mapped_chunks == {0}

"""The specification under failing kernel calls: what each fault leaves behind.

Each test drives a :class:`SpecMemoryFile` into one fault of
:class:`spec.vocabulary.HostFaults` and checks what the seed does there (see
pgalloc.go): the errno raised, the state afterwards (unchanged, or the part
the seed commits before failing), the invariants, and that once the fault
is cleared the file works again.
"""

from __future__ import annotations

import errno
from dataclasses import replace

import pytest

from spec import usage
from spec.invariants import check_invariants
from spec.memory_file import SpecMemoryFile
from spec.rangemap import range_set
from spec.state import FREED, ReclaimerStep
from spec.vocabulary import (
    CHUNK_SIZE,
    NO_FAULTS,
    PAGE_SIZE,
    SECOND,
    WRITE,
    BytesReader,
    EvictableRange,
    FileRange,
    HostFaults,
    MemoryFileOpts,
    MemoryKind,
)
from tests.impl.helpers import FailingUser

P = PAGE_SIZE
ANON = MemoryKind.ANONYMOUS
MANUAL_ZEROING = MemoryFileOpts(manual_zeroing=True)


def raises_errno(code: int) -> pytest.RaisesExc[OSError]:
    return pytest.raises(OSError, check=lambda e: e.errno == code)


def test_a_new_file_fails_with_its_ftruncate() -> None:
    with raises_errno(errno.ENOSPC):
        SpecMemoryFile(faults=HostFaults(truncate=errno.ENOSPC))


def test_allocate_with_ftruncate_failing_changes_nothing() -> None:
    f = SpecMemoryFile()
    f.allocate(P, ANON)
    f.faults = HostFaults(truncate=errno.ENOSPC)
    assert f.allocate(P, ANON) == FileRange(CHUNK_SIZE - 2 * P, CHUNK_SIZE - P)  # no ftruncate
    before = f.state
    with raises_errno(errno.ENOSPC):
        f.allocate(CHUNK_SIZE, ANON)  # must grow the file
    assert f.state == before
    f.faults = NO_FAULTS
    assert f.allocate(CHUNK_SIZE, ANON).end == 2 * CHUNK_SIZE
    check_invariants(f.state)


def test_allocate_with_manual_zeroing_and_mmap_failing_keeps_the_grown_file() -> None:
    f = SpecMemoryFile(MANUAL_ZEROING, faults=HostFaults(map=errno.ENOMEM))
    before = f.state
    with raises_errno(errno.ENOMEM):
        f.allocate(P, ANON)
    # The seed sets fileSize before manuallyZero fails; nothing is allocated or zeroed.
    assert f.state == replace(before, file_size=CHUNK_SIZE)
    check_invariants(f.state)
    f.faults = NO_FAULTS
    fr = f.allocate(P, ANON)
    assert fr == FileRange(CHUNK_SIZE - P, CHUNK_SIZE)
    f.faults = HostFaults(map=errno.ENOMEM)
    # Its chunk is mapped now: no mmap, no failure.
    assert f.allocate(P, ANON) == FileRange(CHUNK_SIZE - 2 * P, CHUNK_SIZE - P)
    check_invariants(f.state)


def test_map_internal_with_mmap_failing_changes_nothing() -> None:
    f = SpecMemoryFile(faults=HostFaults(map=errno.ENOMEM))
    fr = f.allocate(P, ANON)
    before = f.state
    with raises_errno(errno.ENOMEM):
        f.map_internal(fr, WRITE)
    assert f.state == before
    f.faults = NO_FAULTS
    assert f.map_internal(fr, WRITE) == (fr,)
    f.faults = HostFaults(map=errno.ENOMEM)
    assert f.map_internal(fr, WRITE) == (fr,)  # mapped once, never again


class RecordingReader(BytesReader):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.calls = 0

    def readinto(self, buffer: memoryview, /) -> int:
        self.calls += 1
        return super().readinto(buffer)


def test_allocate_and_fill_with_mmap_failing_releases_the_allocation() -> None:
    f = SpecMemoryFile(faults=HostFaults(map=errno.ENOMEM))
    reader = RecordingReader(b"x" * 2 * P)
    with raises_errno(errno.ENOMEM):
        f.allocate_and_fill(2 * P, ANON, reader)
    assert reader.calls == 0
    freed = FileRange(CHUNK_SIZE - 2 * P, CHUNK_SIZE)
    assert f.state.file_size == CHUNK_SIZE  # Allocate succeeded, then DecRef
    assert list(f.state.usage) == [(freed, FREED)]
    assert f.state.reclaim.ranges() == (freed,)
    check_invariants(f.state)
    f.faults = NO_FAULTS
    assert f.reclaim() == [freed]
    assert f.allocate_and_fill(2 * P, ANON, reader).file_range == freed


def test_decommit_with_punch_failing_changes_nothing() -> None:
    f = SpecMemoryFile()
    fr = f.allocate(P, ANON)
    f.map_internal(fr, WRITE)
    f.write(fr.start, b"secret")
    f.update_usage(SECOND)
    for code in (errno.EIO, errno.EOPNOTSUPP):
        f.faults = HostFaults(punch=code)
        before = f.state
        with raises_errno(code):
            f.decommit(fr)
        assert f.state == before
    f.faults = NO_FAULTS
    f.decommit(fr)
    assert f.read(fr) == bytes(P)
    check_invariants(f.state)


def test_decommit_with_manual_zeroing_and_mmap_failing_changes_nothing() -> None:
    f = SpecMemoryFile(MANUAL_ZEROING)
    fr = f.allocate(P, ANON)  # maps chunk 0
    big = f.allocate(CHUNK_SIZE, ANON)  # grows the file and maps chunk 1
    # Unreachable through the API (manual zeroing maps every chunk it allocates
    # in, until destroy), so chunk 1 is unmapped by hand: the spec still says.
    f.state = replace(f.state, mapped_chunks=frozenset({0}))
    f.faults = HostFaults(map=errno.ENOMEM)
    before = f.state
    with raises_errno(errno.ENOMEM):
        f.decommit(big)
    assert f.state == before
    f.decommit(fr)  # chunk 0 is mapped: zeroing needs no mmap
    check_invariants(f.state)


def test_update_usage_with_mincore_failing_books_swap_and_returns_the_error() -> None:
    f = SpecMemoryFile(faults=HostFaults(mincore=errno.EINVAL))
    fr = f.allocate(P, ANON)
    f.map_internal(fr, WRITE)
    f.write(fr.start, b"x")
    with raises_errno(errno.EINVAL):
        f.update_usage(SECOND)
    # The scan marked nothing; its deferred swap booking still ran.
    assert f.state.usage_last == SECOND
    assert f.state.usage_expected == 0
    assert f.state.usage_swapped == P
    assert f.state.accounting[MemoryKind.SYSTEM] == P
    check_invariants(f.state)
    f.faults = NO_FAULTS
    f.update_usage(2 * SECOND)
    assert f.state.usage_expected == P and f.state.usage_swapped == 0
    assert f.state.accounting[ANON] == P


def test_update_usage_with_mmap_failing_keeps_the_slices_before_it() -> None:
    f = SpecMemoryFile()
    fr = f.allocate(CHUNK_SIZE + P, ANON)
    low, high = FileRange(fr.start, fr.start + P), FileRange(fr.end - P, fr.end)
    assert low.end <= CHUNK_SIZE <= high.start
    f.map_internal(low, WRITE)
    f.write(low.start, b"low")
    host_says = range_set([low, high])  # as if the high page were written by another mapping
    f.faults = HostFaults(map=errno.ENOMEM)
    with raises_errno(errno.ENOMEM):
        f.update_usage(SECOND, committed=host_says)
    # The first slice (chunk 0, mapped) was marked; chunk 1 could not be mapped.
    assert f.state.usage_expected == P
    assert [info.known_committed for _, info in f.state.usage] == [True, False]
    assert f.state.usage_swapped == P
    assert f.state.mapped_chunks == {0}
    f.faults = NO_FAULTS
    f.update_usage(2 * SECOND, committed=host_says)
    assert f.state.usage_expected == 2 * P and f.state.usage_swapped == 0


def test_the_pure_update_usage_returns_its_error_with_the_state() -> None:
    f = SpecMemoryFile()
    fr = f.allocate(P, ANON)
    f.map_internal(fr, WRITE)
    f.write(fr.start, b"x")
    state, error = usage.update_usage(f.state, SECOND, mincore_error=errno.EIO)
    assert isinstance(error, OSError) and error.errno == errno.EIO
    assert state.scan is None and state.usage_swapped == P
    assert usage.update_usage(f.state, SECOND)[1] is None


def test_the_reclaimer_zeroes_by_hand_when_the_punch_fails() -> None:
    f = SpecMemoryFile(faults=HostFaults(punch=errno.EOPNOTSUPP))
    fr = f.allocate(P, ANON)
    f.map_internal(fr, WRITE)
    f.write(fr.start, b"secret")
    f.dec_ref(fr)
    assert f.reclaim() == [fr]
    assert f.state.host.committed.ranges() == (fr,)  # zeroing frees nothing
    again = f.allocate(P, ANON)
    assert again == fr and f.read(again) == bytes(P)
    check_invariants(f.state)


def test_the_reclaimer_stops_when_it_can_neither_punch_nor_zero() -> None:
    f = SpecMemoryFile(faults=HostFaults(punch=errno.EIO, map=errno.ENOMEM))
    fr = f.allocate(P, ANON)  # its chunk is never mapped
    f.dec_ref(fr)
    with raises_errno(errno.ENOMEM):
        f.reclaim()
    # The seed panics; ours keeps the range (never reused) and stops.
    assert f.state.reclaimer.step is ReclaimerStep.FAILED
    assert list(f.state.usage) == [(fr, FREED)] and not f.state.reclaim
    check_invariants(f.state)
    f.faults = NO_FAULTS
    other = f.allocate(P, ANON)
    assert other != fr
    f.dec_ref(other)
    assert f.reclaim() == []  # stopped for good
    check_invariants(f.state)
    f.destroy()
    assert (f.state.file_open, f.state.reclaimer.step) == (False, ReclaimerStep.EXITED)
    check_invariants(f.state)


def test_the_reclaimer_zeroes_a_mapped_chunk_even_when_mmap_fails() -> None:
    f = SpecMemoryFile()
    fr = f.allocate(P, ANON)
    f.map_internal(fr, WRITE)
    f.faults = HostFaults(punch=errno.EIO, map=errno.ENOMEM)
    f.dec_ref(fr)
    assert f.reclaim() == [fr]
    check_invariants(f.state)


def test_an_evict_that_raises_propagates_and_the_next_run_goes_on() -> None:
    f = SpecMemoryFile()
    user = FailingUser()
    f.mark_evictable(user, EvictableRange(0, 1))
    f.mark_evictable(user, EvictableRange(2, 3))
    f.start_evictions()
    with pytest.raises(RuntimeError, match=r"^evict failed$"):
        f.run_evictions()
    assert user.delivered == [EvictableRange(2, 3)]  # taken off before Evict ran
    check_invariants(f.state)
    assert f.run_evictions() == [(user, EvictableRange(0, 1))]
    assert f.state.evictable == ()

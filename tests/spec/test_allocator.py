"""The client's transitions of the specification, example by example.

Expectations are the seed's behaviour, worked out from ``pgalloc.go``; each
test checks the invariants of every state it passes through.
"""

from __future__ import annotations

import errno

import pytest

from spec import allocator
from spec.errors import InvalidOptions
from spec.invariants import check_invariants
from spec.memory_file import SpecMemoryFile
from spec.state import ReclaimerStep
from spec.vocabulary import (
    CHUNK_SIZE,
    HUGE_PAGE_SIZE,
    PAGE_SIZE,
    READ,
    READ_WRITE,
    WRITE,
    AccessType,
    BytesReader,
    DelayedEviction,
    FileRange,
    HostFaults,
    MemoryFileOpts,
    MemoryKind,
)

P = PAGE_SIZE
C = CHUNK_SIZE
H = HUGE_PAGE_SIZE
ANON = MemoryKind.ANONYMOUS


def usage(f: SpecMemoryFile) -> list[tuple[FileRange, MemoryKind, int, bool]]:
    return list(f.observation().usage)


def accounted(f: SpecMemoryFile, kind: MemoryKind) -> int:
    return dict(f.observation().accounting)[kind]


class Checked(SpecMemoryFile):
    """A SpecMemoryFile that checks the invariants after every call."""

    def __getattribute__(self, name: str) -> object:
        attribute = super().__getattribute__(name)
        if callable(attribute) and not name.startswith("_") and name not in ("observation",):

            def checked(*args: object, **kwargs: object) -> object:
                result = attribute(*args, **kwargs)
                check_invariants(super(Checked, self).__getattribute__("state"))
                return result

            return checked
        return attribute


# --- Creation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (MemoryFileOpts(), MemoryFileOpts(DelayedEviction.ENABLED)),
        (
            MemoryFileOpts(DelayedEviction.DEFAULT, use_host_memcg_pressure=True),
            MemoryFileOpts(DelayedEviction.ENABLED, use_host_memcg_pressure=True),
        ),
        (
            MemoryFileOpts(DelayedEviction.DISABLED, use_host_memcg_pressure=True),
            MemoryFileOpts(DelayedEviction.DISABLED),
        ),
        (
            MemoryFileOpts(
                DelayedEviction.MANUAL, use_host_memcg_pressure=True, manual_zeroing=True
            ),
            MemoryFileOpts(DelayedEviction.MANUAL, manual_zeroing=True),
        ),
    ],
)
def test_options_are_normalised(given: MemoryFileOpts, expected: MemoryFileOpts) -> None:
    state = allocator.new_memory_file(given)
    assert state.opts == expected
    assert state.file_size == 0 and not state.usage
    assert state.reclaimer.step is ReclaimerStep.RUNNING  # the goroutine is started


@pytest.mark.parametrize("bad", [7, -1, True, "enabled"])
def test_invalid_delayed_eviction_is_an_error(bad: object) -> None:
    with pytest.raises(InvalidOptions, match="DelayedEviction"):
        allocator.new_memory_file(MemoryFileOpts(delayed_eviction=bad))  # type: ignore[arg-type]


def test_should_cache_evictable() -> None:
    def cache(opts: MemoryFileOpts) -> bool:
        return SpecMemoryFile(opts).should_cache_evictable()

    assert cache(MemoryFileOpts(DelayedEviction.MANUAL))
    assert cache(MemoryFileOpts(DelayedEviction.ENABLED, use_host_memcg_pressure=True))
    assert not cache(MemoryFileOpts(DelayedEviction.ENABLED))
    assert not cache(MemoryFileOpts(DelayedEviction.DISABLED, use_host_memcg_pressure=True))


# --- Allocate ----------------------------------------------------------------------


def test_allocations_go_top_down_and_grow_the_file_by_chunks() -> None:
    f = Checked()
    assert f.total_size() == 0
    assert f.allocate(P, ANON) == FileRange(C - P, C)
    assert f.total_size() == C
    assert f.allocate(2 * P, MemoryKind.TMPFS) == FileRange(C - 3 * P, C - P)
    assert usage(f) == [
        (FileRange(C - 3 * P, C - P), MemoryKind.TMPFS, 1, False),
        (FileRange(C - P, C), ANON, 1, False),
    ]


def test_adjacent_allocations_of_one_kind_merge() -> None:
    f = Checked()
    f.allocate(P, ANON)
    f.allocate(P, ANON)
    assert usage(f) == [(FileRange(C - 2 * P, C), ANON, 1, False)]


def test_huge_allocations_are_huge_page_aligned() -> None:
    f = Checked()
    f.allocate(P, ANON)
    fr = f.allocate(H + P, ANON)
    assert fr.start % H == 0
    assert fr == FileRange(C - 2 * H, C - H + P)  # below the page, aligned down


def test_a_full_file_doubles() -> None:
    f = Checked()
    f.allocate(C, ANON)
    assert f.total_size() == C
    assert f.allocate(P, ANON) == FileRange(2 * C - P, 2 * C)
    assert f.total_size() == 2 * C


def test_enomem_when_nothing_can_fit() -> None:
    f = Checked()
    with pytest.raises(OSError) as raised:
        f.allocate((1 << 62) + P, ANON)
    assert raised.value.errno == errno.ENOMEM
    assert f.total_size() == 0


def test_manual_zeroing_commits_the_allocation() -> None:
    f = Checked(MemoryFileOpts(manual_zeroing=True))
    f.allocate(2 * P, ANON)
    assert f.total_usage() == 2 * P
    plain = Checked()
    plain.allocate(2 * P, ANON)
    assert plain.total_usage() == 0


# --- AllocateAndFill -------------------------------------------------------------------


def test_fill_all() -> None:
    f = Checked()
    data = bytes(range(256)) * 32  # two pages
    result = f.allocate_and_fill(2 * P, ANON, BytesReader(data))
    assert result.error is None
    assert result.file_range == FileRange(C - 2 * P, C)
    assert f.read(result.file_range) == data
    assert f.total_usage() == 2 * P


def test_partial_fill_keeps_whole_pages_and_frees_the_rest() -> None:
    f = Checked()
    failure = OSError(errno.EIO, "disk")
    result = f.allocate_and_fill(4 * P, ANON, BytesReader(b"x" * (P + 10), failure))
    assert result.error is failure
    assert result.file_range == FileRange(C - 4 * P, C - 3 * P)
    # The tail (including the partly filled page) is freed at once.
    assert usage(f) == [
        (FileRange(C - 4 * P, C - 3 * P), ANON, 1, False),
        (FileRange(C - 3 * P, C), MemoryKind.SYSTEM, 0, False),
    ]
    assert f.observation().reclaim == (FileRange(C - 3 * P, C),)


def test_fill_that_ends_early_reports_eof_and_may_keep_nothing() -> None:
    f = Checked()
    result = f.allocate_and_fill(2 * P, ANON, BytesReader(b"abc"))
    assert isinstance(result.error, EOFError)
    assert result.file_range == FileRange(C - 2 * P, C - 2 * P)
    assert f.observation().reclaim == (FileRange(C - 2 * P, C),)


# --- References ---------------------------------------------------------------------------


def test_dec_ref_to_zero_moves_pages_to_reclaim_as_system() -> None:
    f = Checked()
    fr = f.allocate(3 * P, ANON)
    f.map_internal(fr, WRITE)
    f.write(fr.start, b"x" * 3 * P)
    f.update_usage(10**9)
    assert accounted(f, ANON) == 3 * P
    f.inc_ref(FileRange(fr.start, fr.start + P))
    f.dec_ref(fr)
    assert usage(f) == [
        (FileRange(fr.start, fr.start + P), ANON, 1, True),
        (FileRange(fr.start + P, fr.end), MemoryKind.SYSTEM, 0, True),
    ]
    assert accounted(f, ANON) == P
    assert accounted(f, MemoryKind.SYSTEM) == 2 * P
    assert f.observation().reclaim == (FileRange(fr.start + P, fr.end),)
    assert f.state.reclaimable


def test_dec_ref_across_two_allocations_frees_both() -> None:
    f = Checked()
    a = f.allocate(P, ANON)
    b = f.allocate(P, MemoryKind.TMPFS)
    f.dec_ref(FileRange(b.start, a.end))
    assert usage(f) == [(FileRange(b.start, a.end), MemoryKind.SYSTEM, 0, False)]


# --- Decommit ----------------------------------------------------------------------------


def test_decommit_punches_and_forgets_commitment() -> None:
    f = Checked()
    fr = f.allocate(2 * P, ANON)
    f.map_internal(fr, READ_WRITE)
    f.write(fr.start, b"\xff" * 2 * P)
    f.update_usage(10**9)
    f.decommit(FileRange(fr.start, fr.start + P))
    assert f.total_usage() == P
    assert usage(f) == [
        (FileRange(fr.start, fr.start + P), ANON, 1, False),
        (FileRange(fr.start + P, fr.end), ANON, 1, True),
    ]
    assert accounted(f, ANON) == P and f.state.usage_expected == P
    assert f.read(FileRange(fr.start, fr.start + 4)) == b"\0\0\0\0"


def test_decommit_with_manual_zeroing_zeroes_but_keeps_pages() -> None:
    f = Checked(MemoryFileOpts(manual_zeroing=True))
    fr = f.allocate(P, ANON)
    f.map_internal(fr, READ_WRITE)
    f.write(fr.start, b"data")
    f.decommit(fr)
    assert f.total_usage() == P
    assert f.read(FileRange(fr.start, fr.start + 4)) == bytes(4)


def test_decommit_failure_is_returned_and_changes_nothing() -> None:
    f = Checked(faults=HostFaults(punch=errno.EOPNOTSUPP))
    fr = f.allocate(P, ANON)
    f.map_internal(fr, WRITE)
    f.write(fr.start, b"data")
    before = f.state
    with pytest.raises(OSError) as raised:
        f.decommit(fr)
    assert raised.value.errno == errno.EOPNOTSUPP
    assert f.state == before


# --- MapInternal and access -----------------------------------------------------------------


def test_map_internal_returns_one_block_per_chunk_and_maps_chunks() -> None:
    f = Checked()
    f.allocate(C, ANON)
    f.allocate(P, ANON)  # grows the file to 2C
    blocks = f.map_internal(FileRange(C - 10, C + 20), READ)
    assert blocks == (FileRange(C - 10, C), FileRange(C, C + 20))
    assert f.state.mapped_chunks == {0, 1}


def test_execute_access_is_eacces_even_beyond_the_file() -> None:
    f = Checked()
    with pytest.raises(OSError) as raised:
        f.map_internal(FileRange(0, P), AccessType(execute=True))
    assert raised.value.errno == errno.EACCES


def test_reads_commit_pages() -> None:
    f = Checked()
    fr = f.allocate(4 * P, ANON)
    f.map_internal(fr, READ)
    assert f.read(FileRange(fr.start + P - 1, fr.start + P + 1)) == b"\0\0"
    assert f.total_usage() == 2 * P


# --- Destroy ----------------------------------------------------------------------------------


def test_destroy_closes_and_unmaps_and_is_idempotent() -> None:
    f = Checked()
    fr = f.allocate(P, ANON)
    f.map_internal(fr, READ)
    f.destroy()
    assert f.state.reclaimer.step is ReclaimerStep.EXITED
    assert not f.state.file_open and not f.state.mapped_chunks
    before = f.state
    f.destroy()
    assert f.state == before


def test_describe_lists_segments() -> None:
    f = SpecMemoryFile()
    assert str(f) == "(no pages in use)"
    f.allocate(P, ANON)
    assert str(f) == "[0x3ffff000, 0x40000000): kind=ANONYMOUS refs=1 known_committed=False"

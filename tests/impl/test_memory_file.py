"""``impl.MemoryFile`` on a real memfd: data, zeroing, reclaim, usage, destroy."""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from impl import Kernel, MemoryAccounting, MemoryFile
from impl.kernel import ResidencyVector
from spec.errors import RangeBeyondFile, UseAfterDestroy
from spec.memory_file import SpecMemoryFile
from spec.vocabulary import (
    CHUNK_SIZE,
    MILLISECOND,
    NO_FAULTS,
    PAGE_SIZE,
    READ,
    READ_WRITE,
    SECOND,
    WRITE,
    AccessType,
    BytesReader,
    DelayedEviction,
    EvictableRange,
    FileRange,
    HostFaults,
    MemoryFileOpts,
    MemoryKind,
)
from tests.impl.leaks import identity, maps_of, open_fds, pgalloc_threads

ANON = MemoryKind.ANONYMOUS


class Clock:
    """update_usage's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


class CountingKernel(Kernel):
    """A kernel that counts mincore calls and can run a hook inside the first one."""

    def __init__(self, faults: HostFaults = NO_FAULTS) -> None:
        super().__init__(faults)
        self.mincore_calls = 0
        self.hook: Callable[[], None] | None = None

    def mincore(self, address: int, length: int, vector: ResidencyVector) -> None:
        self.mincore_calls += 1
        super().mincore(address, length, vector)
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()  # runs while update_usage has dropped the lock; the answer is now stale


def manual_file(opts: MemoryFileOpts = MemoryFileOpts(), **kwargs: object) -> MemoryFile:
    kwargs.setdefault("accounting", MemoryAccounting())
    return MemoryFile(opts, background=False, **kwargs)  # type: ignore[arg-type]


def touch(f: MemoryFile, fr: FileRange, byte: int = 0xAB) -> None:
    """Fill ``fr`` with ``byte`` through map_internal."""
    for view in f.map_internal(fr, WRITE):
        view[:] = bytes([byte]) * len(view)
        view.release()


def known_committed(f: MemoryFile) -> list[FileRange]:
    return [fr for fr, _, _, known in f.observation().usage if known]


# --- Data through the mappings ------------------------------------------------------------


def test_data_written_through_map_internal_reads_back() -> None:
    with manual_file() as f:
        fr = f.allocate(3 * PAGE_SIZE, ANON)
        (view,) = f.map_internal(fr, READ_WRITE)
        assert not view.readonly and len(view) == fr.length()
        pattern = bytes(range(256)) * (fr.length() // 256)
        view[:] = pattern
        # Zero-copy: the bytes are in the file itself, seen by pread and by a second view.
        assert os.pread(f.fd(), fr.length(), fr.start) == pattern
        (again,) = f.map_internal(fr, READ)
        assert bytes(again) == pattern == f.read(fr)
        view.release()
        again.release()


def test_map_internal_gives_one_view_per_chunk() -> None:
    with manual_file() as f:
        big = f.allocate(CHUNK_SIZE + PAGE_SIZE, ANON)  # the file grows to 2 chunks
        assert f.total_size() == 2 * CHUNK_SIZE
        across = FileRange(CHUNK_SIZE - 2 * PAGE_SIZE, CHUNK_SIZE + 2 * PAGE_SIZE)
        assert big.start <= across.start and across.end <= big.end
        views = f.map_internal(across, WRITE)
        assert [len(v) for v in views] == [2 * PAGE_SIZE, 2 * PAGE_SIZE]
        views[0][-1] = 0x11
        views[1][0] = 0x22
        assert os.pread(f.fd(), 2, CHUNK_SIZE - 1) == b"\x11\x22"
        for view in views:
            view.release()
        assert f.total_usage() == 2 * PAGE_SIZE  # only what was touched


def test_allocate_and_fill_across_a_chunk_boundary() -> None:
    with manual_file() as f:
        f.allocate(2 * CHUNK_SIZE, ANON)  # the whole file
        hole = FileRange(CHUNK_SIZE - 3 * PAGE_SIZE, CHUNK_SIZE + 3 * PAGE_SIZE)
        f.dec_ref(hole)
        assert f.reclaim() == [hole]  # now the only free range, across the boundary
        data = os.urandom(5 * PAGE_SIZE + 100)
        result = f.allocate_and_fill(6 * PAGE_SIZE, MemoryKind.PAGE_CACHE, BytesReader(data))
        fr = result.file_range
        assert fr.start == hole.start
        assert isinstance(result.error, EOFError)
        assert fr.length() == 5 * PAGE_SIZE  # the partly filled page was given back
        assert os.pread(f.fd(), fr.length(), fr.start) == data[: fr.length()]


class OddReader:
    """A reader that writes a page of ``b"r"`` each call but claims ``claims`` (then ends)."""

    def __init__(self, claims: object) -> None:
        self.claims = claims
        self.calls = 0

    def readinto(self, buffer: memoryview, /) -> int:
        self.calls += 1
        if self.calls > 1:
            return 0
        buffer[:PAGE_SIZE] = b"r" * PAGE_SIZE
        return self.claims  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("claims", "kept", "error"),
    [
        (PAGE_SIZE, 1, EOFError),  # honest: one page, then the end
        (1 << 40, 2, None),  # more than it was given: as much as it was given
        (None, 0, EOFError),  # "no data now": the end
        (-1, 0, ValueError),  # not a count: the reader's error
        (1.5, 0, ValueError),
    ],
)
def test_what_a_reader_claims_is_read_as_the_spec_reads_it(
    claims: object, kept: int, error: type[BaseException] | None
) -> None:
    spec = SpecMemoryFile()
    expected = spec.allocate_and_fill(2 * PAGE_SIZE, ANON, OddReader(claims))
    with manual_file() as f:
        result = f.allocate_and_fill(2 * PAGE_SIZE, ANON, OddReader(claims))
        assert result.file_range == expected.file_range
        assert result.file_range.length() == kept * PAGE_SIZE
        assert type(result.error) is type(expected.error)
        assert (error is None) == (result.error is None)
        if error is not None:
            assert isinstance(result.error, error)
        assert f.observation() == spec.observation()  # the rest freed, in both


def test_execute_access_is_eacces_and_beyond_file_is_rejected() -> None:
    with manual_file() as f:
        fr = f.allocate(PAGE_SIZE, ANON)
        with pytest.raises(OSError) as raised:
            f.map_internal(fr, AccessType(read=True, execute=True))
        assert raised.value.errno == errno.EACCES
        with pytest.raises(RangeBeyondFile):
            f.map_internal(FileRange(CHUNK_SIZE - PAGE_SIZE, CHUNK_SIZE + 1), READ)


# --- Freed memory reads as zeroes -----------------------------------------------------------


@pytest.mark.parametrize("background", [False, True], ids=["manual", "thread"])
@pytest.mark.parametrize("how", ["punch", "manual-zeroing", "punch-fails"])
def test_freed_memory_reads_zero_when_reallocated(
    how: str, background: bool, caplog: pytest.LogCaptureFixture
) -> None:
    opts = MemoryFileOpts(manual_zeroing=how == "manual-zeroing")
    kernel = Kernel(HostFaults(punch=errno.EIO if how == "punch-fails" else None))
    with MemoryFile(opts, background=background, kernel=kernel, accounting=MemoryAccounting()) as f:
        fr = f.allocate(8 * PAGE_SIZE, ANON)
        touch(f, fr, 0xCD)
        assert f.read(FileRange(fr.start, fr.start + 4)) == b"\xcd" * 4
        with caplog.at_level(logging.WARNING, logger="impl"):
            f.dec_ref(fr)
            f.reclaim()
        assert f.observation().usage == ()  # reclaimed
        again = f.allocate(8 * PAGE_SIZE, ANON)
        assert again == fr  # the same pages came back
        # Punching returns the memory; zeroing keeps it committed.
        assert f.total_usage() == (0 if how == "punch" else fr.length())
        assert f.read(again) == bytes(again.length())
        warned = any("Reclaim failed to decommit" in r.getMessage() for r in caplog.records)
        assert warned == (how == "punch-fails")


class UnzeroableKernel(Kernel):
    """Punching fails, and so does zeroing by hand: freed memory cannot be made safe."""

    def __init__(self) -> None:
        super().__init__(HostFaults(punch=errno.EIO))

    def zero(self, address: int, length: int) -> None:
        raise OSError(errno.EFAULT, "injected: cannot zero")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("background", [False, True], ids=["manual", "thread"])
def test_memory_that_cannot_be_zeroed_is_never_handed_out_again(
    background: bool, caplog: pytest.LogCaptureFixture
) -> None:
    fds_before = open_fds()
    f = MemoryFile(background=background, kernel=UnzeroableKernel(), accounting=MemoryAccounting())
    fr = f.allocate(2 * PAGE_SIZE, ANON)
    touch(f, fr)
    with caplog.at_level(logging.CRITICAL, logger="impl"):
        f.dec_ref(fr)
        with pytest.raises((OSError, RuntimeError)):
            f.reclaim()  # manual: the zeroing error; thread: the reclaimer died
    assert f.observation().usage == ((fr, MemoryKind.SYSTEM, 0, False),)  # still held back
    assert f.allocate(2 * PAGE_SIZE, ANON) != fr
    f.destroy()
    assert open_fds() == fds_before


def test_total_usage_falls_after_reclaim() -> None:
    with manual_file() as f:
        low = f.allocate(8 * PAGE_SIZE, ANON)
        high = f.allocate(8 * PAGE_SIZE, ANON)
        touch(f, low)
        touch(f, high)
        assert f.total_usage() == 16 * PAGE_SIZE
        f.dec_ref(high)
        assert f.total_usage() == 16 * PAGE_SIZE  # not yet reclaimed
        assert f.reclaim() == [high]
        assert f.total_usage() == 8 * PAGE_SIZE
        assert f.committed_ranges() == [low]


def test_committed_ranges_unmaps_the_chunks_it_maps_even_when_mincore_fails() -> None:
    kernel = Kernel()
    with manual_file(kernel=kernel) as f:
        fr = f.allocate(PAGE_SIZE, ANON)
        os.pwrite(f.fd(), b"x", fr.start)  # data in a chunk the file has not mapped
        inode = identity(f.fd())
        assert maps_of(inode) == []
        kernel.faults = HostFaults(mincore=errno.EIO)
        with pytest.raises(OSError) as failed:
            f.committed_ranges()
        assert failed.value.errno == errno.EIO
        assert maps_of(inode) == []  # the temporary mapping went with the failure
        kernel.faults = NO_FAULTS
        assert f.committed_ranges() == [fr]
        assert maps_of(inode) == []


def test_reclaim_takes_the_last_range_first() -> None:
    with manual_file() as f:
        ranges = [f.allocate(PAGE_SIZE, ANON) for _ in range(5)]
        for fr in ranges[0], ranges[2], ranges[4]:  # not adjacent: three reclaim ranges
            f.dec_ref(fr)
        assert f.reclaim() == sorted([ranges[0], ranges[2], ranges[4]], reverse=True)
        assert f.reclaim() == []


def test_decommit_releases_memory_and_the_pages_read_zero() -> None:
    accounting = MemoryAccounting()
    with manual_file(accounting=accounting, clock=Clock()) as f:
        fr = f.allocate(4 * PAGE_SIZE, ANON)
        touch(f, fr)
        f.update_usage()
        assert accounting.get(ANON) == 4 * PAGE_SIZE
        part = FileRange(fr.start + PAGE_SIZE, fr.start + 3 * PAGE_SIZE)
        f.decommit(part)
        assert f.total_usage() == 2 * PAGE_SIZE
        assert f.read(part) == bytes(part.length())
        assert accounting.get(ANON) == 2 * PAGE_SIZE
        assert part not in known_committed(f)


def test_a_failed_decommit_raises_and_changes_nothing() -> None:
    with manual_file(kernel=Kernel(HostFaults(punch=errno.EIO)), clock=Clock()) as f:
        fr = f.allocate(2 * PAGE_SIZE, ANON)
        touch(f, fr, 0x5A)
        f.update_usage()
        before = f.observation()
        with pytest.raises(OSError) as raised:
            f.decommit(fr)
        assert raised.value.errno == errno.EIO
        assert f.observation() == before
        assert f.read(fr) == b"\x5a" * fr.length()


# --- update_usage -----------------------------------------------------------------------------

KINDS = [MemoryKind.ANONYMOUS, MemoryKind.PAGE_CACHE, MemoryKind.TMPFS]


@given(
    st.lists(
        st.tuples(st.integers(1, 12), st.sampled_from(KINDS), st.booleans()),
        min_size=1,
        max_size=6,
    ),
    st.data(),
)
def test_update_usage_marks_exactly_the_touched_pages(
    allocations: list[tuple[int, MemoryKind, bool]], data: st.DataObject
) -> None:
    accounting = MemoryAccounting()
    with manual_file(accounting=accounting, clock=Clock()) as f:
        pages: dict[int, tuple[MemoryKind, bool]] = {}  # page offset -> (kind, live)
        for count, kind, live in allocations:
            fr = f.allocate(count * PAGE_SIZE, kind)
            for page in range(fr.start, fr.end, PAGE_SIZE):
                pages[page] = (kind, live)
        touched = data.draw(st.sets(st.sampled_from(sorted(pages))))
        for page in touched:
            touch(f, FileRange(page, page + PAGE_SIZE))
        for page, (_, live) in pages.items():  # free the dead ones after touching
            if not live:
                f.dec_ref(FileRange(page, page + PAGE_SIZE))
        f.update_usage()

        observed = f.observation()
        known = {
            page
            for fr, _, _, is_known in observed.usage
            if is_known
            for page in range(fr.start, fr.end, PAGE_SIZE)
        }
        live_touched = {page for page in touched if pages[page][1]}
        assert known == live_touched
        by_kind = dict.fromkeys(MemoryKind, 0)
        for page in live_touched:
            by_kind[pages[page][0]] += PAGE_SIZE
        swapped = (len(touched) - len(live_touched)) * PAGE_SIZE  # committed, not attributable
        by_kind[MemoryKind.SYSTEM] += swapped
        assert dict(observed.accounting) == by_kind == accounting.copy()
        assert observed.usage_expected == len(live_touched) * PAGE_SIZE
        assert observed.usage_swapped == swapped
        assert f.total_usage() == len(touched) * PAGE_SIZE


def test_update_usage_skip_rules() -> None:
    kernel, clock = CountingKernel(), Clock()
    with manual_file(kernel=kernel, clock=clock) as f:
        untouched = f.allocate(PAGE_SIZE, MemoryKind.PAGE_CACHE)
        fr = f.allocate(PAGE_SIZE, ANON)  # adjacent, but a separate segment (another kind)
        clock.advance(SECOND)
        f.update_usage()
        assert kernel.mincore_calls == 0  # rule 1: usage is what is expected, no swap

        touch(f, fr)
        f.update_usage()
        assert kernel.mincore_calls == 2  # both committable segments asked
        assert known_committed(f) == [fr]

        touch(f, untouched)
        clock.advance(5 * MILLISECOND)
        f.update_usage()
        assert kernel.mincore_calls == 2  # rule 3: the last scan is under 10 ms old
        clock.advance(10 * MILLISECOND)
        f.update_usage()
        assert kernel.mincore_calls == 3
        assert known_committed(f) == [fr, untouched]

        # Committed memory nobody references is booked as swap...
        third = f.allocate(PAGE_SIZE, ANON)
        touch(f, third)
        f.dec_ref(third)
        f.allocate(PAGE_SIZE, MemoryKind.TMPFS)  # a committable segment to scan
        clock.advance(20 * MILLISECOND)
        f.update_usage()
        assert f.observation().usage_swapped == PAGE_SIZE
        calls = kernel.mincore_calls
        clock.advance(20 * MILLISECOND)
        f.update_usage()
        assert kernel.mincore_calls == calls  # rule 2: swap booked, nothing new, under 1 s
        clock.advance(SECOND)
        f.update_usage()
        assert kernel.mincore_calls == calls + 1  # at least every second


def test_update_usage_asks_again_after_a_concurrent_decommit() -> None:
    kernel, accounting = CountingKernel(), MemoryAccounting()
    with manual_file(kernel=kernel, clock=Clock(), accounting=accounting) as f:
        fr = f.allocate(4 * PAGE_SIZE, ANON)
        touch(f, fr)
        kernel.hook = lambda: f.decommit(fr)  # mincore said committed; now it is not
        f.update_usage()
        assert kernel.mincore_calls == 2  # the stale answer was not used
        observed = f.observation()
        assert known_committed(f) == []
        assert observed.usage_expected == 0 == observed.usage_swapped
        assert accounting.total() == 0 == f.total_usage()


def test_update_usage_marks_no_segment_merely_adjacent_to_a_committed_run() -> None:
    with manual_file(clock=Clock()) as f:
        fr = f.allocate(2 * PAGE_SIZE, ANON)
        second = FileRange(fr.start + PAGE_SIZE, fr.end)
        touch(f, second)
        # While mincore runs unlocked, the segment splits in two at the committed run.
        f._state.kernel = kernel = CountingKernel()
        kernel.hook = lambda: f.inc_ref(second)
        f.update_usage()
        assert known_committed(f) == [second]
        assert dict(f.observation().accounting)[ANON] == PAGE_SIZE


# --- Thread safety ---------------------------------------------------------------------------


def test_concurrent_clients_keep_their_data() -> None:
    """Threads allocate, write, check and free while the reclaimer and update_usage run."""
    accounting = MemoryAccounting()
    failures: list[str] = []
    with MemoryFile(MemoryFileOpts(), accounting=accounting) as f:

        def client(seed: int) -> None:
            try:
                for round_ in range(150):
                    length = PAGE_SIZE * (1 + (seed * 7 + round_) % 5)
                    fr = f.allocate(length, ANON)
                    for view in f.map_internal(fr, READ_WRITE):
                        view.release()
                    if f.read(fr) != bytes(length):
                        failures.append(f"{fr} was not zero")
                    pattern = bytes([seed + 1]) * length
                    f.write(fr.start, pattern)
                    if f.read(fr) != pattern:
                        failures.append(f"{fr} lost its data")
                    f.dec_ref(fr)
            except Exception as error:
                failures.append(repr(error))

        def scanner() -> None:
            for _ in range(50):
                f.update_usage()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        threads.append(threading.Thread(target=scanner))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        f.reclaim()
        observed = f.observation()
        assert failures == []
        assert observed.usage == () and observed.reclaim == ()
        assert observed.usage_expected == 0
        assert f.total_usage() == 0


# --- Destroy -------------------------------------------------------------------------------------


class SlowUser:
    """An evictable user whose evict takes a while (so destroy meets a running evictor)."""

    def __init__(self) -> None:
        self.evicted: list[EvictableRange] = []
        self.entered = threading.Event()

    def evict(self, er: EvictableRange) -> None:
        self.entered.set()
        threading.Event().wait(0.1)
        self.evicted.append(er)


def test_destroy_leaves_no_fd_mapping_or_thread() -> None:
    fds_before, threads_before = open_fds(), pgalloc_threads()
    opts = MemoryFileOpts(DelayedEviction.ENABLED, use_host_memcg_pressure=True)
    f = MemoryFile(opts, accounting=MemoryAccounting())  # reclaimer + memcg pressure watcher
    inode = identity(f.fd())
    fr = f.allocate(CHUNK_SIZE + PAGE_SIZE, ANON)  # two chunks
    touch(f, FileRange(fr.start, fr.start + PAGE_SIZE))
    touch(f, FileRange(fr.end - PAGE_SIZE, fr.end))
    user = SlowUser()
    for n in range(3):
        f.mark_evictable(user, EvictableRange(10 * n, 10 * n + 5))
    assert f.memcg_pressure()  # starts an eviction thread
    assert user.entered.wait(5)
    started = pgalloc_threads()
    assert {t.name for t in started} - {t.name for t in threads_before} >= {
        "pgalloc-reclaimer",
        "pgalloc-pressure",
        "pgalloc-evict",
    }
    assert len(maps_of(inode)) == 2

    f.destroy()
    assert user.evicted == [EvictableRange(20, 25)]  # the evictor stopped at its next step
    assert not any(t.is_alive() for t in started if t not in threads_before)
    assert pgalloc_threads() == threads_before
    assert open_fds() == fds_before
    assert maps_of(inode) == []
    f.destroy()  # idempotent


def test_a_view_held_over_destroy_keeps_only_its_chunk_until_released(
    caplog: pytest.LogCaptureFixture,
) -> None:
    f = manual_file()
    inode = identity(f.fd())
    fr = f.allocate(PAGE_SIZE, ANON)
    (view,) = f.map_internal(fr, WRITE)
    with caplog.at_level(logging.WARNING, logger="impl"):
        f.destroy()
    assert any("still has views" in r.getMessage() for r in caplog.records)
    view[0] = 1  # still valid memory: never a dangling pointer
    assert len(maps_of(inode)) == 1
    view.release()
    assert maps_of(inode) == []


def test_every_method_after_destroy_raises() -> None:
    f = manual_file()
    fr = f.allocate(PAGE_SIZE, ANON)
    f.destroy()
    calls: list[Callable[[], object]] = [
        lambda: f.allocate(PAGE_SIZE, ANON),
        lambda: f.allocate_and_fill(PAGE_SIZE, ANON, BytesReader(b"")),
        lambda: f.inc_ref(fr),
        lambda: f.dec_ref(fr),
        lambda: f.decommit(fr),
        lambda: f.map_internal(fr, READ),
        lambda: f.read(fr),
        lambda: f.write(fr.start, b"x"),
        lambda: f.mark_evictable("u", EvictableRange(0, 1)),
        lambda: f.mark_unevictable("u", EvictableRange(0, 1)),
        lambda: f.mark_all_unevictable("u"),
        f.should_cache_evictable,
        f.start_evictions,
        f.update_usage,
        f.total_usage,
        f.total_size,
        f.fd,
        f.file,
    ]
    for call in calls:
        with pytest.raises(UseAfterDestroy):
            call()
    assert f.memcg_pressure() is False
    assert f.reclaim() == [] and f.run_evictions() == []

"""Faults, injected at the kernel seam: the caller gets the error, and impl does what the spec says.

Each scenario drives a :class:`SpecMemoryFile` and a real ``impl.MemoryFile``
(a memfd, ``background=False``, the same clock) side by side through one
failing kernel call, injected with ``Kernel(faults=HostFaults(...))`` or
``kernel.faults = ...`` (the real call is never made) or by a real limit
(``RLIMIT_FSIZE`` in a child process). After every call :class:`Pair`
checks that both did the same (result, or exception type and errno), that
their observations, ``total_usage`` and what the kernel holds agree, and
that the spec's invariants hold; then the fault is cleared and the file must
go on working, still in agreement.

The last section runs each scenario against a deliberately broken build (a
small subclass of ``MemoryFile`` or ``Kernel``) and shows that it fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from impl import Kernel, MemoryAccounting, MemoryFile
from impl.kernel import ResidencyVector
from models.stateful import DifferentialMachine
from spec import host as hostmodel
from spec.invariants import check_invariants
from spec.memory_file import SpecMemoryFile
from spec.rangemap import range_set
from spec.vocabulary import (
    CHUNK_SIZE,
    NO_FAULTS,
    PAGE_SIZE,
    SECOND,
    WRITE,
    AccessType,
    BytesReader,
    DelayedEviction,
    EvictableRange,
    FileRange,
    FillResult,
    HostFaults,
    MemoryFileOpts,
    MemoryKind,
    Reader,
)

P = PAGE_SIZE
ANON = MemoryKind.ANONYMOUS
MANUAL_ZEROING = MemoryFileOpts(manual_zeroing=True)

logging.getLogger("impl").setLevel(logging.CRITICAL)  # injected punch failures warn each time

File = SpecMemoryFile | MemoryFile
Outcome = tuple[str, object]


def outcome(call: Callable[[], object]) -> Outcome:
    """What a call did: ("ok", result), or the exception's type (and errno for OSError)."""
    try:
        return "ok", call()
    except OSError as error:
        return "OSError", error.errno
    except Exception as error:  # a ContractViolation, or what a callback raised
        return type(error).__name__, None


class Pair:
    """The specification and the real allocator, the same calls, the same faults, compared."""

    injected = 0
    """OSErrors both sides raised from an injected fault, across all pairs (for the report)."""
    opened: ClassVar[list[Pair]] = []
    """Pairs not closed yet: a failing check leaves its pair open; the fixture closes it."""

    def __init__(
        self,
        opts: MemoryFileOpts = MemoryFileOpts(),
        impl: type[MemoryFile] = MemoryFile,
        kernel: type[Kernel] = Kernel,
    ) -> None:
        self.now = 0
        self.kernel = kernel()
        self.spec = SpecMemoryFile(opts)
        self.impl = impl(
            opts,
            accounting=MemoryAccounting(),
            background=False,
            clock=lambda: self.now,
            kernel=self.kernel,
        )
        Pair.opened.append(self)

    def inject(self, faults: HostFaults) -> None:
        """Make these kernel calls fail from now on, on both sides (NO_FAULTS: none)."""
        self.spec.faults = faults
        self.kernel.faults = faults

    def both(self, call: Callable[[File], object]) -> Outcome:
        """Make ``call`` on both sides: they must do the same and still agree; what they did."""
        expected = outcome(lambda: call(self.spec))
        found = outcome(lambda: call(self.impl))
        assert found == expected, f"impl did {found}, the spec {expected}"
        if expected[0] == "OSError" and self.spec.faults != NO_FAULTS:
            type(self).injected += 1
        self.agree()
        return expected

    def allocate(self, length: int) -> FileRange:
        """``allocate`` on both sides, which must succeed alike: the range."""
        fr = self.value(lambda f: f.allocate(length, ANON))
        assert isinstance(fr, FileRange)
        return fr

    def value(self, call: Callable[[File], object]) -> object:
        """``both``, which must succeed: the result."""
        status, result = self.both(call)
        assert status == "ok", (status, result)
        return result

    def agree(self) -> None:
        """Same observation, usage and size; the kernel holds what the host model says."""
        expected, found = self.spec.observation(), self.impl.observation()
        for field in dataclasses.fields(expected):
            ours, theirs = getattr(expected, field.name), getattr(found, field.name)
            assert theirs == ours, f"{field.name}: impl has {theirs}, the spec {ours}"
        assert self.impl.total_usage() == self.spec.total_usage()
        assert self.impl.total_size() == self.spec.total_size()
        faults, self.kernel.faults = self.kernel.faults, NO_FAULTS  # committed_ranges maps
        try:
            kernel_says = range_set(self.impl.committed_ranges())
        finally:
            self.kernel.faults = faults
        assert kernel_says == self.spec.state.host.committed
        check_invariants(self.spec.state)

    # --- Calls whose results differ in form on the two sides --------------------------------

    def update_usage(self) -> Outcome:
        self.now += SECOND
        now = self.now
        return self.both(
            lambda f: f.update_usage(now) if isinstance(f, SpecMemoryFile) else f.update_usage()
        )

    def map_internal(self, fr: FileRange) -> Outcome:
        """map_internal for writing; the blocks' lengths."""
        return self.both(lambda f: [_size(block) for block in f.map_internal(fr, WRITE)])

    def fill(self, length: int, reader: Callable[[], Reader]) -> Outcome:
        """allocate_and_fill; ("ok", (range, error type, errno)) or its exception."""

        def call(f: File) -> tuple[FileRange, str | None, int | None]:
            result: FillResult = f.allocate_and_fill(length, ANON, reader())
            error = result.error
            return result.file_range, type(error).__name__ if error else None, _errno(error)

        return self.both(call)

    def host_write(self, offset: int, data: bytes) -> None:
        """Data written to the file by other means (``pwrite``): committed, not mapped."""
        os.pwrite(self.impl.fd(), data, offset)
        self.spec.state = dataclasses.replace(
            self.spec.state, host=hostmodel.write(self.spec.state.host, offset, data)
        )

    def close(self) -> None:
        self.inject(NO_FAULTS)
        self.spec.destroy()
        self.impl.destroy()
        Pair.opened.remove(self)


@pytest.fixture(autouse=True)
def close_pairs() -> Iterator[None]:
    yield
    while Pair.opened:
        Pair.opened[-1].close()


def _size(block: FileRange | memoryview) -> int:
    """A block's length: the spec's are file ranges, impl's views of the mapping."""
    return block.length() if isinstance(block, FileRange) else len(block)


def _errno(error: BaseException | None) -> int | None:
    return error.errno if isinstance(error, OSError) else None


def raised(code: int) -> Outcome:
    return "OSError", code


# --- The scenarios (each a check, run on the real build and on broken ones) ---------------


def ftruncate_fails(impl: type[MemoryFile] = MemoryFile, kernel: type[Kernel] = Kernel) -> None:
    """ENOSPC from ftruncate: the allocation that must grow the file fails, nothing changes."""
    pair = Pair(impl=impl, kernel=kernel)
    first = pair.allocate(P)
    pair.inject(HostFaults(truncate=errno.ENOSPC))
    pair.allocate(P)  # fits: no ftruncate
    assert pair.both(lambda f: f.allocate(CHUNK_SIZE, ANON)) == raised(errno.ENOSPC)
    pair.inject(NO_FAULTS)
    big = pair.allocate(CHUNK_SIZE)
    assert big.end == 2 * CHUNK_SIZE
    pair.both(lambda f: f.dec_ref(first))
    pair.both(lambda f: f.reclaim())
    pair.close()


def mmap_fails_in_allocate_with_manual_zeroing(impl: type[MemoryFile] = MemoryFile) -> None:
    """ENOMEM from mmap while zeroing: the file has grown, nothing is allocated."""
    pair = Pair(MANUAL_ZEROING, impl=impl)
    pair.inject(HostFaults(map=errno.ENOMEM))
    assert pair.both(lambda f: f.allocate(P, ANON)) == raised(errno.ENOMEM)
    assert pair.impl.total_size() == CHUNK_SIZE and not pair.impl.observation().usage
    pair.inject(NO_FAULTS)
    fr = pair.allocate(P)
    pair.inject(HostFaults(map=errno.ENOMEM))
    pair.allocate(P)  # the chunk is mapped now
    pair.inject(NO_FAULTS)
    pair.map_internal(fr)
    assert pair.value(lambda f: f.read(fr)) == bytes(P)
    pair.close()


def mmap_fails_in_map_internal(impl: type[MemoryFile] = MemoryFile) -> None:
    """ENOMEM from mmap: map_internal fails and changes nothing; once mapped it works."""
    pair = Pair(impl=impl)
    fr = pair.allocate(2 * P)
    pair.inject(HostFaults(map=errno.ENOMEM))
    assert pair.map_internal(fr) == raised(errno.ENOMEM)
    pair.inject(NO_FAULTS)
    assert pair.map_internal(fr) == ("ok", [2 * P])
    pair.both(lambda f: f.write(fr.start, b"data"))
    pair.inject(HostFaults(map=errno.ENOMEM))
    assert pair.map_internal(fr) == ("ok", [2 * P])
    pair.close()


def mmap_fails_in_allocate_and_fill(impl: type[MemoryFile] = MemoryFile) -> None:
    """ENOMEM from mapping the allocation: it is released again (DecRef), the error raised."""
    pair = Pair(impl=impl)
    pair.inject(HostFaults(map=errno.ENOMEM))
    assert pair.fill(2 * P, lambda: BytesReader(b"s" * 2 * P)) == raised(errno.ENOMEM)
    freed = FileRange(CHUNK_SIZE - 2 * P, CHUNK_SIZE)
    assert pair.impl.observation().reclaim == (freed,)
    pair.inject(NO_FAULTS)
    pair.both(lambda f: f.reclaim())
    assert pair.fill(2 * P, lambda: BytesReader(b"s" * 2 * P)) == ("ok", (freed, None, None))
    pair.close()


def fallocate_fails_in_decommit(impl: type[MemoryFile] = MemoryFile) -> None:
    """EIO and EOPNOTSUPP from fallocate: decommit fails, nothing is marked or zeroed."""
    pair = Pair(impl=impl)
    fr = pair.allocate(2 * P)
    pair.map_internal(fr)
    pair.both(lambda f: f.write(fr.start, b"secret"))
    pair.update_usage()
    for code in (errno.EIO, errno.EOPNOTSUPP):
        pair.inject(HostFaults(punch=code))
        assert pair.both(lambda f: f.decommit(fr)) == raised(code)
        assert pair.value(lambda f: f.read(FileRange(fr.start, fr.start + 6))) == b"secret"
    pair.inject(NO_FAULTS)
    pair.both(lambda f: f.decommit(fr))
    assert pair.value(lambda f: f.read(fr)) == bytes(2 * P)
    pair.close()


def fallocate_fails_in_the_reclaimer(impl: type[MemoryFile] = MemoryFile) -> None:
    """EOPNOTSUPP from fallocate: the reclaimer zeroes by hand; the pages come back zeroed."""
    pair = Pair(impl=impl)
    fr = pair.allocate(3 * P)
    pair.map_internal(fr)
    pair.both(lambda f: f.write(fr.start, b"\xff" * 3 * P))
    pair.both(lambda f: f.dec_ref(fr))
    pair.inject(HostFaults(punch=errno.EOPNOTSUPP))
    assert pair.both(lambda f: f.reclaim()) == ("ok", [fr])
    assert pair.allocate(3 * P) == fr
    assert pair.value(lambda f: f.read(fr)) == bytes(3 * P)
    pair.close()


def the_reclaimer_can_neither_punch_nor_zero(impl: type[MemoryFile] = MemoryFile) -> None:
    """EIO from fallocate, then ENOMEM from mmap: the range is kept out of use, reclaim stops."""
    pair = Pair(impl=impl)
    fr = pair.allocate(P)  # never mapped
    pair.both(lambda f: f.dec_ref(fr))
    pair.inject(HostFaults(punch=errno.EIO, map=errno.ENOMEM))
    assert pair.both(lambda f: f.reclaim()) == raised(errno.ENOMEM)
    pair.inject(NO_FAULTS)
    other = pair.allocate(P)
    assert other != fr
    pair.both(lambda f: f.dec_ref(other))
    assert pair.both(lambda f: f.reclaim()) == ("ok", [])
    pair.close()


def mincore_fails_in_update_usage(impl: type[MemoryFile] = MemoryFile) -> None:
    """EINVAL from mincore: nothing is marked, the swap booking still runs, the error is raised."""
    pair = Pair(impl=impl)
    fr = pair.allocate(P)
    pair.map_internal(fr)
    pair.both(lambda f: f.write(fr.start, b"x"))
    pair.inject(HostFaults(mincore=errno.EINVAL))
    assert pair.update_usage() == raised(errno.EINVAL)
    assert pair.impl.observation().usage_swapped == P
    pair.inject(NO_FAULTS)
    pair.update_usage()
    assert pair.impl.observation().usage_expected == P
    pair.close()


def mmap_fails_in_update_usage(impl: type[MemoryFile] = MemoryFile) -> None:
    """ENOMEM from mapping a chunk mid-scan: the slices before it stay marked, swap is booked."""
    pair = Pair(impl=impl)
    fr = pair.allocate(CHUNK_SIZE + P)
    assert fr.start < CHUNK_SIZE < fr.end
    low = FileRange(fr.start, fr.start + P)
    pair.map_internal(low)
    pair.both(lambda f: f.write(low.start, b"low"))
    pair.host_write(fr.end - P, b"high")  # committed in chunk 1, which is not mapped
    pair.inject(HostFaults(map=errno.ENOMEM))
    assert pair.update_usage() == raised(errno.ENOMEM)
    observed = pair.impl.observation()
    assert observed.usage_expected == P and observed.usage_swapped == P
    pair.inject(NO_FAULTS)
    pair.update_usage()
    assert pair.impl.observation().usage_expected == 2 * P
    pair.close()


class MidwayReader:
    """Supplies a page and a half, then fails."""

    def __init__(self) -> None:
        self.given = 0

    def readinto(self, buffer: memoryview, /) -> int:
        if self.given:
            raise OSError(errno.EIO, "the source failed")
        self.given = n = min(len(buffer), P + P // 2)
        buffer[:n] = b"r" * n
        return n


def the_reader_fails_midway(impl: type[MemoryFile] = MemoryFile) -> None:
    """A reader raising midway: whole pages filled are kept, the rest freed, its error returned."""
    pair = Pair(impl=impl)
    kept = FileRange(CHUNK_SIZE - 4 * P, CHUNK_SIZE - 3 * P)
    assert pair.fill(4 * P, MidwayReader) == ("ok", (kept, "OSError", errno.EIO))
    assert pair.value(lambda f: f.read(kept)) == b"r" * P
    pair.both(lambda f: f.reclaim())
    pair.allocate(3 * P)
    pair.close()


class FailingUser:
    """Evicts by recording; the first evict raises. Each side gets its own, named alike."""

    def __init__(self) -> None:
        self.delivered: list[EvictableRange] = []

    def evict(self, er: EvictableRange) -> None:
        self.delivered.append(er)
        if len(self.delivered) == 1:
            raise RuntimeError("evict failed")

    def __str__(self) -> str:
        return "failing-user"


RANGES = [EvictableRange(0, 2), EvictableRange(4, 6), EvictableRange(8, 10)]


def evict_raises_without_threads(impl: type[MemoryFile] = MemoryFile) -> None:
    """run_evictions propagates Evict's exception, as the spec does; the next run goes on."""
    pair = Pair(MemoryFileOpts(DelayedEviction.MANUAL), impl=impl)
    users = {id(pair.spec): FailingUser(), id(pair.impl): FailingUser()}
    for er in RANGES:
        pair.both(lambda f, er=er: f.mark_evictable(users[id(f)], er))  # type: ignore[misc]
    pair.both(lambda f: f.start_evictions())
    assert pair.both(lambda f: f.run_evictions()) == ("RuntimeError", None)
    rest = pair.value(lambda f: [(str(u), er) for u, er in f.run_evictions()])
    assert rest == [("failing-user", RANGES[1]), ("failing-user", RANGES[0])]
    assert all(user.delivered == RANGES[::-1] for user in users.values())
    pair.close()


def evict_raises_on_the_eviction_thread(impl: type[MemoryFile] = MemoryFile) -> None:
    """On its thread, a raising Evict is logged and the evictor goes on with the next range."""
    user = FailingUser()
    f = impl(MemoryFileOpts(DelayedEviction.MANUAL), accounting=MemoryAccounting())
    for er in RANGES:
        f.mark_evictable(user, er)
    try:
        f.start_evictions()
        f.wait_for_evictions()
        assert user.delivered == RANGES[::-1]
        assert f.observation().evictable == ()
    finally:
        f.destroy()


SCENARIOS = [
    ftruncate_fails,
    mmap_fails_in_allocate_with_manual_zeroing,
    mmap_fails_in_map_internal,
    mmap_fails_in_allocate_and_fill,
    fallocate_fails_in_decommit,
    fallocate_fails_in_the_reclaimer,
    the_reclaimer_can_neither_punch_nor_zero,
    mincore_fails_in_update_usage,
    mmap_fails_in_update_usage,
    the_reader_fails_midway,
    evict_raises_without_threads,
    evict_raises_on_the_eviction_thread,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_impl_does_what_the_spec_says_under_the_fault(scenario: Callable[[], None]) -> None:
    scenario()


# --- A real limit: RLIMIT_FSIZE in a child process -------------------------------------------


def rlimit_fsize_stops_growth(broken: bool = False) -> None:
    """A file size limit of 1 GiB: growing past it is EFBIG, as the spec says; the rest works."""
    command = [sys.executable, "-m", "tests.impl.fsize_child", *(["--broken"] if broken else [])]
    root = Path(__file__).parents[2]
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=60, cwd=root
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == {"errno": errno.EFBIG, "size": CHUNK_SIZE, "agree": True, "later": True}


def test_a_real_file_size_limit_fails_the_growth_with_efbig() -> None:
    rlimit_fsize_stops_growth()


# --- Each check fails against a deliberately broken build -------------------------------------


class SwallowingKernel(Kernel):
    """Takes a failing ftruncate for a success."""

    def ftruncate(self, fd: int, size: int) -> None:
        with contextlib.suppress(OSError):
            super().ftruncate(fd, size)


class ForgetsGrowth(MemoryFile):
    """allocate that undoes the file's growth when manual zeroing fails (the seed keeps it)."""

    def allocate(self, length: int, kind: MemoryKind) -> FileRange:
        size = self._file_size
        try:
            return super().allocate(length, kind)
        except OSError:
            self._file_size = size
            raise


class SwallowsMapFailure(MemoryFile):
    """map_internal that returns no blocks instead of the mmap error."""

    def map_internal(self, fr: FileRange, at: AccessType) -> list[memoryview]:
        try:
            return super().map_internal(fr, at)
        except OSError:
            return []


class LeakyFill(MemoryFile):
    """allocate_and_fill as it was: when its map_internal fails, the allocation is not released."""

    _filling = False
    _leaking = False

    def allocate_and_fill(self, length: int, kind: MemoryKind, reader: Reader) -> FillResult:
        self._filling = True
        try:
            return super().allocate_and_fill(length, kind, reader)
        finally:
            self._filling = self._leaking = False

    def map_internal(self, fr: FileRange, at: AccessType) -> list[memoryview]:
        try:
            return super().map_internal(fr, at)
        except OSError:
            self._leaking = self._filling
            raise

    def dec_ref(self, fr: FileRange) -> None:
        if not self._leaking:
            super().dec_ref(fr)


class MarksDespiteFailure(MemoryFile):
    """decommit that clears knownCommitted even though the punch failed."""

    def decommit(self, fr: FileRange) -> None:
        try:
            super().decommit(fr)
        except OSError:
            with self._mu:
                self._mark_decommitted_locked(fr.start, fr.end)
            raise


class SkipsZeroing(MemoryFile):
    """A reclaimer that does not zero by hand when the punch fails."""

    def _decommit_reclaimed(self, start: int, end: int) -> None:
        with contextlib.suppress(OSError):
            self._kernel.punch_hole(self._fd, start, end - start)


class SwallowsZeroFailure(MemoryFile):
    """A reclaimer that reclaims a range it could neither punch nor zero."""

    def _decommit_reclaimed(self, start: int, end: int) -> None:
        with contextlib.suppress(OSError):
            super()._decommit_reclaimed(start, end)


class NoBookingOnFailure(MemoryFile):
    """update_usage that skips the swap booking when the scan fails (the seed defers it)."""

    def _scan_locked(self, vector: ResidencyVector) -> None:
        try:
            super()._scan_locked(vector)
        except OSError:
            self._failed_scan = True
            raise

    def _finish_scan_locked(self) -> None:
        if not getattr(self, "_failed_scan", False):
            super()._finish_scan_locked()
        self._failed_scan = False


class SwallowsReaderError(MemoryFile):
    """allocate_and_fill that drops the reader's error from its result."""

    def allocate_and_fill(self, length: int, kind: MemoryKind, reader: Reader) -> FillResult:
        return FillResult(super().allocate_and_fill(length, kind, reader).file_range, None)


class SwallowsEvictError(MemoryFile):
    """Eviction that hides what Evict raised."""

    def _deliver(self, user: Hashable, er: EvictableRange) -> None:
        with contextlib.suppress(RuntimeError):
            super()._deliver(user, er)


class GivesUp(MemoryFile):
    """An evictor that drops the user's other ranges once an Evict fails."""

    def _deliver(self, user: Hashable, er: EvictableRange) -> None:
        try:
            super()._deliver(user, er)
        except RuntimeError:
            with self._mu:
                self._evictable[user].ranges.clear()
            raise


BROKEN: list[tuple[Callable[[], None], str]] = [
    (lambda: ftruncate_fails(kernel=SwallowingKernel), "ftruncate error swallowed"),
    (lambda: mmap_fails_in_allocate_with_manual_zeroing(ForgetsGrowth), "growth forgotten"),
    (lambda: mmap_fails_in_map_internal(SwallowsMapFailure), "map error swallowed"),
    (lambda: mmap_fails_in_allocate_and_fill(LeakyFill), "allocation leaked"),
    (lambda: fallocate_fails_in_decommit(MarksDespiteFailure), "marked despite the error"),
    (lambda: fallocate_fails_in_the_reclaimer(SkipsZeroing), "not zeroed by hand"),
    (lambda: the_reclaimer_can_neither_punch_nor_zero(SwallowsZeroFailure), "reclaimed anyway"),
    (lambda: mincore_fails_in_update_usage(NoBookingOnFailure), "no booking (mincore)"),
    (lambda: mmap_fails_in_update_usage(NoBookingOnFailure), "no booking (mmap)"),
    (lambda: the_reader_fails_midway(SwallowsReaderError), "reader error dropped"),
    (lambda: evict_raises_without_threads(SwallowsEvictError), "evict error hidden"),
    (lambda: evict_raises_on_the_eviction_thread(GivesUp), "evictor gives up"),
    (lambda: rlimit_fsize_stops_growth(broken=True), "EFBIG swallowed"),
]


@pytest.mark.parametrize("check", [c for c, _ in BROKEN], ids=[name for _, name in BROKEN])
def test_each_check_fails_on_a_broken_build(check: Callable[[], None]) -> None:
    with pytest.raises(AssertionError):
        check()


# --- The differential machine's fault rule has teeth ------------------------------------------


def test_the_differential_machine_under_faults_catches_the_allocate_and_fill_leak() -> None:
    def leaky(
        opts: MemoryFileOpts, accounting: MemoryAccounting, clock: Callable[[], int], kernel: Kernel
    ) -> MemoryFile:
        return LeakyFill(opts, accounting=accounting, background=False, clock=clock, kernel=kernel)

    def drive(machine: DifferentialMachine) -> None:
        """The machine's own rules: a new file, mmap failing, then a fill that needs a mapping."""
        machine.create(
            DelayedEviction.DISABLED, memcg=False, manual_zeroing=False, punch_fails=False
        )
        try:
            machine.inject_faults(truncate=None, map_=errno.ENOMEM, punch=None, mincore=None)
            machine.allocate_and_fill(length=P, filled=P, fails=False)
            machine.observations_agree()
            machine.spec_invariants_hold()
        finally:
            machine.teardown()

    drive(DifferentialMachine())  # the real build: both sides raise ENOMEM and agree
    broken = type("Leaky", (DifferentialMachine,), {"make_impl": staticmethod(leaky)})
    with pytest.raises(AssertionError):
        drive(broken())

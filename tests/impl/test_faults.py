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
import threading
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from impl import Kernel, MemoryAccounting, MemoryFile
from impl.eviction import Evictor
from impl.kernel import ResidencyVector
from impl.reclaimer import Reclaimer
from models.mismatch import Mismatch, expect
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
from tests.figures import FIGURES
from tests.impl.helpers import FailingUser, SwallowingKernel
from tests.impl.leaks import fds_of, identity, maps_of, pgalloc_threads

P = PAGE_SIZE
ANON = MemoryKind.ANONYMOUS
MANUAL_ZEROING = MemoryFileOpts(manual_zeroing=True)

File = SpecMemoryFile | MemoryFile
Outcome = tuple[str, object]
OK: Outcome = ("ok", None)
"""What a call that returns nothing did when it succeeded."""


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
        """Make ``call`` on both sides: they must do the same and still agree; what they did.

        An OSError both raised under injected faults counts in the figures.
        """
        expected = outcome(lambda: call(self.spec))
        found = outcome(lambda: call(self.impl))
        if found != expected:
            raise Mismatch("outcome", expected, found)
        if expected[0] == "OSError" and self.spec.faults != NO_FAULTS:
            FIGURES["faults injected (spec and impl agreed)"] += 1
        self.agree()
        return expected

    def value(self, call: Callable[[File], object]) -> object:
        """``both``, which must succeed: the result."""
        status, result = self.both(call)
        assert status == "ok", f"{status} raised where the call must succeed ({result})"
        return result

    def allocate(self, length: int) -> FileRange:
        """``allocate`` on both sides, which must succeed alike: the range."""
        fr = self.value(lambda f: f.allocate(length, ANON))
        assert isinstance(fr, FileRange)
        return fr

    def agree(self) -> None:
        """Same observation, usage and size; the kernel holds what the host model says."""
        expected, found = self.spec.observation(), self.impl.observation()
        for field in dataclasses.fields(expected):
            expect(field.name, getattr(expected, field.name), getattr(found, field.name))
        expect("total_usage", self.spec.total_usage(), self.impl.total_usage())
        expect("total_size", self.spec.total_size(), self.impl.total_size())
        faults, self.kernel.faults = self.kernel.faults, NO_FAULTS  # committed_ranges maps
        try:
            kernel_says = range_set(self.impl.committed_ranges())
        finally:
            self.kernel.faults = faults
        expect("committed pages", self.spec.state.host.committed, kernel_says)
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


@pytest.fixture(autouse=True)
def quiet_impl_logs() -> Iterator[None]:
    """impl warns at each injected punch failure: only CRITICAL passes, in this module's tests."""
    logger = logging.getLogger("impl")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def logged(level: int) -> Iterator[list[str]]:
    """The messages impl logs at ``level`` or above meanwhile, on any thread."""
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger, keep = logging.getLogger("impl"), Keep(level)
    saved = logger.level
    logger.setLevel(level)
    logger.addHandler(keep)
    try:
        yield messages
    finally:
        logger.removeHandler(keep)
        logger.setLevel(saved)


@contextlib.contextmanager
def thread_deaths() -> Iterator[list[tuple[str, int | None]]]:
    """Threads that die of an exception meanwhile: (name, errno), instead of a pytest warning."""
    deaths: list[tuple[str, int | None]] = []

    def hook(args: threading.ExceptHookArgs) -> None:
        deaths.append((args.thread.name if args.thread else "?", _errno(args.exc_value)))

    previous, threading.excepthook = threading.excepthook, hook
    try:
        yield deaths
    finally:
        threading.excepthook = previous


def assert_nothing_left(file: tuple[int, int], before: set[threading.Thread]) -> None:
    """After destroy: no descriptor or mapping of ``file`` (an identity), no new pgalloc thread."""
    expect("threads after destroy", [], sorted(t.name for t in pgalloc_threads() - before))
    expect("descriptors of the memfd after destroy", [], fds_of(file))
    expect("mappings of the memfd after destroy", [], maps_of(file))


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
    pair.value(lambda f: f.dec_ref(first))
    assert pair.value(lambda f: f.reclaim()) == [first]
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
    assert pair.map_internal(fr) == ("ok", [P])
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
    pair.value(lambda f: f.write(fr.start, b"data"))
    pair.inject(HostFaults(map=errno.ENOMEM))
    assert pair.map_internal(fr) == ("ok", [2 * P])
    assert pair.value(lambda f: f.read(FileRange(fr.start, fr.start + 4))) == b"data"
    pair.close()


def mmap_fails_in_allocate_and_fill(impl: type[MemoryFile] = MemoryFile) -> None:
    """ENOMEM from mapping the allocation: it is released again (DecRef), the error raised."""
    pair = Pair(impl=impl)
    pair.inject(HostFaults(map=errno.ENOMEM))
    assert pair.fill(2 * P, lambda: BytesReader(b"s" * 2 * P)) == raised(errno.ENOMEM)
    freed = FileRange(CHUNK_SIZE - 2 * P, CHUNK_SIZE)
    assert pair.impl.observation().reclaim == (freed,)
    pair.inject(NO_FAULTS)
    assert pair.value(lambda f: f.reclaim()) == [freed]
    assert pair.fill(2 * P, lambda: BytesReader(b"s" * 2 * P)) == ("ok", (freed, None, None))
    pair.close()


def fallocate_fails_in_decommit(impl: type[MemoryFile] = MemoryFile) -> None:
    """EIO and EOPNOTSUPP from fallocate: decommit fails, nothing is marked or zeroed."""
    pair = Pair(impl=impl)
    fr = pair.allocate(2 * P)
    assert pair.map_internal(fr) == ("ok", [2 * P])
    pair.value(lambda f: f.write(fr.start, b"secret"))
    assert pair.update_usage() == OK
    for code in (errno.EIO, errno.EOPNOTSUPP):
        pair.inject(HostFaults(punch=code))
        assert pair.both(lambda f: f.decommit(fr)) == raised(code)
        assert pair.value(lambda f: f.read(FileRange(fr.start, fr.start + 6))) == b"secret"
    pair.inject(NO_FAULTS)
    pair.value(lambda f: f.decommit(fr))
    assert pair.value(lambda f: f.read(fr)) == bytes(2 * P)
    pair.close()


def fallocate_fails_in_the_reclaimer(impl: type[MemoryFile] = MemoryFile) -> None:
    """EOPNOTSUPP from fallocate: the reclaimer zeroes by hand; the pages come back zeroed."""
    pair = Pair(impl=impl)
    fr = pair.allocate(3 * P)
    assert pair.map_internal(fr) == ("ok", [3 * P])
    pair.value(lambda f: f.write(fr.start, b"\xff" * 3 * P))
    pair.value(lambda f: f.dec_ref(fr))
    pair.inject(HostFaults(punch=errno.EOPNOTSUPP))
    assert pair.both(lambda f: f.reclaim()) == ("ok", [fr])
    assert pair.allocate(3 * P) == fr
    assert pair.value(lambda f: f.read(fr)) == bytes(3 * P)
    pair.close()


def the_reclaimer_can_neither_punch_nor_zero(impl: type[MemoryFile] = MemoryFile) -> None:
    """EIO from fallocate, then ENOMEM from mmap: the range is kept out of use, reclaim stops.

    And ``destroy`` still cleans up: no descriptor or mapping of the memfd is left.
    """
    before = pgalloc_threads()
    pair = Pair(impl=impl)
    file = identity(pair.impl.fd())
    fr = pair.allocate(P)  # never mapped
    pair.value(lambda f: f.dec_ref(fr))
    pair.inject(HostFaults(punch=errno.EIO, map=errno.ENOMEM))
    assert pair.both(lambda f: f.reclaim()) == raised(errno.ENOMEM)
    pair.inject(NO_FAULTS)
    other = pair.allocate(P)
    assert other == FileRange(fr.start - P, fr.start)  # below fr, which is kept
    assert pair.map_internal(other) == ("ok", [P])  # a mapping for destroy to remove
    pair.value(lambda f: f.dec_ref(other))
    assert pair.value(lambda f: f.reclaim()) == []
    pair.close()
    assert_nothing_left(file, before)


def reclaim_failure(f: MemoryFile) -> str:
    """What ``reclaim`` did, for a message: the error it raised, or what it returned."""
    try:
        return f"returned {f.reclaim()}"
    except RuntimeError as error:
        return f"raised {error}"


def the_reclaimer_thread_can_neither_punch_nor_zero(impl: type[MemoryFile] = MemoryFile) -> None:
    """The same faults on the reclaimer thread: the thread stops (reclaim says so), the range is
    never handed out again, and ``destroy`` still cleans up.
    """
    before = pgalloc_threads()
    kernel = Kernel()
    f = impl(accounting=MemoryAccounting(), kernel=kernel)
    file = identity(f.fd())
    stopped = "raised the reclaimer thread failed; see the log"
    try:
        with thread_deaths() as deaths, logged(logging.CRITICAL) as messages:
            fr = f.allocate(P, ANON)  # its chunk is never mapped
            kernel.faults = HostFaults(punch=errno.EIO, map=errno.ENOMEM)
            f.dec_ref(fr)
            done = reclaim_failure(f)
            expect("reclaim after the double fault", stopped, done)
            thread = f._reclaimer_thread
            assert thread is not None
            thread.join(timeout=10)
            assert not thread.is_alive(), "the failed reclaimer thread still runs"
        assert deaths == [("pgalloc-reclaimer", errno.ENOMEM)]
        assert messages == ["the MemoryFile reclaimer failed; nothing more will be reclaimed"]
        kernel.faults = NO_FAULTS
        observed = f.observation()
        assert observed.usage == ((fr, MemoryKind.SYSTEM, 0, False),) and not observed.reclaim
        other = f.allocate(P, ANON)
        assert other == FileRange(fr.start - P, fr.start)  # below fr, which is kept
        views = f.map_internal(other, WRITE)  # a mapping for destroy to remove
        for view in views:
            view.release()
        f.dec_ref(other)
        assert reclaim_failure(f) == stopped
        assert f.observation().reclaim == (other,)  # stopped for good
        assert f.allocate(2 * P, ANON).end <= other.start  # fr is never handed out
    finally:
        f.destroy()
    assert_nothing_left(file, before)


def mincore_fails_in_update_usage(impl: type[MemoryFile] = MemoryFile) -> None:
    """EINVAL from mincore: nothing is marked, the swap booking still runs, the error is raised."""
    pair = Pair(impl=impl)
    fr = pair.allocate(P)
    assert pair.map_internal(fr) == ("ok", [P])
    pair.value(lambda f: f.write(fr.start, b"x"))
    pair.inject(HostFaults(mincore=errno.EINVAL))
    assert pair.update_usage() == raised(errno.EINVAL)
    assert pair.impl.observation().usage_swapped == P
    pair.inject(NO_FAULTS)
    assert pair.update_usage() == OK
    assert pair.impl.observation().usage_expected == P
    pair.close()


def mmap_fails_in_update_usage(impl: type[MemoryFile] = MemoryFile) -> None:
    """ENOMEM from mapping a chunk mid-scan: the slices before it stay marked, swap is booked."""
    pair = Pair(impl=impl)
    fr = pair.allocate(CHUNK_SIZE + P)
    assert fr.start < CHUNK_SIZE < fr.end
    low = FileRange(fr.start, fr.start + P)
    assert pair.map_internal(low) == ("ok", [P])
    pair.value(lambda f: f.write(low.start, b"low"))
    pair.host_write(fr.end - P, b"high")  # committed in chunk 1, which is not mapped
    pair.inject(HostFaults(map=errno.ENOMEM))
    assert pair.update_usage() == raised(errno.ENOMEM)
    observed = pair.impl.observation()
    assert observed.usage_expected == P and observed.usage_swapped == P
    pair.inject(NO_FAULTS)
    assert pair.update_usage() == OK
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
    rest = FileRange(kept.end, CHUNK_SIZE)
    assert pair.value(lambda f: f.reclaim()) == [rest]
    assert pair.allocate(3 * P) == rest
    pair.close()


RANGES = [EvictableRange(0, 2), EvictableRange(4, 6), EvictableRange(8, 10)]


def evict_raises_without_threads(impl: type[MemoryFile] = MemoryFile) -> None:
    """run_evictions propagates Evict's exception, as the spec does; the next run goes on."""
    pair = Pair(MemoryFileOpts(DelayedEviction.MANUAL), impl=impl)
    users = {id(pair.spec): FailingUser(), id(pair.impl): FailingUser()}
    for er in RANGES:
        pair.value(lambda f, er=er: f.mark_evictable(users[id(f)], er))  # type: ignore[misc]
    pair.value(lambda f: f.start_evictions())
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
        with logged(logging.ERROR) as messages:
            f.start_evictions()
            f.wait_for_evictions()
        expect("delivered", RANGES[::-1], user.delivered)
        expect("logged", [f"evicting {RANGES[-1]} of {user!r} failed"], messages)
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
    the_reclaimer_thread_can_neither_punch_nor_zero,
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
    assert done.returncode == 0, f"the child failed: {done.stderr}"
    report = json.loads(done.stdout)
    expected = {"errno": errno.EFBIG, "size": CHUNK_SIZE, "agree": True, "later": True}
    expect("the child's report", expected, report)


def test_a_real_file_size_limit_fails_the_growth_with_efbig() -> None:
    rlimit_fsize_stops_growth()


# --- Each check fails against a deliberately broken build -------------------------------------


class ForgetsGrowth(MemoryFile):
    """allocate that undoes the file's growth when manual zeroing fails (the seed keeps it)."""

    def allocate(self, length: int, kind: MemoryKind) -> FileRange:
        size = self._state.file_size
        try:
            return super().allocate(length, kind)
        except OSError:
            self._state.file_size = size
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
            with self._state.mu:
                self._mark_decommitted_locked(fr.start, fr.end)
            raise


class PunchOnlyReclaimer(Reclaimer):
    def decommit(self, start: int, end: int) -> None:
        with contextlib.suppress(OSError):
            self.state.kernel.punch_hole(self.state.fd, start, end - start)


class SkipsZeroing(MemoryFile):
    """A reclaimer that does not zero by hand when the punch fails."""

    _reclaimer_class = PunchOnlyReclaimer


class SwallowingReclaimer(Reclaimer):
    def decommit(self, start: int, end: int) -> None:
        with contextlib.suppress(OSError):
            super().decommit(start, end)


class SwallowsZeroFailure(MemoryFile):
    """A reclaimer that reclaims a range it could neither punch nor zero."""

    _reclaimer_class = SwallowingReclaimer


class KeepingReclaimer(Reclaimer):
    """Its exit keeps the file once the reclaimer has failed; see :class:`KeepsTheFile`."""

    kept: ClassVar[list[KeepingReclaimer]] = []
    keeping = False

    def exit_locked(self) -> None:
        if self.state.reclaimer_failed and not self.keeping:
            self.keeping = True
            KeepingReclaimer.kept.append(self)
            return
        super().exit_locked()


class KeepsTheFile(MemoryFile):
    """destroy that leaves the memfd open and its chunks mapped once the reclaimer has failed.

    The fixture ``close_kept_files`` closes them for good after the test (a second exit).
    """

    _reclaimer_class = KeepingReclaimer


@pytest.fixture(autouse=True)
def close_kept_files() -> Iterator[None]:
    yield
    while KeepingReclaimer.kept:
        kept = KeepingReclaimer.kept.pop()
        with kept.state.mu:
            kept.exit_locked()


class NoBookingOnFailure(MemoryFile):
    """update_usage that skips the swap booking when the scan fails (the seed defers it)."""

    def _scan_locked(self, vector: ResidencyVector) -> None:
        try:
            super()._scan_locked(vector)
        except OSError:
            self._failed_scan = True
            raise

    def _finish_scan_locked(self, began_with: int) -> None:
        if not getattr(self, "_failed_scan", False):
            super()._finish_scan_locked(began_with)
        self._failed_scan = False


class SwallowsReaderError(MemoryFile):
    """allocate_and_fill that drops the reader's error from its result."""

    def allocate_and_fill(self, length: int, kind: MemoryKind, reader: Reader) -> FillResult:
        return FillResult(super().allocate_and_fill(length, kind, reader).file_range, None)


class SwallowingEvictor(Evictor):
    def evict_deliver(self, user: Hashable, er: EvictableRange) -> None:
        with contextlib.suppress(RuntimeError):
            super().evict_deliver(user, er)


class SwallowsEvictError(MemoryFile):
    """Eviction that hides what Evict raised."""

    _evictor_class = SwallowingEvictor


class GivingUpEvictor(Evictor):
    def evict_deliver(self, user: Hashable, er: EvictableRange) -> None:
        try:
            super().evict_deliver(user, er)
        except RuntimeError:
            with self.state.mu:
                self.state.evictable[user].ranges.clear()
            raise


class GivesUp(MemoryFile):
    """An evictor that drops the user's other ranges once an Evict fails."""

    _evictor_class = GivingUpEvictor


FILE_END = CHUNK_SIZE
"""The end of a one-chunk file, where the first allocation goes (allocation is top-down)."""

ANY = object()
"""In a Reason: any value."""


@dataclasses.dataclass(frozen=True)
class Reason:
    """The Mismatch a broken build must fail with: its field, and what was expected and found.

    ``expected``/``actual``: a value, ``ANY``, or a predicate on the value.
    """

    field: str
    expected: object = ANY
    actual: object = ANY

    def matches(self, failure: Mismatch) -> bool:
        return failure.field == self.field and all(
            want is ANY or (want(got) if callable(want) else want == got)
            for want, got in ((self.expected, failure.expected), (self.actual, failure.actual))
        )


def succeeded(outcome: object) -> bool:
    return isinstance(outcome, tuple) and outcome[0] == "ok"


def nonzero_bytes(count: int) -> Callable[[object], bool]:
    """An outcome ("ok", bytes) with ``count`` bytes, none of them zero."""

    def test(outcome: object) -> bool:
        data = outcome[1] if isinstance(outcome, tuple) else None
        return isinstance(data, bytes) and len(data) == count and data.count(0) == 0

    return test


LEAKED = FileRange(FILE_END - 2 * P, FILE_END)
ACCOUNTED_AS_SWAP = tuple((kind, P if kind is MemoryKind.SYSTEM else 0) for kind in MemoryKind)
NOT_ACCOUNTED = tuple((kind, 0) for kind in MemoryKind)
STOPPED = "raised the reclaimer thread failed; see the log"

BROKEN: list[tuple[str, Callable[[], None], Reason]] = [
    (
        "ftruncate error swallowed",
        lambda: ftruncate_fails(kernel=SwallowingKernel),
        Reason("outcome", raised(errno.ENOSPC), succeeded),
    ),
    (
        "growth forgotten",
        lambda: mmap_fails_in_allocate_with_manual_zeroing(ForgetsGrowth),
        Reason("file_size", CHUNK_SIZE, 0),
    ),
    (
        "map error swallowed",
        lambda: mmap_fails_in_map_internal(SwallowsMapFailure),
        Reason("outcome", raised(errno.ENOMEM), ("ok", [])),
    ),
    (
        "allocation leaked",
        lambda: mmap_fails_in_allocate_and_fill(LeakyFill),
        # impl still holds the fill's pages, referenced; the spec freed them.
        Reason(
            "usage",
            ((LEAKED, MemoryKind.SYSTEM, 0, False),),
            ((LEAKED, ANON, 1, False),),
        ),
    ),
    (
        "marked despite the error",
        lambda: fallocate_fails_in_decommit(MarksDespiteFailure),
        # impl forgot that the written page is committed; the spec still knows.
        Reason(
            "usage",
            lambda usage: usage[0] == (FileRange(FILE_END - 2 * P, FILE_END - P), ANON, 1, True),
            ((FileRange(FILE_END - 2 * P, FILE_END), ANON, 1, False),),
        ),
    ),
    (
        "not zeroed by hand",
        lambda: fallocate_fails_in_the_reclaimer(SkipsZeroing),
        Reason("outcome", ("ok", bytes(3 * P)), nonzero_bytes(3 * P)),
    ),
    (
        "reclaimed anyway",
        lambda: the_reclaimer_can_neither_punch_nor_zero(SwallowsZeroFailure),
        Reason("outcome", raised(errno.ENOMEM), succeeded),
    ),
    (
        "reclaimed anyway (thread)",
        lambda: the_reclaimer_thread_can_neither_punch_nor_zero(SwallowsZeroFailure),
        Reason("reclaim after the double fault", STOPPED, "returned []"),
    ),
    (
        "file kept after the failure",
        lambda: the_reclaimer_can_neither_punch_nor_zero(KeepsTheFile),
        Reason("descriptors of the memfd after destroy", [], bool),
    ),
    (
        "file kept after the failure (thread)",
        lambda: the_reclaimer_thread_can_neither_punch_nor_zero(KeepsTheFile),
        Reason("descriptors of the memfd after destroy", [], bool),
    ),
    (
        "no booking (mincore)",
        lambda: mincore_fails_in_update_usage(NoBookingOnFailure),
        # The unscanned page is booked as swap (System) by the spec, not by impl.
        Reason("accounting", ACCOUNTED_AS_SWAP, NOT_ACCOUNTED),
    ),
    (
        "no booking (mmap)",
        lambda: mmap_fails_in_update_usage(NoBookingOnFailure),
        Reason("accounting", lambda a: a[0] == (MemoryKind.SYSTEM, P), lambda a: a[0][1] == 0),
    ),
    (
        "reader error dropped",
        lambda: the_reader_fails_midway(SwallowsReaderError),
        Reason(
            "outcome",
            lambda o: o[0] == "ok" and o[1][1:] == ("OSError", errno.EIO),
            lambda o: o[0] == "ok" and o[1][1:] == (None, None),
        ),
    ),
    (
        "evict error hidden",
        lambda: evict_raises_without_threads(SwallowsEvictError),
        Reason("outcome", ("RuntimeError", None), succeeded),
    ),
    (
        "evictor gives up",
        lambda: evict_raises_on_the_eviction_thread(GivesUp),
        Reason("delivered", RANGES[::-1], RANGES[-1:]),
    ),
    (
        "evict error not logged",
        lambda: evict_raises_on_the_eviction_thread(SwallowsEvictError),
        Reason("logged", ANY, []),
    ),
    (
        "EFBIG swallowed",
        lambda: rlimit_fsize_stops_growth(broken=True),
        # The child's report: no EFBIG, the file grew past the limit, the spec disagrees.
        Reason(
            "the child's report",
            {"errno": errno.EFBIG, "size": CHUNK_SIZE, "agree": True, "later": True},
            {"errno": None, "size": 2 * CHUNK_SIZE, "agree": False, "later": True},
        ),
    ),
]


@pytest.mark.parametrize(("check", "reason"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_each_check_fails_on_a_broken_build(check: Callable[[], None], reason: Reason) -> None:
    """The check fails, and for the reason the broken part gives (not some other check)."""
    with pytest.raises(Mismatch) as failure:
        check()
    assert reason.matches(failure.value), (
        f"failed on {failure.value.field!r}, expected {failure.value.expected!r}, "
        f"found {failure.value.actual!r}"
    )


def test_a_reason_matches_only_its_mismatch() -> None:
    """The matcher itself can say no: another field, or another value, is not the reason."""
    reason = Reason("file_size", CHUNK_SIZE, 0)
    assert reason.matches(Mismatch("file_size", CHUNK_SIZE, 0))
    assert not reason.matches(Mismatch("usage", CHUNK_SIZE, 0))
    assert not reason.matches(Mismatch("file_size", CHUNK_SIZE, P))
    assert not Reason("outcome", ANY, succeeded).matches(Mismatch("outcome", OK, ("OSError", 5)))


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
    leaked = FileRange(FILE_END - P, FILE_END)
    # The implementation still holds the page the fill allocated; the spec freed it.
    with pytest.raises(Mismatch) as failure:
        drive(broken())
    assert Reason(
        "usage",
        ((leaked, MemoryKind.SYSTEM, 0, False),),
        ((leaked, MemoryKind.PAGE_CACHE, 1, False),),
    ).matches(failure.value)

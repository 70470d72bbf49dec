"""Zero on reuse, every path: a new allocation never shows a previous owner's bytes.

Each property fills allocations of a real ``MemoryFile`` with secrets
(non-zero bytes), frees them, lets the reclaimer return them (run by hand, on
its thread, or racing the next allocations), allocates again until every
freed page has been handed out anew, and reads every byte of every new
allocation through ``map_internal``: all must be zero, and the secret pages
must all have come back (else the check proved nothing). The paths:
punch-hole decommit, manual zeroing, a punch failing (EOPNOTSUPP, EIO) so the
reclaimer zeroes by hand, ``decommit``, eviction, chunk boundaries, huge-page
alignment, and ``allocate_and_fill`` with short and failing readers. Without
threads the specification runs alongside and must agree on every result,
read and observation.

The last section runs the same checks against deliberately broken builds and
shows that each one reports the leak.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impl import Kernel, MemoryFile
from impl.reclaimer import Reclaimer
from spec.memory_file import SpecMemoryFile
from spec.vocabulary import (
    CHUNK_SIZE,
    FILL_BUFFER,
    HUGE_PAGE_SIZE,
    PAGE_SIZE,
    READ,
    WRITE,
    BytesReader,
    EvictableRange,
    FileRange,
    HostFaults,
    MemoryFileOpts,
    MemoryKind,
)
from tests.figures import FIGURES
from tests.impl.leaks import MODE_OPTS, Build, Mode, assert_reads_zero, examples, overlap, secret

ANON = MemoryKind.ANONYMOUS
HUGE_PAGES = HUGE_PAGE_SIZE // PAGE_SIZE

Driver = Literal["manual", "thread", "race"]
"""How reclaim runs: by hand (and the spec alongside), on its thread, or racing the reuse."""

Fill = Literal["view", "write", "fill"]
"""How secrets get in: map_internal views, write, or allocate_and_fill."""

FILLS: list[Fill] = ["view", "write", "fill"]


# --- Paths and builds ----------------------------------------------------------------------


@dataclass(frozen=True)
class Path:
    """How freed pages are made to read zero: punching, manual zeroing, or the fallback."""

    name: str
    manual_zeroing: bool = False
    punch_errno: int | None = None
    """fallocate(PUNCH_HOLE) fails with this (the reclaimer then zeroes by hand)."""

    def opts(self, base: MemoryFileOpts = MemoryFileOpts()) -> MemoryFileOpts:
        return replace(base, manual_zeroing=self.manual_zeroing)

    def faults(self) -> HostFaults:
        return HostFaults(punch=self.punch_errno)

    def __str__(self) -> str:
        return self.name


PUNCH = Path("punch")
MANUAL_ZEROING = Path("manual-zeroing", manual_zeroing=True)
PUNCH_EOPNOTSUPP = Path("punch-eopnotsupp", punch_errno=errno.EOPNOTSUPP)
PUNCH_EIO = Path("punch-eio", punch_errno=errno.EIO)
PATHS = [PUNCH, MANUAL_ZEROING, PUNCH_EOPNOTSUPP, PUNCH_EIO]


class TalliedKernel(Kernel):
    """The real kernel, counting the punches its injected fault made fail."""

    def punch_hole(self, fd: int, offset: int, length: int) -> None:
        if self.faults.punch is not None:
            FIGURES["punch faults injected"] += 1
        super().punch_hole(fd, offset, length)


def make(
    build: Build, path: Path, *, background: bool, opts: MemoryFileOpts = MemoryFileOpts()
) -> MemoryFile:
    """A file of ``build`` with ``opts`` on ``path`` (its zeroing, its injected punch fault)."""
    return build.make(path.opts(opts), background=background, faults=path.faults())


REAL = Build(kernel=TalliedKernel)


def twin(
    path: Path, driver: Driver, opts: MemoryFileOpts = MemoryFileOpts()
) -> SpecMemoryFile | None:
    """The specification, to run alongside a file without threads (None with threads)."""
    return SpecMemoryFile(path.opts(opts), faults=path.faults()) if driver == "manual" else None


# --- Steps shared by the checks ------------------------------------------------------------


def put_secret(
    f: MemoryFile, spec: SpecMemoryFile | None, length: int, fill: Fill, seed: int
) -> FileRange:
    """Allocate ``length`` bytes and fill them with a secret, as ``fill`` says."""
    data = secret(length, seed)
    if fill == "fill":
        result = f.allocate_and_fill(length, ANON, BytesReader(data))
        assert result.error is None
        fr = result.file_range
        if spec is not None:
            assert spec.allocate_and_fill(length, ANON, BytesReader(data)).file_range == fr
        return fr
    fr = f.allocate(length, ANON)
    views = f.map_internal(fr, WRITE)
    if fill == "view":
        position = 0
        for view in views:
            view[:] = data[position : position + len(view)]
            position += len(view)
    for view in views:
        view.release()
    if fill == "write":
        f.write(fr.start, data)
    if spec is not None:
        assert spec.allocate(length, ANON) == fr
        spec.map_internal(fr, WRITE)
        spec.write(fr.start, data)
    return fr


def free(f: MemoryFile, spec: SpecMemoryFile | None, fr: FileRange) -> None:
    """Drop the reference on ``fr`` (in the spec too)."""
    f.dec_ref(fr)
    if spec is not None:
        spec.dec_ref(fr)


def reclaim(f: MemoryFile, spec: SpecMemoryFile | None) -> None:
    """Run reclaim to idle (by hand: the spec too, reclaiming the same ranges)."""
    reclaimed = f.reclaim()
    if spec is not None:
        assert reclaimed == spec.reclaim()


def allocate_zeroed(f: MemoryFile, spec: SpecMemoryFile | None, length: int) -> FileRange:
    """A new allocation, every byte of which must read zero (and be predicted zero)."""
    fr = f.allocate(length, ANON)
    assert_reads_zero(f, fr)
    if length >= HUGE_PAGE_SIZE:
        assert fr.start % HUGE_PAGE_SIZE == 0, f"{fr} is not huge-page aligned"
    if spec is not None:
        assert spec.allocate(length, ANON) == fr
        spec.map_internal(fr, READ)
        assert spec.read(fr) == bytes(length)
    return fr


def highest_gap_above(f: MemoryFile, low: int) -> FileRange | None:
    """The part above ``low`` of the highest free range of the file, if any."""
    observed = f.observation()
    end = observed.file_size
    for fr, *_ in reversed(observed.usage):
        if max(fr.end, low) < end:
            return FileRange(max(fr.end, low), end)
        end = fr.start
    return FileRange(low, end) if low < end else None


def refill(f: MemoryFile, spec: SpecMemoryFile | None, low: int) -> list[FileRange]:
    """Allocate every free page above ``low`` (where the secrets were), each checked zero.

    Allocation takes the highest free range that fits, so each allocation as
    long as the highest gap (below the huge-page size, so page aligned) fills
    its top; then one more page must land below ``low``.
    """
    fresh = []
    while (gap := highest_gap_above(f, low)) is not None:
        fresh.append(allocate_zeroed(f, spec, min(gap.length(), HUGE_PAGE_SIZE - PAGE_SIZE)))
        assert gap.is_superset_of(fresh[-1]), f"{fresh[-1]} missed the highest gap {gap}"
    fresh.append(allocate_zeroed(f, spec, PAGE_SIZE))
    assert fresh[-1].start < low, "free pages were left above the secrets' lowest page"
    return fresh


def assert_all_reused(fresh: list[FileRange], secrets: list[FileRange]) -> None:
    """Every secret page was handed out again (so it was read back and checked)."""
    reused = sum(overlap(fr, secrets) for fr in fresh)
    assert reused == sum(s.length() for s in secrets), "not every freed secret page came back"
    FIGURES["secret bytes reused"] += reused


def agree(f: MemoryFile, spec: SpecMemoryFile | None) -> None:
    """The file and the spec (if it runs alongside) are in the same state."""
    if spec is not None:
        assert f.observation() == spec.observation()


# --- Free, reclaim, reuse ------------------------------------------------------------------

PAGE_COUNTS = st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, HUGE_PAGES, HUGE_PAGES + 1])
"""Lengths in pages: mostly small, some huge-page sized (and so huge-page aligned)."""


@dataclass(frozen=True)
class Allocation:
    pages: int
    fill: Fill
    freed: tuple[int, int] | None
    """The pages ``[first, end)`` of it to free; None keeps it."""


@dataclass(frozen=True)
class ReusePlan:
    allocations: list[Allocation]
    reallocations: list[int]
    """Lengths in pages allocated first (racing the reclaimer, with that driver)."""


@st.composite
def allocations(draw: st.DrawFn) -> Allocation:
    pages = draw(PAGE_COUNTS)
    freed = None
    if draw(st.booleans()):
        first = draw(st.integers(0, pages - 1))
        freed = (first, draw(st.integers(first + 1, pages)))
    return Allocation(pages, draw(st.sampled_from(FILLS)), freed)


REUSE_PLANS = st.builds(
    ReusePlan,
    st.lists(allocations(), min_size=1, max_size=5).filter(
        lambda allocs: any(a.freed for a in allocs)
    ),
    st.lists(PAGE_COUNTS, max_size=4),
)


def check_reuse(build: Build, path: Path, driver: Driver, plan: ReusePlan) -> None:
    """Secrets freed (wholly or in part) and reclaimed never reach a new allocation."""
    f = make(build, path, background=driver != "manual")
    spec = twin(path, driver)
    try:
        secrets = []
        taken = [
            put_secret(f, spec, a.pages * PAGE_SIZE, a.fill, seed)
            for seed, a in enumerate(plan.allocations)
        ]
        low = min(fr.start for fr in taken)
        for a, fr in zip(plan.allocations, taken, strict=True):
            if a.freed is not None:
                first, end = a.freed
                part = FileRange(fr.start + first * PAGE_SIZE, fr.start + end * PAGE_SIZE)
                free(f, spec, part)
                secrets.append(part)
        if driver != "race":
            reclaim(f, spec)
        fresh = [allocate_zeroed(f, spec, pages * PAGE_SIZE) for pages in plan.reallocations]
        reclaim(f, spec)  # (racing: only now is every freed page surely back)
        fresh += refill(f, spec, low)
        assert_all_reused(fresh, secrets)
        agree(f, spec)
    finally:
        f.destroy()


@pytest.mark.parametrize("driver", ["manual", "thread", "race"])
@pytest.mark.parametrize("path", PATHS, ids=str)
@settings(max_examples=examples(3))
@given(plan=REUSE_PLANS)
def test_freed_secrets_never_reach_a_new_allocation(
    path: Path, driver: Driver, plan: ReusePlan
) -> None:
    check_reuse(REAL, path, driver, plan)


# --- Decommit ------------------------------------------------------------------------------


def check_decommit(
    build: Build, path: Path, driver: Driver, pages: int, part: tuple[int, int], fill: Fill
) -> None:
    """Pages decommitted while allocated read zero at once, and after reuse.

    With the punch failing, ``decommit`` raises its errno and changes nothing:
    the observation, and the data, stay (manual zeroing does not punch).
    """
    f = make(build, path, background=driver != "manual")
    spec = twin(path, driver)
    try:
        fr = put_secret(f, spec, pages * PAGE_SIZE, fill, seed=7)
        data = secret(fr.length(), 7)
        cut = FileRange(fr.start + part[0] * PAGE_SIZE, fr.start + part[1] * PAGE_SIZE)
        if path.punch_errno is not None and not path.manual_zeroing:
            before = f.observation()
            with pytest.raises(OSError) as raised:
                f.decommit(cut)
            assert raised.value.errno == path.punch_errno
            assert f.observation() == before
            assert f.read(fr) == data, "a failed decommit lost data"
            if spec is not None:
                with pytest.raises(OSError):
                    spec.decommit(cut)
        else:
            f.decommit(cut)
            assert_reads_zero(f, cut)
            expected = bytearray(data)
            expected[cut.start - fr.start : cut.end - fr.start] = bytes(cut.length())
            assert f.read(fr) == expected, "decommit changed pages outside its range"
            if spec is not None:
                spec.decommit(cut)
                assert spec.read(fr) == expected
        agree(f, spec)
        free(f, spec, fr)
        reclaim(f, spec)
        assert_all_reused(refill(f, spec, fr.start), [fr])
        agree(f, spec)
    finally:
        f.destroy()


@st.composite
def decommit_cases(draw: st.DrawFn) -> tuple[int, tuple[int, int], Fill]:
    pages = draw(PAGE_COUNTS)
    first = draw(st.integers(0, pages - 1))
    return pages, (first, draw(st.integers(first + 1, pages))), draw(st.sampled_from(FILLS))


@pytest.mark.parametrize("driver", ["manual", "thread"])
@pytest.mark.parametrize("path", PATHS, ids=str)
@settings(max_examples=examples(6))
@given(case=decommit_cases())
def test_decommitted_pages_read_zero_and_a_failed_decommit_keeps_the_data(
    path: Path, driver: Driver, case: tuple[int, tuple[int, int], Fill]
) -> None:
    check_decommit(REAL, path, driver, *case)


# --- Eviction ------------------------------------------------------------------------------


class Evictee:
    """An evictable user whose ``evict`` gives back the file range behind the range evicted.

    ``release`` is the file's (or the spec's) ``dec_ref``: eviction calls back into the file.
    """

    def __init__(self, release: Callable[[FileRange], None]) -> None:
        self.release = release
        self.ranges: dict[EvictableRange, FileRange] = {}
        self.lock = threading.Lock()

    def evict(self, er: EvictableRange) -> None:
        with self.lock:
            fr = self.ranges.pop(er, None)
        if fr is not None:
            self.release(fr)


def evict(target: MemoryFile | SpecMemoryFile, mode: Mode) -> None:
    """Start the evictions as ``mode`` starts them, and wait until they are done."""
    if mode == "enabled-memcg":
        assert target.memcg_pressure()
    elif mode == "manual":
        target.start_evictions()
    elif mode == "enabled":
        target.reclaim()  # the reclaimer runs dry, so it starts the evictions
    target.wait_for_evictions()


def check_evicted_reuse(
    build: Build, path: Path, driver: Driver, mode: Mode, sizes: list[int]
) -> None:
    """Secrets in evictable memory, given back when evicted, never reach a new allocation.

    Each ``sizes`` entry is an allocation filled with a secret and marked
    evictable; evictions start as ``mode`` starts them (at marking, when the
    reclaimer runs dry, on memcg pressure, on ``start_evictions``).
    """
    f = make(build, path, background=driver != "manual", opts=MODE_OPTS[mode])
    spec = twin(path, driver, MODE_OPTS[mode])
    users = [Evictee(f.dec_ref)] + ([Evictee(spec.dec_ref)] if spec is not None else [])
    try:
        secrets = [
            put_secret(f, spec, pages * PAGE_SIZE, "view", seed) for seed, pages in enumerate(sizes)
        ]
        for index, fr in enumerate(secrets):
            er = EvictableRange(2 * index, 2 * index + 1)  # apart: adjacent ranges merge
            for user in users:
                user.ranges[er] = fr  # before marking: DISABLED evicts at once
            f.mark_evictable(users[0], er)
            if spec is not None:
                spec.mark_evictable(users[1], er)
        evict(f, mode)
        if spec is not None:
            evict(spec, mode)
        assert all(not user.ranges for user in users), "not everything was evicted"
        reclaim(f, spec)
        agree(f, spec)
        assert_all_reused(refill(f, spec, min(fr.start for fr in secrets)), secrets)
        agree(f, spec)
    finally:
        f.destroy()


@pytest.mark.parametrize("driver", ["manual", "thread"])
@pytest.mark.parametrize("mode", list(MODE_OPTS))
@settings(max_examples=examples(6))
@given(path=st.sampled_from(PATHS), sizes=st.lists(PAGE_COUNTS, min_size=1, max_size=4))
def test_evicted_secrets_never_reach_a_new_allocation(
    mode: Mode, driver: Driver, path: Path, sizes: list[int]
) -> None:
    check_evicted_reuse(REAL, path, driver, mode, sizes)


# --- Chunk boundaries ----------------------------------------------------------------------


@st.composite
def boundary_holes(draw: st.DrawFn) -> tuple[int, int, int]:
    """(boundary chunk, pages before it, pages after it); huge holes start huge-page aligned."""
    if draw(st.booleans()):
        before, after = HUGE_PAGES, draw(st.sampled_from([1, 5, HUGE_PAGES]))
    else:
        before, after = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    return draw(st.integers(1, 3)), before, after


def check_boundary_reuse(
    build: Build, path: Path, driver: Driver, hole: tuple[int, int, int], fill: Fill
) -> None:
    """Secrets across a 1 GiB chunk boundary, freed and reclaimed, read zero when reused.

    A sparse 4 GiB file is allocated whole but for a hole across a boundary,
    so each allocation of the hole's length lands exactly there. (Not with
    manual zeroing, which would write the whole 4 GiB: any layout with free
    pages across a boundary has at least 1 GiB allocated. The same zeroing
    across chunks runs when a punch fails.)
    """
    f = make(build, path, background=driver != "manual")
    spec = twin(path, driver)
    try:
        boundary, before, after = hole
        middle = boundary * CHUNK_SIZE
        gap = FileRange(middle - before * PAGE_SIZE, middle + after * PAGE_SIZE)
        whole = f.allocate(4 * CHUNK_SIZE, ANON)
        assert whole == FileRange(0, 4 * CHUNK_SIZE)
        if spec is not None:
            assert spec.allocate(4 * CHUNK_SIZE, ANON) == whole
        free(f, spec, gap)
        reclaim(f, spec)
        fr = put_secret(f, spec, gap.length(), fill, seed=boundary)
        assert fr == gap
        assert f.read(fr) == secret(fr.length(), boundary)
        free(f, spec, fr)
        reclaim(f, spec)
        fresh = allocate_zeroed(f, spec, gap.length())
        assert_all_reused([fresh], [gap])
        agree(f, spec)
    finally:
        f.destroy()


@pytest.mark.parametrize("driver", ["manual", "thread"])
@settings(max_examples=examples(4))
@given(
    path=st.sampled_from([PUNCH, PUNCH_EOPNOTSUPP, PUNCH_EIO]),
    hole=boundary_holes(),
    fill=st.sampled_from(FILLS),
)
def test_secrets_across_a_chunk_boundary_never_reach_a_new_allocation(
    driver: Driver, path: Path, hole: tuple[int, int, int], fill: Fill
) -> None:
    check_boundary_reuse(REAL, path, driver, hole, fill)


# --- allocate_and_fill with short and failing readers --------------------------------------


class ShortReader:
    """Supplies ``data`` at most ``step`` bytes a call, then ends or raises ``error``.

    ``scribble``: a misbehaving reader that first writes a secret over all of
    every buffer it is given, past its count too (and before raising): bytes
    the fill does not keep must never reach another owner.
    """

    def __init__(self, data: bytes, step: int, error: BaseException | None, scribble: bool) -> None:
        self.data, self.step, self.error, self.scribble = data, step, error, scribble
        self.offset = 0

    def readinto(self, buffer: memoryview, /) -> int:
        if self.scribble:
            buffer[:] = secret(len(buffer), 99)
        n = min(len(buffer), self.step, len(self.data) - self.offset)
        if n == 0 and self.error is not None:
            raise self.error
        buffer[:n] = self.data[self.offset : self.offset + n]
        self.offset += n
        return n


@dataclass(frozen=True)
class FillCase:
    pages: int
    supplied: int
    """How many bytes the reader has (at most the length; mostly not whole pages)."""
    step: int
    fails: bool
    scribble: bool

    def reader(self) -> ShortReader:
        error = OSError(errno.EIO, "the reader failed") if self.fails else None
        return ShortReader(secret(self.supplied, 3), self.step, error, self.scribble)


@st.composite
def fill_cases(draw: st.DrawFn) -> FillCase:
    pages = draw(PAGE_COUNTS)
    return FillCase(
        pages,
        draw(st.integers(0, pages * PAGE_SIZE)),
        draw(st.integers(1000, 3 * PAGE_SIZE) | st.just(FILL_BUFFER)),
        draw(st.booleans()),
        draw(st.booleans()),
    )


def check_fill_reuse(build: Build, path: Path, driver: Driver, case: FillCase) -> None:
    """allocate_and_fill keeps exactly the whole pages read; what it gives back reads zero.

    The pages kept hold exactly the reader's bytes; the rest (the partly
    filled page, the pages never reached, whatever a scribbling reader wrote
    there) is freed at once, and once reclaimed reads zero when reused.
    """
    f = make(build, path, background=driver != "manual")
    spec = twin(path, driver)
    try:
        length = case.pages * PAGE_SIZE
        result = f.allocate_and_fill(length, ANON, case.reader())
        start = result.file_range.start
        kept = length if case.supplied == length else case.supplied - case.supplied % PAGE_SIZE
        assert result.file_range == FileRange(start, start + kept)
        if case.supplied == length:
            assert result.error is None
        elif case.fails:
            assert isinstance(result.error, OSError) and result.error.errno == errno.EIO
        else:
            assert isinstance(result.error, EOFError)
        if kept:
            assert f.read(result.file_range) == secret(case.supplied, 3)[:kept]
        if spec is not None:
            expected = spec.allocate_and_fill(length, ANON, case.reader())
            assert expected.file_range == result.file_range
            assert type(expected.error) is type(result.error)
            if kept:
                assert spec.read(result.file_range) == f.read(result.file_range)
        agree(f, spec)
        released = FileRange(start + kept, start + length)
        reclaim(f, spec)
        fresh = refill(f, spec, start)
        if released.length():
            assert_all_reused(fresh, [released])
        agree(f, spec)
    finally:
        f.destroy()


@pytest.mark.parametrize("driver", ["manual", "thread"])
@settings(max_examples=examples(2))
@given(path=st.sampled_from(PATHS), case=fill_cases())
def test_allocate_and_fill_keeps_what_was_read_and_what_it_frees_reads_zero(
    driver: Driver, path: Path, case: FillCase
) -> None:
    check_fill_reuse(REAL, path, driver, case)


# --- The checks find leaks in broken builds ------------------------------------------------


class NoPunch(Reclaimer):
    def decommit(self, start: int, end: int) -> None:
        pass


class SkipPunch(MemoryFile):
    """Broken: the reclaimer neither punches nor zeroes the ranges it reclaims."""

    _reclaimer_class = NoPunch


class NoZeroing(TalliedKernel):
    """Broken: zeroing by hand writes nothing (manual zeroing; the fallback of a failed punch)."""

    def zero(self, address: int, length: int) -> None:
        pass


class LyingPunch(TalliedKernel):
    """Broken: fallocate(PUNCH_HOLE) reports success and punches nothing."""

    def punch_hole(self, fd: int, offset: int, length: int) -> None:
        pass


BROKEN = [
    pytest.param(Build(SkipPunch, TalliedKernel), PUNCH, id="reclaim-skips-the-punch"),
    pytest.param(Build(kernel=NoZeroing), MANUAL_ZEROING, id="manual-zeroing-writes-nothing"),
    pytest.param(Build(kernel=NoZeroing), PUNCH_EIO, id="fallback-zeroing-writes-nothing"),
    pytest.param(Build(kernel=LyingPunch), PUNCH, id="punch-does-nothing"),
]

A_PLAN = ReusePlan(
    [Allocation(3, "view", (0, 3)), Allocation(HUGE_PAGES, "fill", (0, HUGE_PAGES))], [2]
)


@pytest.mark.parametrize("driver", ["manual", "thread", "race"])
@pytest.mark.parametrize(("build", "path"), BROKEN)
def test_the_reuse_check_finds_the_leak_of_a_broken_build(
    build: Build, path: Path, driver: Driver
) -> None:
    with pytest.raises(AssertionError, match="leak"):
        check_reuse(build, path, driver, A_PLAN)


@pytest.mark.parametrize(
    ("build", "path"),
    [
        pytest.param(Build(kernel=LyingPunch), PUNCH, id="punch-does-nothing"),
        pytest.param(Build(kernel=NoZeroing), MANUAL_ZEROING, id="manual-zeroing-writes-nothing"),
    ],
)
def test_the_decommit_check_finds_the_leak_of_a_broken_build(build: Build, path: Path) -> None:
    with pytest.raises(AssertionError, match="leak"):
        check_decommit(build, path, "manual", 4, (1, 3), "view")


Check = Callable[[Build, Path, Driver], None]

OTHER_CHECKS: dict[str, Check] = {
    "eviction": lambda build, path, driver: check_evicted_reuse(
        build, path, driver, "manual", [2, 3]
    ),
    "boundary": lambda build, path, driver: check_boundary_reuse(
        build, path, driver, (1, 2, 3), "fill"
    ),
    "fill": lambda build, path, driver: check_fill_reuse(
        build, path, driver, FillCase(4, 2 * PAGE_SIZE + 100, 1000, True, True)
    ),
}


@pytest.mark.parametrize("driver", ["manual", "thread"])
@pytest.mark.parametrize(
    ("check", "build", "path"),
    [
        pytest.param(check, *broken.values, id=f"{name}-{broken.id}")
        for name, check in OTHER_CHECKS.items()
        for broken in BROKEN
        if not (name == "boundary" and broken.values[1] is MANUAL_ZEROING)
    ],
)
def test_the_other_checks_find_the_leak_of_a_broken_build(
    check: Check, build: Build, path: Path, driver: Driver
) -> None:
    with pytest.raises(AssertionError, match="leak"):
        check(build, path, driver)

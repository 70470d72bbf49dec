"""Lifecycle: ``destroy`` while threads allocate, fill, free and evict.

Worker threads allocate, fill (through views, ``write`` and
``allocate_and_fill``), check, share, decommit, free and hand ranges to an
evictable tenant whose ``evict`` is slow and calls back into the file, while
the reclaimer, the eviction threads and (with memcg pressure) the pressure
watcher run; then ``destroy`` is called, at a varied moment, sometimes from
two threads at once (with memcg pressure the workers also fire the file's
pressure source, an eventfd: no memory cgroup is needed). Afterwards nothing
crashed (the workers saw only ``UseAfterDestroy`` from the allocator, and
only once destroy had begun; no thread of the file raised or logged an
error, whatever level a test module set the "impl" loggers to), every thread
the file started has ended and every worker stops, the memfd is closed,
every chunk mapping is gone once the last view is released (a view held over
destroy keeps exactly its chunk until then), later calls raise
``UseAfterDestroy``, and a second ``destroy`` is harmless.

The last sections show the check fails for builds that break one of these,
and pin down the interleaving where ``destroy`` runs between a method's
liveness check and its use of the mappings.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impl import Kernel, MemoryAccounting, MemoryFile
from impl.chunks import Slices
from impl.eviction import Evictor
from impl.kernel import ChunkMapping
from spec.errors import UseAfterDestroy
from spec.vocabulary import (
    CHUNK_SIZE,
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
from tests.impl.leaks import (
    MODE_OPTS,
    Build,
    ManualSource,
    Mode,
    examples,
    fds_of,
    identity,
    maps_of,
    pgalloc_threads,
    secret,
    wants_pressure,
)

ANON = MemoryKind.ANONYMOUS
KINDS = [MemoryKind.ANONYMOUS, MemoryKind.PAGE_CACHE, MemoryKind.TMPFS]


def impl_loggers() -> list[logging.Logger]:
    """The "impl" logger and every logger below it that exists so far."""
    names = [name for name in logging.Logger.manager.loggerDict if name.startswith("impl.")]
    return [logging.getLogger("impl"), *map(logging.getLogger, sorted(names))]


@contextmanager
def recording_failures(failures: list[str]) -> Iterator[None]:
    """Record what any thread raises unhandled, and every error the allocator logs.

    For its duration the "impl" loggers let ERROR through whatever level a
    test module set them to (test_faults raises "impl" to CRITICAL at import);
    their levels are restored after.
    """

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            failures.append(f"logged: {record.getMessage()}")

    def hook(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "?"
        failures.append(f"thread {name} raised {args.exc_value!r}")

    logger = logging.getLogger("impl")
    loggers = impl_loggers()
    saved = [(each, each.level, each.disabled, each.propagate) for each in loggers]
    disabled_below = logging.root.manager.disable
    recorder = Recorder(logging.ERROR)
    previous_hook = threading.excepthook
    for each in loggers:
        if each.getEffectiveLevel() > logging.ERROR:
            each.setLevel(logging.ERROR)
        each.disabled = False
        if each is not logger:
            each.propagate = True  # up to the recorder on "impl"
    if disabled_below >= logging.ERROR:
        logging.disable(logging.ERROR - 1)
    logger.addHandler(recorder)
    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous_hook
        logger.removeHandler(recorder)
        logging.disable(disabled_below)
        for each, level, disabled, propagate in saved:
            each.setLevel(level)
            each.disabled = disabled
            each.propagate = propagate


# --- The workload --------------------------------------------------------------------------


class Run:
    """What the threads of one run share: the file, what went wrong, when destroy began."""

    def __init__(self, f: MemoryFile, pressure: ManualSource | None, failures: list[str]) -> None:
        self.f = f
        self.pressure = pressure
        """The file's pressure source, which the workers fire (memcg pressure only)."""
        self.failures = failures
        self.destroying = threading.Event()
        """Set just before the first destroy call: UseAfterDestroy is legitimate only after."""

    def destroyed(self, who: str) -> None:
        """``who`` caught UseAfterDestroy: a failure unless destroy had begun."""
        if not self.destroying.is_set():
            self.failures.append(f"{who}: UseAfterDestroy before destroy began")


class Tenant:
    """An evictable user: ``evict`` waits ``delay`` s, then gives its range back (dec_ref)."""

    def __init__(self, run: Run, delay: float) -> None:
        self.run = run
        self.f = run.f
        self.delay = delay
        self.failures = run.failures
        self.ranges: dict[EvictableRange, FileRange] = {}
        self.lock = threading.Lock()
        self.next = 0
        self.given_back = 0

    def take(self, fr: FileRange) -> None:
        """Hand ``fr`` over: it is the tenant's to give back when evicted."""
        with self.lock:
            er = EvictableRange(2 * self.next, 2 * self.next + 1)  # apart: adjacent ranges merge
            self.next += 1
            self.ranges[er] = fr
        self.f.mark_evictable(self, er)

    def evict(self, er: EvictableRange) -> None:
        time.sleep(self.delay)
        with self.lock:
            fr = self.ranges.pop(er, None)
        try:
            if fr is not None:
                self.f.dec_ref(fr)
                with self.lock:
                    self.given_back += 1
        except UseAfterDestroy:
            self.run.destroyed(f"evict {er}")  # the file went meanwhile: nothing to give back
        except Exception as error:
            self.failures.append(f"evict {er}: {error!r}")


def work(run: Run, seed: int, tenant: Tenant, rounds: list[int]) -> None:
    """Use the file as a client would, until it is destroyed (UseAfterDestroy).

    Appends to ``rounds`` how many allocations it made and let go of.
    """
    f, failures = run.f, run.failures
    rng = random.Random(seed)
    done = 0
    try:
        while True:
            length = rng.randint(1, 8) * PAGE_SIZE
            data = secret(length, seed + rng.randrange(255))
            kind = rng.choice(KINDS)
            how = rng.randrange(3)
            if how == 0:
                fr = f.allocate_and_fill(length, kind, BytesReader(data)).file_range
            else:
                fr = f.allocate(length, kind)
                views = f.map_internal(fr, WRITE)
                if how == 1:
                    position = 0
                    for view in views:
                        view[:] = data[position : position + len(view)]
                        position += len(view)
                for view in views:
                    view.release()
                if how == 2:
                    f.write(fr.start, data)
            if f.read(fr) != data:
                failures.append(f"worker {seed}: {fr} lost its data")
            share(run, fr, rng, tenant)
            done += 1
    except UseAfterDestroy:
        run.destroyed(f"worker {seed}")
    except Exception as error:
        failures.append(f"worker {seed}: {error!r}")
    rounds.append(done)


def share(run: Run, fr: FileRange, rng: random.Random, tenant: Tenant) -> None:
    """Let go of ``fr`` one way or another, with some background work on the side."""
    f = run.f
    choice = rng.randrange(6)
    if choice == 0:
        tenant.take(fr)
        return
    if choice == 1:
        f.inc_ref(fr)
        f.dec_ref(fr)
    elif choice == 2:
        f.decommit(FileRange(fr.start, fr.start + PAGE_SIZE))
    elif choice == 3:
        f.update_usage()
        f.total_usage()
    elif choice == 4:
        f.start_evictions()
        f.memcg_pressure()
        if run.pressure is not None:
            run.pressure.fire()  # and through the pressure watcher's thread
    else:
        f.reclaim()
        f.committed_ranges()
    f.dec_ref(fr)


# --- What destroy guarantees ---------------------------------------------------------------


def check_destroyed(
    f: MemoryFile, file: tuple[int, int], fd: int, before: set[threading.Thread]
) -> None:
    """Once destroy has returned: no thread of the file runs, its fd is closed, calls fail.

    ``file`` is the memfd's identity and ``fd`` the file's descriptor for it;
    ``before``, the pgalloc threads alive before the file was made. Ends with
    a second destroy, which must change nothing.
    """
    file_threads = [t for t in (f._reclaimer_thread,) if t is not None]
    if f._watcher is not None:
        file_threads.append(f._watcher._thread)
    assert not any(t.is_alive() for t in file_threads), "the reclaimer or watcher outlived destroy"
    assert not f._state.evictors and f._state.evictors_running == 0, (
        "eviction threads outlived destroy"
    )
    left = {t.name for t in pgalloc_threads() - before}
    assert not left, f"threads outlived destroy: {sorted(left)}"
    assert fd not in fds_of(file), "the memfd is still open"
    calls: list[Callable[[], object]] = [
        lambda: f.allocate(PAGE_SIZE, ANON),
        lambda: f.map_internal(FileRange(0, PAGE_SIZE), READ),
        lambda: f.dec_ref(FileRange(0, PAGE_SIZE)),
        f.update_usage,
        f.fd,
    ]
    for call in calls:
        try:
            call()
        except UseAfterDestroy:
            continue
        raise AssertionError(f"{call} after destroy did not raise UseAfterDestroy")
    f.destroy()
    assert not pgalloc_threads() - before, "a second destroy started a thread"


def check_unmapped(file: tuple[int, int], held: memoryview | None) -> None:
    """Every mapping of ``file`` goes with the last view: a held one keeps just its chunk."""
    gc.collect()  # views the workers' tracebacks pinned in cycles
    if held is not None:
        assert len(maps_of(file)) == 1, "a held view kept more than its chunk mapped"
        held[0] = held[0]  # still valid memory: never a dangling pointer
        held.release()
    assert maps_of(file) == [], "chunk mappings outlived destroy and every view"
    assert fds_of(file) == [], "descriptors of the memfd outlived destroy"


# --- Destroy mid-flight --------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    mode: Mode
    manual_zeroing: bool
    workers: int
    evict_delay_us: int
    destroy_after_us: int
    twice_at_once: bool
    """A second thread calls destroy at the same moment."""
    hold_view: bool
    """The test holds a view over destroy."""
    seed: int


SCENARIOS = st.builds(
    Scenario,
    st.sampled_from(list(MODE_OPTS)),
    st.booleans(),
    st.integers(2, 4),
    st.integers(0, 2000),
    st.integers(0, 20_000),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**16),
)


class Patient(MemoryFile):
    """A broken build whose defect shows before destroy: destroy_mid_flight begins
    destroying it only once a failure has been recorded (or 10 s have passed)."""


def wait_for(condition: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def destroy_mid_flight(build: Build, scenario: Scenario) -> None:
    """Run ``scenario``'s workload, destroy the file mid-flight, check what destroy promises."""
    before = pgalloc_threads()
    failures: list[str] = []
    rounds: list[int] = []
    with recording_failures(failures):
        opts = replace(MODE_OPTS[scenario.mode], manual_zeroing=scenario.manual_zeroing)
        pressure = ManualSource() if wants_pressure(opts) else None
        f = build.make(opts, pressure=pressure)
        run = Run(f, pressure, failures)
        fd, file = f.fd(), identity(f.fd())
        held = None
        if scenario.hold_view:
            fr = f.allocate(PAGE_SIZE, ANON)
            (held,) = f.map_internal(fr, WRITE)
        tenant = Tenant(run, scenario.evict_delay_us / 1e6)
        workers = [
            threading.Thread(
                target=work, args=(run, scenario.seed + n, tenant, rounds), name=f"worker-{n}"
            )
            for n in range(scenario.workers)
        ]
        for worker in workers:
            worker.start()
        time.sleep(scenario.destroy_after_us / 1e6)
        if isinstance(f, Patient):
            wait_for(lambda: failures, 10)
        second = threading.Thread(target=f.destroy, name="second-destroy")
        run.destroying.set()
        if scenario.twice_at_once:
            second.start()
        f.destroy()
        if scenario.twice_at_once:
            second.join()
        try:
            check_destroyed(f, file, fd, before)
        finally:
            for worker in workers:
                worker.join(10)
        assert not any(w.is_alive() for w in workers), "a worker did not stop"
        if pressure is not None:
            pressure.close()  # no worker fires any more
        check_unmapped(file, held)
    assert failures == [], f"failures: {failures}"
    FIGURES["destroys mid-flight"] += 1
    FIGURES["client rounds before destroy"] += sum(rounds)
    FIGURES["evictions given back"] += tenant.given_back


@settings(max_examples=examples(2))
@given(scenario=SCENARIOS)
def test_destroy_mid_flight_ends_every_thread_and_leaves_nothing_behind(scenario: Scenario) -> None:
    destroy_mid_flight(Build(), scenario)


# --- The check fails for broken builds -----------------------------------------------------


class Blocker:
    """An evictable user whose evict blocks until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def evict(self, er: EvictableRange) -> None:
        self.entered.set()
        self.release.wait(10)


class NoJoinEvictors(MemoryFile):
    """Broken: destroy forgets the eviction threads instead of joining them."""

    def destroy(self) -> None:
        with self._state.mu:
            self._state.evictors = set()
        super().destroy()


class KeepFd(Kernel):
    """Broken: closing the memfd does nothing."""

    def close(self, fd: int) -> None:
        pass


class KeepMappings(Kernel):
    """Broken: unmapping a chunk keeps it mapped (it is kept here)."""

    def __init__(self, faults: HostFaults = HostFaults()) -> None:
        super().__init__(faults)
        self.kept: list[ChunkMapping] = []

    def unmap_chunk(self, mapping: ChunkMapping) -> bool:
        self.kept.append(mapping)
        return True


def test_the_check_finds_eviction_threads_that_outlive_destroy() -> None:
    before = pgalloc_threads()
    f = Build(NoJoinEvictors).make(MODE_OPTS["disabled"])
    user = Blocker()
    f.mark_evictable(user, EvictableRange(0, 1))  # DISABLED: an eviction thread starts
    assert user.entered.wait(10)
    fd = f.fd()
    file = identity(fd)
    f.destroy()
    try:
        with pytest.raises(AssertionError, match="outlived destroy"):
            check_destroyed(f, file, fd, before)
    finally:
        user.release.set()
    f.wait_for_evictions()


def test_the_check_finds_a_memfd_left_open() -> None:
    before = pgalloc_threads()
    f = Build(kernel=KeepFd).make(MemoryFileOpts())
    fd = f.fd()
    file = identity(fd)
    f.destroy()
    try:
        with pytest.raises(AssertionError, match="still open"):
            check_destroyed(f, file, fd, before)
    finally:
        os.close(fd)


def test_the_check_finds_chunks_left_mapped() -> None:
    f = Build(kernel=KeepMappings).make(MemoryFileOpts())
    file = identity(f.fd())
    fr = f.allocate(CHUNK_SIZE + PAGE_SIZE, ANON)  # two chunks
    for view in f.map_internal(fr, WRITE):
        view.release()
    kernel = f._state.kernel
    assert isinstance(kernel, KeepMappings)
    f.destroy()
    with pytest.raises(AssertionError, match="outlived destroy"):
        check_unmapped(file, None)
    for mapping in kernel.kept:
        assert Kernel().unmap_chunk(mapping)
    check_unmapped(file, None)


class SpuriousUseAfterDestroy(Patient):
    """Broken: ``allocate`` raises UseAfterDestroy on its third call, the file still live."""

    calls = 0

    def allocate(self, length: int, kind: MemoryKind) -> FileRange:
        with self._state.mu:
            self.calls += 1
            spurious = self.calls == 3
        if spurious:
            raise UseAfterDestroy("spurious")
        return super().allocate(length, kind)


class FailingDelivery(Evictor):
    def evict_deliver(self, user: Hashable, er: EvictableRange) -> None:
        raise RuntimeError("broken evict")


class FailingEviction(Patient):
    """Broken: delivering a range to its user raises (an ``evict`` that raises does the same).

    The eviction thread logs "evicting ... failed" at ERROR.
    """

    _evictor_class = FailingDelivery


QUICK = Scenario(
    mode="disabled",  # marking a range evictable starts its eviction at once
    manual_zeroing=False,
    workers=2,
    evict_delay_us=0,
    destroy_after_us=0,
    twice_at_once=False,
    hold_view=False,
    seed=1,
)


def test_the_check_finds_a_use_after_destroy_before_destroy() -> None:
    with pytest.raises(AssertionError, match=r"worker \d: UseAfterDestroy before destroy began"):
        destroy_mid_flight(Build(SpuriousUseAfterDestroy), QUICK)


@pytest.mark.parametrize("raised", ["impl", "impl.eviction"])
def test_the_check_finds_an_eviction_error_logged_while_impl_logs_only_critical(
    raised: str,
) -> None:
    """The eviction thread's error is recorded even if a module raised the loggers' level."""
    logger = logging.getLogger(raised)
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # as tests/impl/test_faults.py does at import
    try:
        with pytest.raises(AssertionError, match=r"logged: evicting .* failed"):
            destroy_mid_flight(Build(FailingEviction), QUICK)
        assert logger.level == logging.CRITICAL, "recording_failures did not restore the level"
    finally:
        logger.setLevel(level)


# --- Destroy between a method's liveness check and its use of the mappings -----------------


class LateCheck(MemoryFile):
    """Its next liveness check passes once ``late`` is set: as when destroy runs just
    after a method checked that the file is live, before it mapped a chunk."""

    late = False

    def _require_live(self) -> None:
        if self.late:
            self.late = False
            return
        super()._require_live()


def test_destroy_after_the_liveness_check_never_maps_the_closed_fd() -> None:
    f = LateCheck(background=False, accounting=MemoryAccounting())
    fr = f.allocate(CHUNK_SIZE + PAGE_SIZE, ANON)  # two chunks
    first = FileRange(fr.start, fr.start + PAGE_SIZE)  # chunk 0, mapped before destroy
    last = FileRange(fr.end - PAGE_SIZE, fr.end)  # chunk 1, never mapped
    for view in f.map_internal(first, WRITE):
        view.release()
    fd = f.fd()
    f.destroy()
    calls: list[Callable[[], object]] = [
        lambda: f.map_internal(first, WRITE),
        lambda: f.read(first),
        lambda: f.write(first.start, b"x"),
        lambda: f.map_internal(last, WRITE),
    ]
    for call in calls:
        f.late = True
        with pytest.raises(UseAfterDestroy):
            call()
    # The fd number now names another file: mapping it would hand out that file's memory.
    other = os.memfd_create("other")  # (often given that very number)
    try:
        os.ftruncate(other, fr.end)
        if other != fd:
            os.dup2(other, fd)
        f.late = True
        with pytest.raises(UseAfterDestroy):
            f.map_internal(last, WRITE)
        assert maps_of(identity(fd)) == []
    finally:
        os.close(fd)
        if other != fd:
            os.close(other)


class DestroyedWhileSlicing(MemoryFile):
    """Once ``armed``, destroyed between finding the chunk mappings of a range and
    slicing views of them."""

    armed = False

    def _views(self, slices: Slices) -> list[memoryview]:
        if self.armed:
            self.destroy()
        return super()._views(slices)


@pytest.mark.parametrize(
    "use",
    [
        lambda f, fr: f.map_internal(fr, READ),
        lambda f, fr: f.read(fr),
        lambda f, fr: f.write(fr.start, b"x"),
    ],
    ids=["map_internal", "read", "write"],
)
def test_destroy_after_finding_the_mappings_is_use_after_destroy(
    use: Callable[[MemoryFile, FileRange], object],
) -> None:
    f = DestroyedWhileSlicing(background=False, accounting=MemoryAccounting())
    fr = f.allocate(PAGE_SIZE, ANON)
    for view in f.map_internal(fr, WRITE):
        view.release()
    f.armed = True
    with pytest.raises(UseAfterDestroy):
        use(f, fr)

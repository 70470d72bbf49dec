"""Stateful differential machines: the specification and the real allocator, side by side.

:class:`DifferentialMachine` is a hypothesis ``RuleBasedStateMachine`` that
makes every call on a ``SpecMemoryFile`` and on an ``impl.MemoryFile``
(``background=False``: the test decides when the reclaimer and the eviction
goroutines run, as ShardStore's models make background work part of the
operation alphabet). After every step it compares the two results (or
exceptions), then the observations, the file sizes and ``total_usage``, and
checks the specification's invariants. The specification's ``update_usage``
is fed what the real kernel says is committed, and the machine checks that
the specification's host model said the same. A rule sets or clears failing
kernel calls (``HostFaults``) on both sides at once, so every other rule also
runs under faults, and both must raise the same errno and stay in agreement.

References the client holds live in a bundle, so sequences stay meaningful
(a reference is only dropped once). A failure prints hypothesis's minimal
reproducing program.

:func:`run_for` fuzzes the machine for a time budget with randomized
settings; the tests run it under the selected profile.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import time
from collections.abc import Callable
from typing import ClassVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from impl import MemoryFile
from impl.accounting import MemoryAccounting
from impl.kernel import Kernel
from models.check import Check, CheckResult, Progress
from models.mismatch import expect
from models.profiles import fuzzing_settings
from spec.errors import ContractViolation
from spec.invariants import check_fresh_allocation, check_invariants
from spec.memory_file import SpecMemoryFile
from spec.rangemap import range_set
from spec.vocabulary import (
    CHUNK_SIZE,
    HUGE_PAGE_SIZE,
    NO_FAULTS,
    PAGE_SIZE,
    READ,
    READ_WRITE,
    AccessType,
    BytesReader,
    DelayedEviction,
    EvictableRange,
    FileRange,
    HostFaults,
    MemoryFileOpts,
    MemoryKind,
)

P = PAGE_SIZE


@dataclasses.dataclass(frozen=True)
class User:
    """An evictable memory user, the same object for both sides; it remembers nothing."""

    name: str

    def evict(self, er: EvictableRange) -> None:
        """The machine compares what both sides deliver; the user itself does nothing."""

    def __str__(self) -> str:
        return self.name


USERS = (User("user-a"), User("user-b"))

ImplFactory = Callable[[MemoryFileOpts, MemoryAccounting, Callable[[], int], Kernel], MemoryFile]


def real_memory_file(
    opts: MemoryFileOpts, accounting: MemoryAccounting, clock: Callable[[], int], kernel: Kernel
) -> MemoryFile:
    return MemoryFile(opts, accounting=accounting, background=False, clock=clock, kernel=kernel)


def _outcome(call: Callable[[], object]) -> tuple[str, object]:
    """What a call did: ("ok", result), or the exception's class and errno."""
    try:
        return "ok", call()
    except ContractViolation as error:
        return type(error).__name__, None
    except OSError as error:
        return "OSError", error.errno


small_lengths = st.integers(1, 8).map(lambda n: n * P)
huge_lengths = st.sampled_from([HUGE_PAGE_SIZE, HUGE_PAGE_SIZE + P, 3 * HUGE_PAGE_SIZE])
chunk_crossing_lengths = st.sampled_from([CHUNK_SIZE - HUGE_PAGE_SIZE, CHUNK_SIZE + P])
kinds = st.sampled_from(list(MemoryKind))
evictable_ranges = st.tuples(st.integers(0, 40), st.integers(0, 8)).map(
    lambda t: EvictableRange(t[0], t[0] + t[1])
)


class DifferentialMachine(RuleBasedStateMachine):
    """Spec and impl driven with the same calls; every result and observation compared."""

    make_impl: ClassVar[ImplFactory] = staticmethod(real_memory_file)
    """How the implementation is built: tests substitute deliberately broken ones."""
    examples: ClassVar[int] = 0
    """How many machines have run, across all instances (for reports)."""

    references = Bundle("references")

    def __init__(self) -> None:
        super().__init__()
        type(self).examples += 1
        self.now = 0
        self.spec = SpecMemoryFile()
        self.impl: MemoryFile | None = None
        self.kernel = Kernel()
        self.manual_zeroing = False
        self.crossed_chunks = False
        """A chunk-crossing range was allocated: punching must not fail from then on."""

    @initialize(
        mode=st.sampled_from(list(DelayedEviction)),
        memcg=st.booleans(),
        manual_zeroing=st.booleans(),
        punch_fails=st.booleans(),
    )
    def create(
        self, mode: DelayedEviction, memcg: bool, manual_zeroing: bool, punch_fails: bool
    ) -> None:
        opts = MemoryFileOpts(mode, memcg, manual_zeroing)
        faults = HostFaults(punch=errno.EOPNOTSUPP if punch_fails else None)
        self.manual_zeroing = manual_zeroing
        self.spec = SpecMemoryFile(opts, faults=faults)
        self.kernel = Kernel(faults)
        self.impl = type(self).make_impl(opts, MemoryAccounting(), lambda: self.now, self.kernel)

    @property
    def zeroes_by_hand(self) -> bool:
        """Freed memory is zeroed by writing (manual zeroing, or punching fails)."""
        return self.manual_zeroing or self.spec.faults.punch is not None

    @property
    def real(self) -> MemoryFile:
        assert self.impl is not None, "create runs first"
        return self.impl

    def both(self, call: Callable[[SpecMemoryFile | MemoryFile], object]) -> object:
        """Make the same call on both sides; they must do the same; the spec's result."""
        expected = _outcome(lambda: call(self.spec))
        found = _outcome(lambda: call(self.real))
        expect("outcome", expected, found)
        return expected[1]

    # --- Allocation ----------------------------------------------------------------------

    def _allocate(self, length: int, kind: MemoryKind) -> object:
        fr = self.both(lambda f: f.allocate(length, kind))
        if not isinstance(fr, FileRange):
            return multiple()
        check_fresh_allocation(self.spec.state, fr)
        return fr

    @rule(target=references, length=small_lengths, kind=kinds)
    def allocate(self, length: int, kind: MemoryKind) -> object:
        return self._allocate(length, kind)

    @rule(target=references, length=huge_lengths, kind=kinds)
    def allocate_huge(self, length: int, kind: MemoryKind) -> object:
        return self._allocate(length, kind)

    @precondition(lambda self: not self.zeroes_by_hand)  # would zero a GiB
    @rule(target=references, length=chunk_crossing_lengths)
    def allocate_across_chunks(self, length: int) -> object:
        self.crossed_chunks = True
        return self._allocate(length, MemoryKind.ANONYMOUS)

    # --- Faults -------------------------------------------------------------------------------

    @rule(
        truncate=st.sampled_from([None, None, errno.ENOSPC]),
        map_=st.sampled_from([None, None, errno.ENOMEM]),
        punch=st.sampled_from([None, None, errno.EIO, errno.EOPNOTSUPP]),
        mincore=st.sampled_from([None, None, errno.EINVAL]),
    )
    def inject_faults(
        self, truncate: int | None, map_: int | None, punch: int | None, mincore: int | None
    ) -> None:
        """From now on these kernel calls fail (None: work), on both sides."""
        if self.crossed_chunks:
            punch = None  # the reclaimer would zero a GiB by hand
        faults = HostFaults(truncate=truncate, map=map_, punch=punch, mincore=mincore)
        self.spec.faults = faults
        self.kernel.faults = faults

    @rule(
        target=references, length=small_lengths, filled=st.integers(0, 9 * P), fails=st.booleans()
    )
    def allocate_and_fill(self, length: int, filled: int, fails: bool) -> object:
        data = bytes(i % 251 + 1 for i in range(filled))

        def fill(f: SpecMemoryFile | MemoryFile) -> tuple[FileRange, str | None]:
            error = OSError(errno.EIO, "injected") if fails else None
            result = f.allocate_and_fill(length, MemoryKind.PAGE_CACHE, BytesReader(data, error))
            return result.file_range, type(result.error).__name__ if result.error else None

        outcome = self.both(fill)
        if not isinstance(outcome, tuple):  # an injected fault: both raised alike
            return multiple()
        fr = outcome[0]
        return fr if fr.length() else multiple()

    # --- References and decommit -------------------------------------------------------------

    @rule(target=references, fr=references)
    def inc_ref(self, fr: FileRange) -> FileRange:
        self.both(lambda f: f.inc_ref(fr))
        return fr  # one more reference (the one drawn stays held)

    @rule(fr=consumes(references))
    def dec_ref(self, fr: FileRange) -> None:
        self.both(lambda f: f.dec_ref(fr))

    @rule(fr=references, first=st.integers(0, 7), pages=st.integers(1, 8))
    def decommit(self, fr: FileRange, first: int, pages: int) -> None:
        start = fr.start + (first * P) % fr.length()
        part = FileRange(start, min(fr.end, start + pages * P))
        self.both(lambda f: f.decommit(part))

    # --- Access through mappings ----------------------------------------------------------------

    @rule(fr=references, where=st.integers(0, 2**30), data=st.binary(min_size=1, max_size=64))
    def write_and_read_back(self, fr: FileRange, where: int, data: bytes) -> None:
        offset = fr.start + where % fr.length()
        data = data[: fr.end - offset]
        span = FileRange(offset, offset + len(data))
        if self.both(lambda f: f.map_internal(span, READ_WRITE) and None) is not None:
            return  # an injected fault: both raised the same errno
        self.both(lambda f: f.write(offset, data))
        assert self.both(lambda f: f.read(span)) == data

    @rule(fr=references, where=st.integers(0, 2**30), size=st.integers(1, 3 * P))
    def read(self, fr: FileRange, where: int, size: int) -> None:
        offset = fr.start + where % fr.length()
        span = FileRange(offset, min(fr.end, offset + size))
        self.both(lambda f: f.map_internal(span, READ) and None)
        self.both(lambda f: f.read(span))

    @rule(fr=references)
    def map_for_execution_is_refused(self, fr: FileRange) -> None:
        self.both(lambda f: f.map_internal(fr, AccessType(execute=True)))

    # --- Usage ---------------------------------------------------------------------------------

    @rule(elapsed=st.sampled_from([0, 5_000_000, 20_000_000, 2_000_000_000]))
    def update_usage(self, elapsed: int) -> None:
        self.now += elapsed
        faults, self.kernel.faults = self.kernel.faults, NO_FAULTS  # the question maps chunks
        try:
            kernel_says = range_set(self.real.committed_ranges())
        finally:
            self.kernel.faults = faults
        expect("committed pages", self.spec.state.host.committed, kernel_says)
        expected = _outcome(lambda: self.spec.update_usage(self.now, committed=kernel_says))
        found = _outcome(self.real.update_usage)
        expect("outcome", expected, found)

    # --- Background work ----------------------------------------------------------------------

    @rule()
    def reclaim(self) -> None:
        self.both(lambda f: f.reclaim())

    @rule()
    def run_evictions(self) -> None:
        self.both(lambda f: f.run_evictions())

    @rule()
    def memcg_pressure(self) -> None:
        self.both(lambda f: f.memcg_pressure())

    # --- Evictable memory ---------------------------------------------------------------------

    @rule(user=st.sampled_from(USERS), er=evictable_ranges)
    def mark_evictable(self, user: User, er: EvictableRange) -> None:
        self.both(lambda f: f.mark_evictable(user, er))

    @rule(user=st.sampled_from(USERS), er=evictable_ranges)
    def mark_unevictable(self, user: User, er: EvictableRange) -> None:
        self.both(lambda f: f.mark_unevictable(user, er))

    @rule(user=st.sampled_from(USERS))
    def mark_all_unevictable(self, user: User) -> None:
        self.both(lambda f: f.mark_all_unevictable(user))

    @rule()
    def start_evictions(self) -> None:
        self.both(lambda f: f.start_evictions())

    @rule()
    def should_cache_evictable(self) -> None:
        self.both(lambda f: f.should_cache_evictable())

    # --- Bad input ----------------------------------------------------------------------------

    @rule(
        call=st.sampled_from(
            [
                lambda f: f.allocate(0, MemoryKind.ANONYMOUS),
                lambda f: f.allocate(P + 1, MemoryKind.ANONYMOUS),
                lambda f: f.allocate(P, 3),
                lambda f: f.inc_ref(FileRange(0, P)),
                lambda f: f.dec_ref(FileRange(0, P)),
                lambda f: f.decommit(FileRange(0, P)),
                lambda f: f.dec_ref(FileRange(P, 0)),
                lambda f: f.inc_ref(FileRange(P, P + 1)),
                lambda f: f.map_internal(FileRange(0, 0), READ),
                lambda f: f.map_internal(FileRange(0, 1 << 62), READ),
                lambda f: f.mark_evictable(USERS[0], EvictableRange(5, 1)),
                lambda f: f.allocate_and_fill(P - 1, MemoryKind.ANONYMOUS, BytesReader(b"")),
            ]
        )
    )
    def bad_input_is_rejected_alike(
        self, call: Callable[[SpecMemoryFile | MemoryFile], object]
    ) -> None:
        self.both(call)

    @rule(fr=references)
    def references_on_freed_pages_are_rejected_alike(self, fr: FileRange) -> None:
        # The pages just above a live range are free, or another allocation's.
        above = FileRange(fr.end, fr.end + P)
        if any(info.refs for _, info in self.spec.state.usage.within(above)):
            return
        self.both(lambda f: f.dec_ref(above))
        self.both(lambda f: f.inc_ref(above))

    # --- What must agree after every step -------------------------------------------------------

    @invariant()
    def observations_agree(self) -> None:
        if self.impl is None:
            return
        expected = self.spec.observation()
        found = self.impl.observation()
        for field in dataclasses.fields(expected):
            expect(field.name, getattr(expected, field.name), getattr(found, field.name))
        expect("total_usage", self.spec.total_usage(), self.impl.total_usage())
        expect("total_size", self.spec.total_size(), self.impl.total_size())

    @invariant()
    def spec_invariants_hold(self) -> None:
        check_invariants(self.spec.state)

    def teardown(self) -> None:
        if self.impl is not None:
            self.spec.faults = self.kernel.faults = NO_FAULTS
            self.spec.destroy()
            self.impl.destroy()


def run_machine(machine: type[RuleBasedStateMachine], how: settings) -> None:
    """Run ``machine`` as a test (hypothesis leaves this function unannotated)."""
    run_state_machine_as_test(machine, settings=how)  # type: ignore[no-untyped-call]


def run_for(
    budget: float, progress: Progress, machine: type[DifferentialMachine] = DifferentialMachine
) -> CheckResult:
    """Fuzz ``machine`` with randomized settings for about ``budget`` seconds.

    Shards need no seed of their own: each runs in its own spawned process, whose
    hypothesis draws from fresh entropy; a failure is reported with hypothesis's
    reproducing program.
    """
    started = time.monotonic()
    before = machine.examples
    # Injected punch failures make the reclaimer log a warning each time, as the seed does.
    impl_log = logging.getLogger("impl")
    level = impl_log.level
    impl_log.setLevel(logging.ERROR)
    try:
        while True:
            try:
                run_machine(machine, fuzzing_settings(max_examples=25))
            except Exception as failure:  # reported, with hypothesis's reproducing program
                notes = "\n".join(getattr(failure, "__notes__", []))
                return CheckResult(
                    "stateful",
                    False,
                    machine.examples - before,
                    "examples",
                    time.monotonic() - started,
                    f"{type(failure).__name__}: {failure}\n{notes}",
                )
            examples = machine.examples - before
            elapsed = time.monotonic() - started
            progress(f"stateful: {examples} machines ({examples / elapsed:.1f}/s)")
            if elapsed >= budget:
                return CheckResult("stateful", True, examples, "examples", elapsed)
    finally:
        impl_log.setLevel(level)


CHECKS = [
    Check(
        "stateful",
        "spec and impl driven with the same random calls agree on every result and observation",
        run_for,
        lambda budget, progress, _: run_for(budget, progress),
    )
]

"""One controlled run: a real ``MemoryFile``, its clients and threads, one schedule, every check.

:func:`run_once` builds a file whose runtime is a :class:`ControlledRuntime`
(its memfd, punches and ``mincore`` are the kernel's), starts a client thread
per script of the :class:`Program`, and lets the strategy pick who runs at
every point. It checks, in this order:

1. at every point where the file's lock is free, the invariants of
   :mod:`models.schedule.properties` on impl's observation (a violation is
   reported once, at the first point it shows);
2. no deadlock, no thread dying of an exception, no hang outside the
   scheduler's control (``hang_after``);
3. zero on reuse and every byte read back (the clients);
4. at quiescence, references equal holdings, and the history (every call and
   background step) is linearizable against the spec, ending in the file's
   state (:mod:`models.linearizability`);
5. at rest, once all is given back: nothing in use, the accounting exact.

The :class:`Outcome` holds the schedule (the choices) and every decision,
so the run can be replayed exactly (:class:`~models.schedule.strategies.Replay`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from impl import MemoryAccounting, MemoryFile
from impl.kernel import Kernel
from models.linearizability.history import Operation, Recorder
from models.linearizability.model import abstract, apply
from models.linearizability.search import linearize
from models.schedule.program import Client, Program
from models.schedule.properties import lock_free_violations, reference_violations
from models.schedule.runtime import ControlledRuntime
from models.schedule.scheduler import ControlledThread, Decision, Managed, Scheduler, Strategy
from spec import allocator
from spec.arguments import normalize_opts
from spec.vocabulary import (
    NO_FAULTS,
    SECOND,
    FileRange,
    MemoryFileOpts,
    MemoryKind,
    Observation,
    SeedDefects,
)

MakeFile = Callable[..., MemoryFile]


@dataclass(frozen=True, slots=True)
class Setup:
    """What a run is made of besides its program and schedule."""

    opts: MemoryFileOpts = MemoryFileOpts()
    defects: SeedDefects = SeedDefects()
    fine: bool = False
    """Also preempt at every line of impl run holding no lock (finds unlocked data races)."""
    make_file: MakeFile = MemoryFile
    hang_after: float = 10.0
    """Seconds after which a run is abandoned as hung (a run takes milliseconds)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    program: Program
    strategy: str
    """How the schedule was chosen, e.g. ``pct(seed=3, depth=2)``: with the program, the run."""
    threads: tuple[str, ...]
    decisions: tuple[Decision, ...]
    problems: tuple[str, ...]
    states: tuple[str, ...] = ()
    """With ``record_states``: the state after each decision (empty where the lock is held)."""

    @property
    def failed(self) -> bool:
        return bool(self.problems)

    @property
    def choices(self) -> tuple[int, ...]:
        return tuple(d.chosen for d in self.decisions)

    @property
    def preemptions(self) -> int:
        return sum(d.preemptive for d in self.decisions)


class _WatchedKernel(Kernel):
    """The real kernel; remembers each punch until its thread takes the file's lock again."""

    def __init__(self, scheduler: Scheduler) -> None:
        super().__init__(NO_FAULTS)
        self._scheduler = scheduler
        self.unmarked: dict[int, list[FileRange]] = {}

    def punch_hole(self, fd: int, offset: int, length: int) -> None:
        me = self._scheduler.me()
        if me is not None:
            self.unmarked.setdefault(me.index, []).append(FileRange(offset, offset + length))
        super().punch_hole(fd, offset, length)

    def marked(self, managed: Managed) -> None:
        self.unmarked.pop(managed.index, None)


@dataclass
class _Run:
    program: Program
    setup: Setup
    scheduler: Scheduler
    recorder: Recorder = field(default_factory=Recorder)
    accounting: MemoryAccounting = field(default_factory=MemoryAccounting)
    clients: list[Client] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    file: MemoryFile | None = None

    def main(self) -> None:
        scheduler = self.scheduler
        scheduler.doing("setup: create the file, start the clients")
        kernel = _WatchedKernel(scheduler)
        runtime = ControlledRuntime(scheduler, self.recorder.trace)
        runtime.acquired = kernel.marked
        ticks = itertools.count(1)
        file = self.setup.make_file(
            self.setup.opts,
            accounting=self.accounting,
            clock=lambda: next(ticks) * SECOND,  # never skipped as too recent
            kernel=kernel,
            runtime=runtime,
            defects=self.setup.defects,
        )
        self.file = file
        scheduler.check = lambda: lock_free_violations(
            file.observation(repr),
            file.committed_ranges(),
            [fr for ranges in kernel.unmarked.values() for fr in ranges],
        )
        self.clients = [
            Client(i, ops, file, self.recorder) for i, ops in enumerate(self.program.clients)
        ]
        for client in self.clients:
            client.doing = scheduler.doing
        threads = [ControlledThread(scheduler, f"client-{c.index}", c.run) for c in self.clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        scheduler.doing("quiescence: evictions, reclaim, observe")
        self.settle(file)
        scheduler.check = None
        scheduler.quiet += 1
        try:
            self.recorder.call("observe", lambda: _abstract(file.observation(repr)))
            held = [fr for c in self.clients for fr in c.holdings()]
            self.problems += reference_violations(file.observation(repr), held)
        finally:
            scheduler.quiet -= 1
        self.finish(file)

    def settle(self, file: MemoryFile) -> None:
        """Until no eviction runs and the reclaimer idles (an eviction frees, a free may evict)."""
        for _ in range(100):
            file.wait_for_evictions()
            file.reclaim()
            self.scheduler.quiet += 1
            try:
                obs = file.observation(repr)
            finally:
                self.scheduler.quiet -= 1
            if not obs.reclaim and not any(evicting for _, _, evicting in obs.evictable):
                return
        self.problems.append("the file never settled: evictions or reclaim kept running")

    def finish(self, file: MemoryFile) -> None:
        """Give everything back, let the reclaimer finish, check the file at rest, destroy it."""
        self.scheduler.doing("finish: give back, reclaim, update_usage, destroy")
        for client in self.clients:
            file.mark_all_unevictable(client)
            client.take_back()
            for name in list(client.held):
                client.release(name)
        self.settle(file)
        file.update_usage()
        obs = file.observation(repr)
        total = file.total_usage()
        if obs.usage or obs.reclaim:
            self.problems.append(f"pages left in use once all was freed: {obs.usage}")
        expected = dict.fromkeys(MemoryKind, 0)
        expected[MemoryKind.SYSTEM] = obs.usage_swapped
        if dict(obs.accounting) != expected or obs.usage_expected or obs.usage_swapped != total:
            self.problems.append(f"accounting not exact at rest (fstat: {total}): {obs}")
        if self.accounting.copy() != dict(obs.accounting):
            self.problems.append(f"MemoryAccounting {self.accounting.copy()} != {obs.accounting}")
        file.destroy()


def run_once(
    program: Program,
    strategy: Strategy,
    setup: Setup = Setup(),
    *,
    label: str = "",
    record_states: bool = False,
) -> Outcome:
    """Run ``program`` under ``strategy`` (see the module docstring); never hangs."""
    scheduler = Scheduler(strategy, fine=setup.fine)
    run = _Run(program, setup, scheduler)
    states: list[str] = []
    if record_states:
        scheduler.on_point = lambda decision: states.append(_state(run, scheduler))
    main = ControlledThread(scheduler, "main", run.main)
    impl_log = logging.getLogger("impl")
    level = impl_log.level
    impl_log.setLevel(logging.CRITICAL + 1)  # a dying reclaimer is reported as a problem
    try:
        main.start()
        scheduler.begin()
        if not scheduler.finished.wait(setup.hang_after):
            where = "; ".join(f"{t.name} at {t.point!r}" for t in scheduler.threads if not t.done)
            scheduler.problems.append(f"hung outside the scheduler's control: {where}")
            scheduler.abort()
    finally:
        impl_log.setLevel(level)
    problems = [*scheduler.problems, *run.problems]
    problems += [p for c in run.clients for p in c.problems]
    if not problems:
        verdict = linearize(
            _until_observed(run.recorder.operations),
            allocator.new_memory_file(normalize_opts(setup.opts)),
            lambda state, op: apply(state, op, NO_FAULTS),
        )
        if not verdict.linearizable:
            problems.append(verdict.explain())
    return Outcome(
        program,
        label,
        tuple(t.name for t in scheduler.threads),
        tuple(scheduler.decisions),
        tuple(problems),
        tuple(states),
    )


def _abstract(observation: Observation) -> Observation:
    """:func:`abstract`, merged again: segments that differed only in being known
    committed are one segment to the model, which does not follow that bit."""
    merged: list[tuple[FileRange, MemoryKind, int, bool]] = []
    for fr, kind, refs, known in abstract(observation).usage:
        if merged and merged[-1][0].end == fr.start and merged[-1][1:] == (kind, refs, known):
            merged[-1] = (FileRange(merged[-1][0].start, fr.end), kind, refs, known)
        else:
            merged.append((fr, kind, refs, known))
    return replace(abstract(observation), usage=tuple(merged))


def _until_observed(operations: list[Operation]) -> list[Operation]:
    """The history up to quiescence: what started before ``observe`` ended.

    A background step is recorded when it returns, after its last release of
    the lock, a point where ``observe`` may run first: so the history is cut
    once the run is over, not when ``observe`` runs.
    """
    observed = next(op for op in operations if op.name == "observe")
    return [op for op in operations if op.start < observed.end]


def _state(run: _Run, scheduler: Scheduler) -> str:
    """A line of the file's state, when its lock is free (what a trace shows)."""
    file = run.file
    if file is None or (scheduler.locks and scheduler.locks[0].owner is not None):
        return ""
    scheduler.quiet += 1
    try:
        obs = file.observation(repr)
    except Exception as error:  # a torn state, the failure itself: the trace shows it
        return f"(cannot be observed: {error!r})"
    finally:
        scheduler.quiet -= 1
    usage = " ".join(
        f"[{fr.start >> 12}-{fr.end >> 12}):{kind.name[:4]}/{refs}{'c' if known else ''}"
        for fr, kind, refs, known in obs.usage
    )
    reclaim = " ".join(f"[{fr.start >> 12}-{fr.end >> 12})" for fr in obs.reclaim)
    return f"usage {usage or '-'} | reclaim {reclaim or '-'} | expected {obs.usage_expected}"

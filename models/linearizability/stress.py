"""The stress run: threads using one real ``MemoryFile``, recorded, then checked.

Each worker thread owns the references it holds. It allocates and fills
ranges with a token of its own, frees them whole or in part, hands references
to other threads (``inc_ref`` and a shared queue), decommits, marks ranges
evictable (its user's ``evict`` releases them, on an eviction thread) and takes
them back, starts evictions, delivers memcg pressure, updates usage and asks
the file's size — while the real reclaimer and eviction threads run. Every
call and every background step is recorded (:mod:`~.history`). At the end
the workers give everything back and the file is destroyed. Then:

1. the history must be linearizable against the spec (:mod:`~.search`),
   ending in the file's state at the end (ranges, references, kinds, reclaim
   set, file size, evictable sets);
2. every new allocation read zero before its owner wrote it, and every byte
   a worker checked later was what its owner wrote (or zero, once
   decommitted), on every verify, every free, and every eviction;
3. nothing is lost: once all is given back, no page is in use or awaiting
   reclaim, and the accounting is exact (every kind 0, swap booked as
   ``fstat`` says, the MemoryAccounting equal to what the file contributed).

A short run is in CI; longer ones under the ``thorough`` profile and
``pgalloc check``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import queue
import random
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from impl import MemoryAccounting, MemoryFile
from impl.kernel import Kernel
from impl.pressure import PressureSource, Registration
from models.linearizability.history import Operation, Recorder
from models.linearizability.model import abstract, apply
from models.linearizability.search import Verdict, linearize
from spec import allocator
from spec.arguments import normalize_opts
from spec.vocabulary import (
    HUGE_PAGE_SIZE,
    NO_FAULTS,
    PAGE_SIZE,
    SECOND,
    WRITE,
    DelayedEviction,
    EvictableRange,
    FileRange,
    HostFaults,
    MemoryFileOpts,
    MemoryKind,
)

KINDS = (MemoryKind.ANONYMOUS, MemoryKind.PAGE_CACHE, MemoryKind.TMPFS, MemoryKind.SYSTEM)
LENGTHS = (1, 1, 1, 2, 3, 4, 8, 16)
"""Allocation lengths in pages; one allocation in twenty is a huge page instead."""


@dataclass(frozen=True, slots=True)
class StressConfig:
    seed: int
    threads: int = 4
    operations: int = 60
    """Random operations per worker, before the workers give everything back."""
    opts: MemoryFileOpts = MemoryFileOpts()
    faults: HostFaults = NO_FAULTS
    switch_interval: float = 2e-5
    """The interpreter's thread switch interval during the run (small: more interleavings)."""
    hang_after: float = 300.0
    """Seconds after which a run not done has deadlocked (the largest take about 15 s)."""

    @staticmethod
    def random(seed: int, threads: int = 4, operations: int = 60) -> StressConfig:
        """Options and faults drawn from ``seed``: every eviction mode, zeroing, punch failure."""
        rnd = random.Random(seed)
        mode = rnd.choice(list(DelayedEviction))
        opts = MemoryFileOpts(
            mode,
            use_host_memcg_pressure=mode is DelayedEviction.ENABLED and rnd.random() < 0.5,
            manual_zeroing=rnd.random() < 0.3,
        )
        punch = rnd.choice([errno.EOPNOTSUPP, errno.EIO]) if rnd.random() < 0.2 else None
        return StressConfig(seed, threads, operations, opts, HostFaults(punch=punch))


@dataclass
class StressReport:
    config: StressConfig
    verdict: Verdict
    problems: list[str] = field(default_factory=list)
    """Everything the checks after the run found wrong (empty: all held)."""
    client_calls: int = 0
    background_steps: int = 0
    overlapping: int = 0
    """Operations that overlapped another in time (the interleavings the search had to resolve)."""
    bytes_checked: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.verdict.linearizable and not self.problems

    def explain(self) -> str:
        c = self.config
        head = f"seed {c.seed}, {c.threads} threads x {c.operations}, {c.opts}, {c.faults}"
        return "\n".join([head, self.verdict.explain(), *self.problems])


# --- Run ---------------------------------------------------------------------------

MakeFile = Callable[..., MemoryFile]


def run(config: StressConfig, make_file: MakeFile = MemoryFile) -> StressReport:
    """Run ``config`` against a file built by ``make_file`` (a broken build, in tests).

    A run that deadlocks is reported as such (with every thread's stack)
    after ``config.hang_after`` seconds, rather than hanging its caller.
    """
    if config.faults != HostFaults(punch=config.faults.punch):
        raise ValueError("stress runs inject punch failures only: the model follows no other")
    began = time.monotonic()
    recorder = Recorder()
    accounting = MemoryAccounting()
    clock = _Clock()
    file = make_file(
        config.opts,
        accounting=accounting,
        clock=clock,
        kernel=Kernel(config.faults),
        pressure=_SilentPressure() if _wants_pressure(config.opts) else None,
        tracer=recorder.trace,
    )
    recorder.lock_sequence = file.lock_sequence
    run = _Run(config, file, recorder)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(config.switch_interval)
    # Injected punch failures are logged as warnings, one per range: expected here.
    impl_log, level = logging.getLogger("impl"), logging.getLogger("impl").level
    impl_log.setLevel(logging.ERROR)
    deadline = time.monotonic() + config.hang_after
    try:
        workers = [
            threading.Thread(target=run.worker, args=(i,), name=f"stress-{i}", daemon=True)
            for i in range(config.threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join(max(0.0, deadline - time.monotonic()))
        sys.setswitchinterval(previous)
        finished = not any(w.is_alive() for w in workers) and _within(
            deadline, lambda: run.finish(clock, accounting)
        )
        destroyed = _within(deadline, lambda: recorder.call("destroy", file.destroy))
    finally:
        sys.setswitchinterval(previous)
        impl_log.setLevel(level)
    if not (finished and destroyed):
        # A deadlock: the history is incomplete, there is nothing to search.
        run.problems.append(f"hung: not done after {config.hang_after:g} s\n{_stacks()}")
        return StressReport(config, Verdict(False, len(recorder.operations), 0), run.problems)
    recorder.call("observe", lambda: abstract(file.observation(repr)))
    verdict = linearize(
        recorder.operations,
        allocator.new_memory_file(normalize_opts(config.opts)),
        lambda state, op: apply(state, op, config.faults),
    )
    steps = sum(op.name in BACKGROUND_STEPS for op in recorder.operations)
    return StressReport(
        config,
        verdict,
        run.problems,
        client_calls=len(recorder.operations) - steps,
        background_steps=steps,
        overlapping=overlapping(recorder.operations),
        bytes_checked=run.bytes_checked,
        seconds=time.monotonic() - began,
    )


def _within(deadline: float, action: Callable[[], object]) -> bool:
    """Run ``action`` on a daemon thread; whether it ended by ``deadline`` (monotonic)."""
    done = threading.Event()

    def body() -> None:
        try:
            action()
        finally:
            done.set()

    threading.Thread(target=body, name="stress-finish", daemon=True).start()
    return done.wait(max(0.0, deadline - time.monotonic()))


def _stacks() -> str:
    """Where every thread is: what a hang report needs."""
    frames = sys._current_frames()
    return "\n".join(
        f"--- {t.name}\n" + "".join(traceback.format_stack(frames[t.ident]))
        for t in threading.enumerate()
        if t.ident in frames
    )


BACKGROUND_STEPS = frozenset({"reclaim_find", "reclaim_punch", "reclaim_mark", "evict_take"})


def overlapping(history: list[Operation]) -> int:
    """How many operations overlap in time an operation that started before them."""
    count, latest_end = 0, -1
    for op in sorted(history, key=lambda op: op.start):
        count += latest_end > op.start
        latest_end = max(latest_end, op.end)
    return count


def _wants_pressure(opts: MemoryFileOpts) -> bool:
    return opts.delayed_eviction is DelayedEviction.ENABLED and opts.use_host_memcg_pressure


class _SilentPressure(PressureSource):
    """A pressure source that never fires: pressure comes from recorded ``memcg_pressure`` calls."""

    def register(self, kernel: Kernel) -> list[Registration]:
        fd = kernel.eventfd()
        return [Registration(fd, 1, lambda: False, (fd,))]


class _Clock:
    """update_usage's clock: monotonic, and advanced by hand at the end."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        return time.monotonic_ns() + self.offset

    def advance(self, ns: int) -> None:
        self.offset += ns


@dataclass
class _Held:
    """One reference a worker holds, and what the range must read."""

    fr: FileRange
    token: bytes | None
    """The owner's 8-byte token repeated over the range, or None once it must read zero."""
    shared: bool = False
    """Other references to the range exist: it is only read and released whole."""


class _User:
    """An evictable memory user, one per worker: ``evict`` releases the range if still evictable."""

    def __init__(self, name: str, run: _Run) -> None:
        self.name = name
        self.run = run
        self.lock = threading.Lock()
        self.ranges: dict[EvictableRange, _Held] = {}

    def __repr__(self) -> str:
        return self.name

    def evict(self, er: EvictableRange) -> None:
        with self.lock:
            held = self.ranges.pop(er, None)
        if held is not None:  # else taken back meanwhile: nothing to do (the seed's race)
            self.run.release(held)


class _Run:
    """The state of one stress run shared by its threads."""

    def __init__(self, config: StressConfig, file: MemoryFile, recorder: Recorder) -> None:
        self.config = config
        self.file = file
        self.recorder = recorder
        self.shared: queue.SimpleQueue[_Held] = queue.SimpleQueue()
        self.problems: list[str] = []
        self.bytes_checked = 0
        self.users = [_User(f"user-{i}", self) for i in range(config.threads)]
        self.tokens = 0
        self.lock = threading.Lock()
        """Guards the counters (tokens, bytes checked)."""

    # --- Calls, recorded --------------------------------------------------------------

    def call(self, name: str, *args: object) -> object:
        return self.recorder.call(name, getattr(self.file, name), *args)

    def verify(self, held: _Held) -> None:
        """Check every byte of ``held`` (reading it commits its pages, which is fine)."""
        views = self.file.map_internal(held.fr, WRITE)
        try:
            data = b"".join(views)
        finally:
            for v in views:
                v.release()
        expected = bytes(len(data)) if held.token is None else held.token * (len(data) // 8)
        with self.lock:
            self.bytes_checked += len(data)
        if data != expected:
            first = next(i for i in range(len(data)) if data[i] != expected[i])
            self.problems.append(
                f"{held.fr} reads {data[first : first + 8]!r} at +{first:#x}, "
                f"not {expected[first : first + 8]!r} (token {held.token!r})"
            )

    def release(self, held: _Held) -> None:
        self.verify(held)
        self.call("dec_ref", held.fr)

    # --- A worker ---------------------------------------------------------------------

    def worker(self, index: int) -> None:
        rnd = random.Random(self.config.seed * 7919 + index)
        user = self.users[index]
        held: list[_Held] = []
        try:
            for _ in range(self.config.operations):
                self.step(rnd, user, held)
            self.take_back(user, held, every=True)
            while held:
                self.release(held.pop())
        except Exception:
            self.problems.append(f"worker {index} raised:\n{traceback.format_exc()}")

    def step(self, rnd: random.Random, user: _User, held: list[_Held]) -> None:
        """One random operation (a few are two calls: a check and the call itself)."""
        mode = self.config.opts.delayed_eviction
        action = rnd.choices(
            [
                "allocate", "free", "free_part", "share", "take_shared", "decommit",
                "mark_evictable", "take_back", "take_all_back", "start_evictions",
                "memcg_pressure", "update_usage", "total_size", "verify",
            ],
            weights=[8, 5, 2, 2, 2, 1, 3, 2, 1, 1 if mode is DelayedEviction.MANUAL else 0.2,
                     1, 1, 0.5, 1],
        )[0]  # fmt: skip
        mine = [h for h in held if not h.shared]
        if action == "allocate" or not held:
            self.allocate(rnd, held)
        elif action == "free":
            self.release(held.pop(rnd.randrange(len(held))))
        elif action == "free_part" and (parts := [h for h in mine if h.fr.length() > PAGE_SIZE]):
            h = rnd.choice(parts)
            cut = h.fr.start + PAGE_SIZE * rnd.randrange(1, h.fr.length() // PAGE_SIZE)
            self.call("dec_ref", FileRange(cut, h.fr.end))
            h.fr = FileRange(h.fr.start, cut)
        elif action == "share":
            h = rnd.choice(held)
            self.call("inc_ref", h.fr)
            h.shared = True
            self.shared.put(_Held(h.fr, h.token, shared=True))
        elif action == "take_shared":
            with contextlib.suppress(queue.Empty):
                held.append(self.shared.get_nowait())
        elif action == "decommit" and mine:
            h = rnd.choice(mine)
            try:
                self.call("decommit", h.fr)
                h.token = None
            except OSError:
                pass  # the injected punch failure: nothing changed, the data is still there
        elif action == "mark_evictable" and mine:
            h = rnd.choice(mine)
            held.remove(h)
            er = EvictableRange(h.fr.start, h.fr.end)
            with user.lock:
                user.ranges[er] = h
            self.call("mark_evictable", user, er)
        elif action in ("take_back", "take_all_back"):
            self.take_back(user, held, every=action == "take_all_back")
        elif action in ("start_evictions", "memcg_pressure", "update_usage", "total_size"):
            self.call(action)
        elif action == "verify":
            self.verify(rnd.choice(held))

    def allocate(self, rnd: random.Random, held: list[_Held]) -> None:
        huge = rnd.random() < 0.05
        length = HUGE_PAGE_SIZE if huge else PAGE_SIZE * rnd.choice(LENGTHS)
        fr = self.call("allocate", length, rnd.choice(KINDS))
        assert isinstance(fr, FileRange)
        with self.lock:
            self.tokens += 1
            token = self.tokens.to_bytes(8, "little")
        views = self.file.map_internal(fr, WRITE)
        try:
            # A new allocation reads zero: no previous owner's byte shows through.
            if any(bytes(v).count(0) != len(v) for v in views):
                self.problems.append(f"new allocation {fr} does not read zero")
            for v in views:
                v[:] = token * (len(v) // 8)
        finally:
            for v in views:
                v.release()
        with self.lock:
            self.bytes_checked += fr.length()
        held.append(_Held(fr, token))

    def take_back(self, user: _User, held: list[_Held], *, every: bool) -> None:
        """Withdraw one (or every) evictable range not yet evicted, and hold it again."""
        with user.lock:
            taken = list(user.ranges.items()) if every else list(user.ranges.items())[-1:]
            for er, _ in taken:
                del user.ranges[er]
        if every:
            self.call("mark_all_unevictable", user)
        for er, h in taken:
            if not every:
                self.call("mark_unevictable", user, er)
            held.append(h)

    # --- The end ----------------------------------------------------------------------

    def finish(self, clock: _Clock, accounting: MemoryAccounting) -> None:
        """Give back what is shared, let the file settle, and check it at rest."""
        try:
            self.give_back_shared()
            self.settle()
            clock.advance(10 * SECOND)  # the final update_usage must not be skipped as recent
            self.file.update_usage()
            self.check_quiescent(accounting, self.file.total_usage())
        except Exception:
            self.problems.append(f"finishing the run raised:\n{traceback.format_exc()}")

    def give_back_shared(self) -> None:
        while True:
            try:
                self.release(self.shared.get_nowait())
            except queue.Empty:
                return

    def settle(self) -> None:
        """Wait until the reclaimer is idle and no eviction runs (evictions may free more)."""
        for _ in range(100):
            self.file.wait_for_evictions()
            self.file.reclaim()
            obs = self.file.observation()
            if not obs.usage and not obs.reclaim and not any(e[2] for e in obs.evictable):
                return
            time.sleep(0.001)
        self.problems.append(f"never settled: {self.file.observation()}")

    def check_quiescent(self, accounting: MemoryAccounting, total_usage: int) -> None:
        """Nothing in use, nothing lost, the accounting exact (after a full update_usage)."""
        obs = self.file.observation()
        if obs.usage or obs.reclaim:
            self.problems.append(
                f"pages left in use after all was freed: {obs.usage} {obs.reclaim}"
            )
        expected = dict.fromkeys(MemoryKind, 0)
        expected[MemoryKind.SYSTEM] = obs.usage_swapped
        if dict(obs.accounting) != expected or obs.usage_expected != 0:
            self.problems.append(f"accounting not exact at rest: {obs}")
        if obs.usage_swapped != total_usage:
            self.problems.append(f"swap booked {obs.usage_swapped}, fstat says {total_usage}")
        if accounting.copy() != dict(obs.accounting):
            self.problems.append(f"MemoryAccounting {accounting.copy()} != {obs.accounting}")

"""``pgalloc check``'s controlled-scheduler check: the real file's interleavings, on purpose.

Three parts, in order, each stopping the check at its first failure (shrunk
to the fewest preemptions and printed as a replayable trace):

1. :data:`RACES` — the smallest programs around the windows where the seed
   drops its lock (an update_usage scan against a decommit, a free, reclaim
   and reuse, or an inc_ref that splits the scanned segment), every schedule
   with at most 2 preemptions, in a fixed order: at least
   :data:`MIN_EXHAUSTIVE_RUNS` runs each whatever the budget, more as it allows
   (the seed's D1 and D3, restored, fail at schedules 396 and 459; D1 through a
   reclaim and reuse needs 3 preemptions, beyond this bound);
2. :data:`SHARED` — two clients sharing references, preempted also at every
   line of impl run without the lock (``fine``): a change made without the
   lock shows as a torn state or a lost count. Lines exist only in the pure
   build: when impl runs compiled, this part runs in a child process with
   ``PGALLOC_PURE=1`` (:mod:`models.schedule.pure_child`). The compiled code
   switches threads only where the pure code can (at its calls into the
   interpreter, the locks among them), so the pure build's interleavings
   include the compiled build's;
3. random programs of 2-3 clients (allocate, write, inc_ref, dec_ref,
   decommit, mark_evictable, update_usage) under random and PCT schedules,
   in each eviction mode (so eviction threads run too), for the rest of the
   budget.
"""

from __future__ import annotations

import time
from dataclasses import replace

import impl
from models.check import Check, CheckResult, Progress
from models.schedule.program import (
    Alloc,
    Decommit,
    DecRef,
    IncRef,
    Part,
    Program,
    UpdateUsage,
    Write,
    random_program,
)
from models.schedule.pure_child import run_shared_in_pure_child
from models.schedule.run import Setup
from models.schedule.scheduler import FineModeNeedsPure
from models.schedule.search import Searched, exhaustive, explain, sample, shrink
from spec.vocabulary import DelayedEviction

RACES = (
    Program("decommit-under-scan", ((UpdateUsage(),), (Alloc("a"), Write("a"), Decommit("a")))),
    Program(
        "reuse-under-scan",
        ((UpdateUsage(),), (Alloc("a"), Write("a"), DecRef("a"), Alloc("b"))),
    ),
    Program(
        "split-under-scan",
        ((UpdateUsage(),), (Alloc("a", 2), Write("a", Part.LAST), IncRef("a", Part.FIRST, "b"))),
    ),
)
"""Update_usage's unlocked mincore window against what changes the pages meanwhile."""

SHARED = Program(
    "shared-references",
    (
        (Alloc("a", 2), IncRef("a", Part.ALL, "b"), DecRef("a"), DecRef("b")),
        (Alloc("c"), IncRef("c", Part.ALL, "d"), DecRef("c"), DecRef("d")),
    ),
)

BOUND = 2
MIN_EXHAUSTIVE_RUNS = 600
MIN_SHARED_RUNS = 40
MIN_RANDOM_RUNS = 20
SHRINK_SECONDS = 10.0


def run_schedules(budget: float, progress: Progress, setup: Setup = Setup()) -> CheckResult:
    """The check (see the module docstring); ``setup`` lets tests plant a broken file."""
    started = time.monotonic()
    runs = 0

    def failed(found: Searched, where_setup: Setup) -> CheckResult:
        detail = explain_failure(found, where_setup, progress)
        return CheckResult(
            "schedules", False, runs, "schedules", time.monotonic() - started, detail
        )

    share = budget / (len(RACES) + 2)
    for program in RACES:
        found = exhaustive(
            program,
            setup,
            BOUND,
            deadline=time.monotonic() + share,
            min_runs=MIN_EXHAUSTIVE_RUNS,
        )
        runs += found.runs
        progress(
            f"schedules: {program.name}: {found.runs} schedules with <= {BOUND} preemptions"
            + (" (all)" if found.complete else "")
        )
        if found.failure is not None:
            return failed(found, setup)
    if impl.compiled():  # fine mode preempts at Python lines: the compiled build has none
        if setup != Setup():
            raise FineModeNeedsPure("a planted file runs in fine mode only in the pure build")
        shared_runs, detail = run_shared_in_pure_child(share, progress)
        runs += shared_runs
        if detail is not None:
            return CheckResult(
                "schedules", False, runs, "schedules", time.monotonic() - started, detail
            )
    else:
        found = run_shared(setup, share, progress)
        runs += found.runs
        if found.failure is not None:
            return failed(found, replace(setup, fine=True))
    modes = (DelayedEviction.ENABLED, DelayedEviction.DISABLED, DelayedEviction.MANUAL)
    for n, mode in enumerate(modes):
        each = replace(setup, opts=replace(setup.opts, delayed_eviction=mode))
        left = started + budget - time.monotonic()
        found = sample(
            lambda seed: random_program(seed, clients=2 + seed % 2, length=5),
            each,
            ("random", "pct2", "pct3"),
            deadline=time.monotonic() + left / (len(modes) - n),
            min_runs=MIN_RANDOM_RUNS,
        )
        runs += found.runs
        progress(
            f"schedules: {found.runs} random programs, evictions {mode.name}, "
            "under random and PCT schedules"
        )
        if found.failure is not None:
            return failed(found, each)
    return CheckResult("schedules", True, runs, "schedules", time.monotonic() - started)


def run_shared(setup: Setup, seconds: float, progress: Progress) -> Searched:
    """Part 2: :data:`SHARED` in fine mode for ``seconds`` (at least :data:`MIN_SHARED_RUNS`)."""
    found = sample(
        lambda seed: SHARED,
        replace(setup, fine=True),
        ("random", "pct2", "pct3"),
        deadline=time.monotonic() + seconds,
        min_runs=MIN_SHARED_RUNS,
    )
    progress(f"schedules: {SHARED.name}: {found.runs} schedules, preempting at every line")
    return found


def explain_failure(found: Searched, setup: Setup, progress: Progress) -> str:
    """``found``'s failure shrunk to the fewest preemptions, as a replayable trace."""
    assert found.failure is not None
    progress(f"schedules: {found.failure.program.name} failed; shrinking")
    small = shrink(found.failure, setup, deadline=time.monotonic() + SHRINK_SECONDS)
    return explain(small, setup)


CHECKS = [
    Check(
        "schedules",
        "a controlled scheduler over the real file's threads: the seed's lock-dropped windows "
        "exhaustively to 2 preemptions, then random and PCT schedules",
        run_schedules,
    )
]

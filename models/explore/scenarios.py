"""The model checker's default bounds, the seed-defect scenarios, and its ``pgalloc check``.

:data:`DEFAULT_SCENARIOS` are what ``pgalloc check`` explores (about 23 s on
one core here): every program of a few operations over the whole alphabet,
plus longer scripts aimed at the races that matter (memory freed, reclaimed
and reused under an update_usage scan; decommits racing a scan; evictions
racing unevictable marks; destroy). :data:`SEED_DEFECT_SCENARIOS` are the
smallest races that show the seed's update_usage defects when
:class:`spec.state.SeedDefects` restores them.
"""

from __future__ import annotations

import time

from models.check import Check, CheckResult, Progress
from models.explore.model import Scenario
from models.explore.program import (
    ANY,
    Allocate,
    Decommit,
    DecRef,
    Destroy,
    IncRef,
    MarkEvictable,
    MarkUnevictable,
    Part,
    StartEvictions,
    UpdateUsage,
    Write,
    choice,
    script,
)
from models.explore.search import Result, Violation, explore
from spec.state import SeedDefects
from spec.vocabulary import DelayedEviction, MemoryFileOpts

ALPHABET = (
    Allocate(1),
    Allocate(2),
    Write(ANY),
    Write(ANY, Part.LAST),
    IncRef(ANY, Part.FIRST),
    DecRef(ANY),
    Decommit(ANY),
    MarkEvictable(ANY),
    MarkUnevictable(ANY),
    StartEvictions(),
    UpdateUsage(),
)
"""Every client operation, with the page choices that matter (whole holding or one end)."""

DEFAULT_SCENARIOS = (
    Scenario(
        "any-3-and-2",
        (choice(3, *ALPHABET), choice(2, *ALPHABET)),
    ),
    Scenario(
        "free-reclaim-reuse",
        (
            script(
                Allocate(2, "a"),
                Write("a"),
                IncRef("a", Part.LAST, "b"),
                DecRef("a"),
                Allocate(1, "c"),
                Write("c"),
                DecRef("b"),
                Allocate(2, "d"),
            ),
            script(UpdateUsage(), UpdateUsage()),
        ),
        punch_failures=True,
    ),
    Scenario(
        "decommit-race",
        (
            script(
                Allocate(2, "a"),
                Write("a"),
                Decommit("a", Part.FIRST),
                Write("a", Part.FIRST),
                IncRef("a", Part.LAST, "b"),
                Decommit("a"),
                DecRef("a"),
                DecRef("b"),
                Allocate(1, "c"),
                Write("c"),
            ),
            script(UpdateUsage(), UpdateUsage()),
        ),
        punch_failures=True,
    ),
    Scenario(
        "evictions-then-destroy",
        (
            script(
                Allocate(1, "a"),
                Write("a"),
                MarkEvictable("a"),
                Allocate(2, "b"),
                MarkUnevictable("a"),
                DecRef("a"),
                DecRef("b"),
                Destroy(),
            ),
            script(Allocate(1, "x"), MarkEvictable("x"), StartEvictions()),
        ),
        opts=MemoryFileOpts(DelayedEviction.DISABLED),
    ),
    Scenario(
        "manual-zeroing",
        (choice(2, *ALPHABET), choice(2, *ALPHABET)),
        opts=MemoryFileOpts(manual_zeroing=True),
    ),
)


STALE_MINCORE = Scenario(
    "stale-mincore",
    (script(UpdateUsage()), script(Allocate(1, "a"), Write("a"), Decommit("a"))),
    defects=SeedDefects(stale_mincore=True),
)
"""A decommit while update_usage waits on mincore: its answer is stale when applied."""

STALE_MINCORE_REUSE = Scenario(
    "stale-mincore-reuse",
    (
        script(UpdateUsage()),
        script(Allocate(1, "a"), Write("a"), DecRef("a"), Allocate(1, "b")),
    ),
    defects=SeedDefects(stale_mincore=True),
)
"""Pages freed, reclaimed and allocated again while update_usage waits on mincore."""

ADJACENT_SEGMENT = Scenario(
    "adjacent-segment",
    (
        script(UpdateUsage()),
        script(Allocate(2, "a"), Write("a", Part.LAST), IncRef("a", Part.FIRST, "b")),
    ),
    defects=SeedDefects(adjacent_segment=True),
)
"""An inc_ref splits the scanned segment while update_usage waits on mincore."""

SEED_DEFECT_SCENARIOS = (STALE_MINCORE, STALE_MINCORE_REUSE, ADJACENT_SEGMENT)


# --- pgalloc check --------------------------------------------------------------------


def run_model_checker(budget: float, progress: Progress) -> CheckResult:
    """Explore every default scenario (whatever the budget: the bounds are fixed)."""
    del budget  # exhaustive at fixed bounds; they were chosen to take about 23 s
    started = time.monotonic()
    results: list[Result] = []
    for scenario in DEFAULT_SCENARIOS:
        for line in scenario.describe().splitlines():
            progress(f"model-checker: {line}")
        result = explore(scenario, progress, every_kind=True)
        progress(f"model-checker: {result.summary()}")
        results.append(result)
    states = sum(r.states for r in results)
    transitions = sum(r.transitions for r in results)
    progress(f"model-checker: {states:,} states and {transitions:,} transitions in all")
    failures = "\n\n".join(
        f"{v}\n{_picture(scenario, v)}"
        for scenario, r in zip(DEFAULT_SCENARIOS, results, strict=True)
        for v in r.violations
    )
    seconds = time.monotonic() - started
    return CheckResult("model-checker", not failures, states, "states", seconds, failures)


def _picture(scenario: Scenario, violation: Violation) -> str:
    """Draw the counterexample (models/picture), and say where it is."""
    from models.picture.counterexamples import from_violation
    from models.picture.show import draw_counterexample

    stem = f"pgalloc-counterexample-{scenario.name}"
    return draw_counterexample(lambda: from_violation(scenario, violation), stem)


CHECKS = [
    Check(
        "model-checker",
        "every interleaving of clients, reclaimer, evictors and update_usage at small bounds",
        run_model_checker,
    )
]

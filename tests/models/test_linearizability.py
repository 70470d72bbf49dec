"""The linearizability checker: its search on small histories, stress runs, and broken builds.

A stress run (models.linearizability.stress) records threads using a real
MemoryFile with its reclaimer and eviction threads running, and checks the
history against the spec, the bytes every owner wrote, and the file at rest.
Each check is shown to catch a broken build that only it catches.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest
from hypothesis import settings

from impl import MemoryFile
from impl.books import Usage
from impl.reclaimer import WAIT, Reclaimer
from models.linearizability.history import Operation, Raised
from models.linearizability.model import apply
from models.linearizability.search import linearize
from models.linearizability.stress import StressConfig, StressReport, run
from spec import allocator
from spec.vocabulary import (
    NO_FAULTS,
    PAGE_SIZE,
    DelayedEviction,
    FileRange,
    HostFaults,
    MemoryFileOpts,
    MemoryKind,
)
from tests.figures import FIGURES

ANON = MemoryKind.ANONYMOUS
P = PAGE_SIZE
TOP = 1 << 30


def check(history: list[Operation]) -> Any:
    return linearize(
        history, allocator.new_memory_file(MemoryFileOpts()), lambda s, op: apply(s, op, NO_FAULTS)
    )


def op(
    thread: int, name: str, args: tuple[object, ...], result: object, start: int, end: int
) -> Operation:
    return Operation(thread, name, args, result, start, end)


# --- The search, on histories written by hand ---------------------------------------------


def test_overlapping_calls_may_take_effect_in_either_order() -> None:
    # Thread 2 started second but got the top range: it took the lock first.
    history = [
        op(1, "allocate", (P, ANON), FileRange(TOP - 2 * P, TOP - P), 0, 10),
        op(2, "allocate", (P, ANON), FileRange(TOP - P, TOP), 1, 9),
    ]
    verdict = check(history)
    assert verdict.linearizable, verdict.explain()
    assert [o.thread for o in verdict.order] == [2, 1]


def test_real_time_order_is_respected() -> None:
    # The same results, but thread 1 finished before thread 2 began: impossible.
    history = [
        op(1, "allocate", (P, ANON), FileRange(TOP - 2 * P, TOP - P), 0, 4),
        op(2, "allocate", (P, ANON), FileRange(TOP - P, TOP), 5, 9),
    ]
    verdict = check(history)
    assert not verdict.linearizable and not verdict.gave_up
    assert "allocate" in verdict.explain()


def test_a_double_allocation_is_not_linearizable() -> None:
    history = [
        op(1, "allocate", (P, ANON), FileRange(TOP - P, TOP), 0, 10),
        op(2, "allocate", (P, ANON), FileRange(TOP - P, TOP), 2, 12),
    ]
    assert not check(history).linearizable


def test_a_freed_range_is_reused_only_after_the_reclaimer_is_done_with_it() -> None:
    fr = FileRange(TOP - P, TOP)
    base = [
        op(9, "reclaim_find", (False,), WAIT, 0, 1),
        op(1, "allocate", (P, ANON), fr, 2, 3),
        op(1, "dec_ref", (fr,), None, 4, 5),
        op(9, "reclaim_find", (False,), tuple(fr), 6, 7),
        op(9, "reclaim_punch", (tuple(fr),), None, 8, 9),
    ]
    reclaimed = [*base, op(9, "reclaim_mark", (tuple(fr),), WAIT, 10, 11)]
    assert check([*reclaimed, op(1, "allocate", (P, ANON), fr, 12, 13)]).linearizable
    # Allocated again while the reclaimer still held it: the next range down is free, not it.
    early = [*base, op(1, "allocate", (P, ANON), fr, 10, 11)]
    assert not check(early).linearizable
    below = FileRange(TOP - 2 * P, TOP - P)
    assert check([*base, op(1, "allocate", (P, ANON), below, 10, 11)]).linearizable


def test_errors_are_results_too() -> None:
    fr = FileRange(0, P)
    raised = Raised("UnallocatedPages")
    assert check([op(1, "dec_ref", (fr,), raised, 0, 1)]).linearizable
    assert not check([op(1, "dec_ref", (fr,), None, 0, 1)]).linearizable


def test_a_thread_that_overlaps_itself_is_rejected() -> None:
    with pytest.raises(ValueError, match="overlaps itself"):
        check([op(1, "total_size", (), 0, 0, 5), op(1, "total_size", (), 0, 3, 8)])


def test_the_search_gives_up_rather_than_pass() -> None:
    history = [op(t, "total_size", (), 0, 0, 100) for t in range(6)]
    verdict = linearize(
        history,
        allocator.new_memory_file(MemoryFileOpts()),
        lambda s, o: apply(s, o, NO_FAULTS),
        max_nodes=3,
    )
    assert not verdict.linearizable and verdict.gave_up


# --- Stress runs against the real allocator ---------------------------------------------------


def stress_plan() -> tuple[int, int, int]:
    """(runs, threads, operations per thread): 12 x 4 x 60 in CI, 100 x 16 x 200 thorough."""
    examples = int(settings().max_examples)
    if examples >= 1000:
        return examples // 50, 16, 200
    return max(3, examples // 5), 4, 60


def test_concurrent_use_is_linearizable_and_loses_nothing() -> None:
    runs, threads, operations = stress_plan()
    reports = [run(StressConfig.random(seed, threads, operations)) for seed in range(runs)]
    failed = [r.explain() for r in reports if not r.passed]
    assert not failed, failed[0]
    FIGURES["histories checked linearizable"] += len(reports)
    FIGURES["history operations (client calls)"] += sum(r.client_calls for r in reports)
    FIGURES["history operations (background steps)"] += sum(r.background_steps for r in reports)
    FIGURES["history operations overlapping another"] += sum(r.overlapping for r in reports)
    FIGURES["bytes checked by stress workers"] += sum(r.bytes_checked for r in reports)
    FIGURES[f"stress runs of {threads} threads x {operations} operations"] += len(reports)
    # The runs exercised what they claim to: interleaved calls and busy background threads.
    assert sum(r.overlapping for r in reports) > sum(r.client_calls for r in reports) // 4
    assert all(r.background_steps > 0 and r.bytes_checked > 0 for r in reports)
    assert {r.config.opts.delayed_eviction for r in reports} == set(DelayedEviction)
    assert any(r.config.opts.manual_zeroing for r in reports)
    assert any(r.config.faults.punch for r in reports)


# --- Broken builds: each check catches one ---------------------------------------------------


class FirstRangeFirst(Reclaimer):
    def find_locked(self) -> Any:
        s = self.state
        if s.destroyed or not s.reclaimable or not s.reclaim:
            return super().find_locked()
        start, end = next(iter(s.reclaim))
        s.reclaim.remove(start, end)
        s.unlocked_users += 1
        return start, end


class ReclaimsFirstRangeFirst(MemoryFile):
    """The reclaimer takes the lowest free range, not the highest: only the order is wrong."""

    _reclaimer_class = FirstRangeFirst


class NoPunch(Reclaimer):
    def decommit(self, start: int, end: int) -> None:
        pass


class SkipsThePunch(MemoryFile):
    """The reclaimer neither punches nor zeroes: freed bytes reach the next owner."""

    _reclaimer_class = NoPunch


def _forget_if_last(u: Usage) -> Usage:
    return Usage(u.kind, False, u.refs) if u.refs == 1 else u


class ForgetsToMoveAccounting(MemoryFile):
    """dec_ref leaves freed committed pages accounted to their old kind, not to System.

    (It forgets that the pages it is about to free are committed, so the free books nothing.)
    """

    def dec_ref(self, fr: FileRange) -> None:
        with self._state.mu:
            self._state.usage.update(fr.start, fr.end, _forget_if_last)
        super().dec_ref(fr)


def first_failure(make_file: Any, seeds: int = 20) -> StressReport:
    for seed in range(seeds):
        report = run(StressConfig.random(seed), make_file)
        if not report.passed:
            return report
    raise AssertionError(f"no run out of {seeds} caught {make_file.__name__}")


def test_the_search_catches_a_reclaimer_that_takes_ranges_in_the_wrong_order() -> None:
    report = first_failure(ReclaimsFirstRangeFirst)
    assert not report.verdict.linearizable and not report.verdict.gave_up
    assert any(o.name.startswith("reclaim") for o, _ in report.verdict.stuck_at)
    assert not report.problems  # nothing else notices: every byte and every count is right


def test_the_byte_check_catches_a_reclaimer_that_skips_the_punch() -> None:
    report = first_failure(SkipsThePunch)
    assert report.problems, report.explain()
    assert all("does not read zero" in p for p in report.problems), report.explain()
    assert report.verdict.linearizable  # results and counts are right: only the bytes are not


def test_the_accounting_check_catches_a_dec_ref_that_forgets_to_move_accounting() -> None:
    report = first_failure(ForgetsToMoveAccounting)
    assert report.problems, report.explain()
    assert all("accounting" in p or "MemoryAccounting" in p for p in report.problems), (
        report.explain()
    )
    assert report.verdict.linearizable  # the model does not follow accounting: this check does


class StallsOnTheTenthFree(MemoryFile):
    """The tenth dec_ref takes the lock and holds it for 5 s: a deadlock, as far as a run sees."""

    frees = 0

    def dec_ref(self, fr: FileRange) -> None:
        type(self).frees += 1
        if type(self).frees == 10:
            self._state.mu.acquire()
            threading.Timer(
                5.0, self._state.mu.release
            ).start()  # then everything ends and cleans up
        super().dec_ref(fr)


def test_a_deadlock_is_reported_not_waited_for() -> None:
    config = dataclasses.replace(StressConfig.random(0), hang_after=2.0)
    report = run(config, StallsOnTheTenthFree)
    assert not report.passed
    assert report.problems[-1].startswith("hung: not done after 2 s")
    assert "in acquire" in report.problems[-1]  # the stacks show threads waiting for the lock


def test_only_punch_failures_can_be_injected() -> None:
    with pytest.raises(ValueError, match="punch failures only"):
        run(dataclasses.replace(StressConfig.random(0), faults=HostFaults(mincore=5)))

"""The controlled scheduler: its machinery, its teeth on the seed's defects and on broken copies."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

import impl
from models.schedule.checks import MIN_SHARED_RUNS, RACES, SHARED
from models.schedule.program import Alloc, DecRef, MarkEvictable, Program, UpdateUsage, Write
from models.schedule.pure_child import run_shared_in_pure_child
from models.schedule.run import Setup, run_once
from models.schedule.scheduler import (
    ControlledLock,
    ControlledThread,
    FineModeNeedsPure,
    Scheduler,
)
from models.schedule.search import (
    exhaustive,
    explain,
    parse_schedule,
    replay,
    sample,
    schedule_text,
    shrink,
)
from models.schedule.strategies import Exhaustive, Pct, RandomWalk, Replay
from spec.vocabulary import DelayedEviction, MemoryFileOpts, SeedDefects
from tests.source_copy import copy_source, run_in_copy

DECOMMIT_UNDER_SCAN, _, SPLIT_UNDER_SCAN = RACES


# --- The machinery, on bare locks -------------------------------------------------------


def _lock_order_run(strategy: Replay | RandomWalk) -> Scheduler:
    """Two threads taking two controlled locks in opposite orders (a deadlock, if interleaved)."""
    scheduler = Scheduler(strategy)
    first, second = ControlledLock(scheduler, "first"), ControlledLock(scheduler, "second")

    def take(a: ControlledLock, b: ControlledLock) -> None:
        with a, b:
            pass

    def main() -> None:
        threads = [
            ControlledThread(scheduler, "t0", take, first, second),
            ControlledThread(scheduler, "t1", take, second, first),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    ControlledThread(scheduler, "main", main).start()
    scheduler.begin()
    assert scheduler.finished.wait(10)
    return scheduler


def test_a_deadlock_is_found_and_every_blocked_thread_reported() -> None:
    search = Exhaustive(bound=1)
    deadlocks = []
    while (strategy := search.next_run()) is not None:
        scheduler = _lock_order_run(strategy)
        search.record(scheduler.decisions)
        deadlocks += [p for p in scheduler.problems if p.startswith("deadlock")]
    assert deadlocks, "some schedule with one preemption interleaves the two acquisitions"
    report = deadlocks[0]
    assert "t0 waits at 'acquire second (held by t1)'" in report
    assert "t1 waits at 'acquire first (held by t0)'" in report
    assert "main waits at 'join t0'" in report


def test_without_preemption_there_is_no_deadlock() -> None:
    search = Exhaustive(bound=0)
    while (strategy := search.next_run()) is not None:
        scheduler = _lock_order_run(strategy)
        search.record(scheduler.decisions)
        assert not scheduler.problems
    assert search.runs >= 2  # who runs first is a free choice, not a preemption


def test_a_schedule_replays_exactly() -> None:
    program = RACES[1]
    first = run_once(program, RandomWalk(7))
    again = run_once(program, Replay(first.choices))
    assert again.decisions == first.decisions
    assert parse_schedule(schedule_text(first.choices)) == list(first.choices)


def test_pct_prefers_one_thread_until_a_change_point() -> None:
    pct = Pct(seed=1, depth=1, steps=10)  # depth 1: no change point, priorities fixed
    picks = {pct.choose((0, 1, 2), None) for _ in range(20)}
    assert len(picks) == 1


# --- The real file ---------------------------------------------------------------------


def test_the_races_pass_on_impl_to_one_preemption_and_beyond() -> None:
    for program in RACES:
        searched = exhaustive(program, Setup(), 1)
        assert searched.complete and searched.failure is None, searched.failure
        assert searched.runs > 100  # the bound really branches


@pytest.mark.parametrize(
    ("program", "defects"),
    [
        (DECOMMIT_UNDER_SCAN, SeedDefects(stale_mincore=True)),
        (SPLIT_UNDER_SCAN, SeedDefects(adjacent_segment=True)),
    ],
    ids=["D1-decommit", "D3-split"],
)
def test_the_seed_defects_are_found_on_the_real_file(
    program: Program, defects: SeedDefects
) -> None:
    setup = Setup(defects=defects)
    searched = exhaustive(program, setup, 2)
    assert searched.failure is not None, f"{program.name}: {searched.runs} schedules passed"
    assert "pages known committed that the kernel does not hold" in searched.failure.problems[0]
    small = shrink(searched.failure, setup, deadline=float("inf"))
    assert small.failed and small.preemptions <= 2
    again = replay(small.program, small.choices, setup)
    assert again.failed and again.decisions == small.decisions
    text = explain(small, setup)
    assert "fails again" in text and "schedule: " in text and "update_usage" in text


def test_random_programs_pass() -> None:
    searched = sample(
        lambda seed: Program("p", (_RANDOMISH[seed % 2], (UpdateUsage(), Alloc("z")))),
        Setup(),
        ("random", "pct2"),
        deadline=0,
        min_runs=20,
    )
    assert searched.failure is None, searched.failure and searched.failure.problems
    assert searched.runs == 20


_RANDOMISH = (
    (Alloc("a"), Write("a"), DecRef("a"), Alloc("b")),
    (Alloc("a", 2), Write("a"), UpdateUsage(), DecRef("a")),
)


def test_fine_mode_passes_on_impl() -> None:
    if impl.compiled():  # no Python line to preempt at: refused, and the pure build runs it
        with pytest.raises(FineModeNeedsPure, match="PGALLOC_PURE=1"):
            Scheduler(RandomWalk(0), fine=True)
        lines: list[str] = []
        runs, detail = run_shared_in_pure_child(0.0, lines.append)
        assert detail is None and runs >= MIN_SHARED_RUNS, (runs, detail)
        assert any("preempting at every line" in line for line in lines), lines
        return
    searched = sample(lambda seed: SHARED, Setup(fine=True), ("random",), deadline=0, min_runs=15)
    assert searched.failure is None, searched.failure and searched.failure.problems


# --- Teeth: broken copies of the source --------------------------------------------------

CHECK = textwrap.dedent(
    """
    import sys
    from models.schedule.checks import run_schedules
    result = run_schedules(float(sys.argv[1]), lambda line: None)
    print("PASSED" if result.passed else "FAILED")
    print(result.detail)
    """
)


def _function_source(path: Path, cls: str, method: str) -> tuple[int, int]:
    """The lines of ``cls.method``, or of the module's function ``method`` if ``cls`` is ""."""
    tree = ast.parse(path.read_text())
    scopes = [n.body for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
    for body in [tree.body] if not cls else scopes:
        for item in body:
            if isinstance(item, ast.FunctionDef) and item.name == method:
                return item.lineno, item.end_lineno or item.lineno
    raise LookupError(f"{cls}.{method} not in {path}")


def _edit_method(path: Path, cls: str, method: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` inside ``cls.method`` only; it must occur there exactly once.

    ``cls`` "" names a function of the module.
    """
    first, last = _function_source(path, cls, method)
    lines = path.read_text().splitlines(keepends=True)
    body = "".join(lines[first - 1 : last])
    assert body.count(old) == 1, f"{old!r} occurs {body.count(old)} times in {cls}.{method}"
    lines[first - 1 : last] = [body.replace(old, new)]
    path.write_text("".join(lines))


def _run_check_on(copy: Path, budget: float = 15.0) -> str:
    return run_in_copy(copy, CHECK, str(budget))


def test_a_copy_without_the_decommit_generation_fails_with_a_schedule(tmp_path: Path) -> None:
    copy = copy_source(tmp_path, ("spec", "impl", "models"))
    for module, cls, method, bump in (
        ("memory_file", "MemoryFile", "_mark_decommitted_locked", "state.decommit_generation += 1"),
        ("reclaimer", "Reclaimer", "mark_locked", "s.decommit_generation += 1"),
    ):
        _edit_method(copy / "impl" / f"{module}.py", cls, method, bump, "pass  # planted")
    out = _run_check_on(copy)
    assert out.startswith("FAILED"), out
    assert "pages known committed that the kernel does not hold" in out
    assert "schedule: " in out and "fails again" in out


def test_a_copy_with_inc_ref_unlocked_fails_with_a_schedule(tmp_path: Path) -> None:
    copy = copy_source(tmp_path, ("spec", "impl", "models"))
    for step in ("state.mu_acquire()", "state.mu_release()"):
        _edit_method(copy / "impl" / "operations.py", "", "inc_ref", step, "pass  # planted")
    out = _run_check_on(copy)
    assert out.startswith("FAILED"), out
    assert "shared-references" in out and "schedule: " in out and "fails again" in out


def test_the_unedited_copy_passes(tmp_path: Path) -> None:
    out = _run_check_on(copy_source(tmp_path, ("spec", "impl", "models")), budget=8.0)
    assert out.startswith("PASSED"), out


def test_eviction_threads_run_under_the_scheduler_and_give_back() -> None:
    program = Program(
        "evict",
        ((Alloc("a", 2), Write("a"), MarkEvictable("a")), (Alloc("b"), UpdateUsage())),
    )
    setup = Setup(opts=MemoryFileOpts(DelayedEviction.DISABLED))
    for seed in range(10):
        outcome = run_once(program, RandomWalk(seed), setup)
        assert not outcome.failed, outcome.problems
        assert "pgalloc-evict" in outcome.threads  # started through the runtime, controlled
        assert any(outcome.threads[d.chosen] == "pgalloc-evict" for d in outcome.decisions)

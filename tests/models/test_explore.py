"""Tests of the exhaustive interleaving checker (models/explore).

The checker must find the seed's update_usage defects when they are restored,
with a shortest trace; must catch deliberately broken transitions; and must
find nothing where the specification is right. It found one defect of an
earlier default of the specification (a punch racing an update_usage scan
booked vanished usage as swap); the tests pin that the default no longer has
it and that the seed's behaviour still shows it.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace
from typing import Any

import pytest

from models.explore import (
    ALPHABET,
    CHECKS,
    DEFAULT_SCENARIOS,
    SPEC,
    Result,
    Scenario,
    explore,
    search,
)
from models.explore import scenarios as scenario_module
from models.explore.model import NOW, client_index, normalize
from models.explore.program import (
    Allocate,
    ClientState,
    Decommit,
    DecRef,
    Holding,
    IncRef,
    MarkEvictable,
    Part,
    Program,
    UpdateUsage,
    Write,
    choice,
    script,
)
from models.explore.scenarios import ADJACENT_SEGMENT, STALE_MINCORE, STALE_MINCORE_REUSE
from models.explore.search import kind
from spec import allocator, eviction, usage
from spec.invariants import check_swap_booking, violations
from spec.ranges import find_available_range
from spec.state import SEED, Reclaimer, ReclaimerStep, SeedDefects, State, UsageInfo, UsageScan
from spec.vocabulary import (
    CHUNK_SIZE,
    PAGE_SIZE,
    WRITE,
    DelayedEviction,
    EvictableRange,
    FileRange,
    MemoryFileOpts,
    MemoryKind,
)

KNOWN_NOT_HELD = "pages known committed that the host does not hold"
SWAP_BOOKING = "usage_swapped # exceeds the # committed bytes not known committed"


def violation_of_kind(result: Result, wanted: str) -> tuple[str, ...]:
    """The trace of the violation of kind ``wanted`` (failing the test if there is none)."""
    for violation in result.violations:
        if any(kind(problem) == wanted for problem in violation.problems):
            return violation.trace
    raise AssertionError(f"no violation of kind {wanted!r} in {result.summary()}")


def assert_steps(trace: tuple[str, ...], expected: list[str]) -> None:
    """Each step of ``trace`` starts with the matching ``expected`` prefix."""
    assert len(trace) == len(expected), "\n".join(trace)
    for step, prefix in zip(trace, expected, strict=True):
        assert step.startswith(prefix), f"{step!r} does not start with {prefix!r}"


# --- The seed's defects, restored -------------------------------------------------------


def test_stale_mincore_after_a_decommit_is_found_with_a_shortest_trace() -> None:
    result = explore(STALE_MINCORE, every_kind=True)
    trace = violation_of_kind(result, KNOWN_NOT_HELD)
    assert_steps(
        trace,
        [
            "c2: a = allocate(1 page)",
            "c2: write(a, all)",
            "c1: update_usage(): fstat says 0x1000 bytes",
            "c1: update_usage: mincore [0x3ffff000, 0x40000000) (unlocked) sees [0x3ffff000",
            "c2: decommit(a, all): punches",
            "c2: decommit: markDecommitted",
            "c1: update_usage: records mincore, scan ends",
        ],
    )
    fixed = explore(replace(STALE_MINCORE, defects=SeedDefects()), every_kind=True)
    assert KNOWN_NOT_HELD not in {kind(p) for v in fixed.violations for p in v.problems}


def test_stale_mincore_after_free_reclaim_reuse_is_found_with_a_shortest_trace() -> None:
    result = explore(STALE_MINCORE_REUSE, every_kind=True)
    assert_steps(
        violation_of_kind(result, KNOWN_NOT_HELD),
        [
            "c2: a = allocate(1 page) -> [0x3ffff000, 0x40000000)",
            "c2: write(a, all)",
            "c1: update_usage(): fstat says 0x1000 bytes",
            "c1: update_usage: mincore [0x3ffff000, 0x40000000) (unlocked) sees [0x3ffff000",
            "c2: dec_ref(a)",
            "reclaimer: findReclaimable takes [0x3ffff000, 0x40000000)",
            "reclaimer: punches",
            "reclaimer: markDecommitted",
            "reclaimer: markReclaimed",
            "c2: b = allocate(1 page) -> [0x3ffff000, 0x40000000)",
            "c1: update_usage: records mincore, scan ends",
        ],
    )
    fixed = explore(replace(STALE_MINCORE_REUSE, defects=SeedDefects()), every_kind=True)
    assert KNOWN_NOT_HELD not in {kind(p) for v in fixed.violations for p in v.problems}


def test_adjacent_segment_is_found_with_a_shortest_trace_and_the_default_is_clean() -> None:
    result = explore(ADJACENT_SEGMENT)
    assert result.violation is not None
    assert [kind(p) for p in result.violation.problems] == [KNOWN_NOT_HELD]
    assert_steps(
        result.violation.trace,
        [
            "c2: a = allocate(2 pages) -> [0x3fffe000, 0x40000000)",
            "c2: write(a, last page) [0x3ffff000, 0x40000000)",
            "c1: update_usage(): fstat says 0x1000 bytes; scans [0x3fffe000, 0x40000000)",
            "c1: update_usage: mincore [0x3fffe000, 0x40000000) (unlocked) sees [0x3ffff000",
            "c2: b = inc_ref(a, first page) [0x3fffe000, 0x3ffff000)",
            "c1: update_usage: records mincore, scan ends",
        ],
    )
    clean = explore(replace(ADJACENT_SEGMENT, defects=SeedDefects()))
    assert clean.violation is None and clean.complete and clean.states > 20


def test_the_seed_with_both_defects_is_caught_in_every_seed_scenario() -> None:
    for scenario in (STALE_MINCORE, STALE_MINCORE_REUSE, ADJACENT_SEGMENT):
        assert explore(replace(scenario, defects=SEED)).violation is not None, scenario.name


# The traces replayed by hand through the spec functions, without the checker.


def _written_allocation(pages: int, written: Part, defects: SeedDefects) -> tuple[State, FileRange]:
    state, fr = allocator.allocate(
        allocator.new_memory_file(defects=defects), pages * PAGE_SIZE, MemoryKind.ANONYMOUS
    )
    part = written.of(fr)
    state, _ = allocator.map_internal(state, part, WRITE)
    return allocator.write_mapped(state, part.start, b"\x01"), fr


@pytest.mark.parametrize("defects", [SeedDefects(), SeedDefects(adjacent_segment=True)])
def test_adjacent_segment_trace_replayed_by_hand(defects: SeedDefects) -> None:
    state, fr = _written_allocation(2, Part.LAST, defects)
    state = usage.query_committed(usage.begin_update_usage(state, NOW))
    state = allocator.inc_ref(state, Part.FIRST.of(fr))
    state = usage.apply_committed(state)
    assert state.scan is None
    assert bool(violations(state)) == defects.adjacent_segment


@pytest.mark.parametrize("defects", [SeedDefects(), SeedDefects(stale_mincore=True)])
def test_stale_mincore_trace_replayed_by_hand(defects: SeedDefects) -> None:
    state, fr = _written_allocation(1, Part.ALL, defects)
    state = usage.query_committed(usage.begin_update_usage(state, NOW))
    state = allocator.decommit_mark(allocator.decommit_punch(state, fr), fr)
    state = usage.apply_committed(state)
    if defects.stale_mincore:
        assert any(KNOWN_NOT_HELD in v for v in violations(state))
        return
    assert state.scan is not None, "the default asks mincore again"
    state = usage.apply_committed(usage.query_committed(state))
    assert state.scan is None and not violations(state)
    check_swap_booking(state)


# --- A punch racing a scan (a defect of an earlier default, found by this checker) -------


def test_a_punch_during_a_scan_is_not_booked_as_swap() -> None:
    """The default reads the usage again when the scan ends, under the lock."""
    assert explore(replace(STALE_MINCORE, defects=SeedDefects())).violation is None


def test_the_seed_books_usage_punched_during_a_scan_as_swap() -> None:
    result = explore(STALE_MINCORE, every_kind=True)
    assert_steps(
        violation_of_kind(result, SWAP_BOOKING),
        [
            "c2: a = allocate(1 page)",
            "c2: write(a, all)",
            "c1: update_usage(): fstat says 0x1000 bytes",
            "c2: decommit(a, all): punches",
            "c1: update_usage: mincore [0x3ffff000, 0x40000000) (unlocked) sees nothing",
            "c1: update_usage: records mincore, scan ends; usage_expected=0x0 usage_swapped=0x1000",
        ],
    )


SMALL_SCENARIOS = (
    Scenario("any-2-and-2", (choice(2, *ALPHABET), choice(2, *ALPHABET))),
    Scenario(
        "any-2-and-2-disabled",
        (choice(2, *ALPHABET), choice(2, *ALPHABET)),
        opts=MemoryFileOpts(DelayedEviction.DISABLED),
        punch_failures=True,
    ),
    DEFAULT_SCENARIOS[2],
    STALE_MINCORE,
    STALE_MINCORE_REUSE,
    ADJACENT_SEGMENT,
)


@pytest.mark.parametrize("scenario", SMALL_SCENARIOS, ids=lambda s: s.name)
def test_the_default_spec_passes_small_scenarios(scenario: Scenario) -> None:
    result = explore(replace(scenario, defects=SeedDefects()))
    assert result.violation is None, str(result.violation)
    assert result.complete and result.final_states > 0


# --- Deliberately broken transitions ------------------------------------------------------


def explore_broken(
    programs: tuple[Program, ...],
    opts: MemoryFileOpts = MemoryFileOpts(),
    every_kind: bool = False,
    **changes: Any,
) -> Result:
    """Explore ``programs`` with the spec's transitions replaced by ``changes``."""
    transitions = replace(SPEC, **changes)
    return explore(
        Scenario("broken", programs, opts, transitions=transitions), every_kind=every_kind
    )


def test_a_reclaimer_that_skips_the_punch_hands_out_dirty_pages() -> None:
    result = explore_broken(
        (script(Allocate(1, "a"), Write("a"), DecRef("a"), Allocate(1, "b")),),
        decommit_file=lambda state, error: replace(
            state, reclaimer=Reclaimer(ReclaimerStep.MARKING_DECOMMITTED, state.reclaimer.range)
        ),
    )
    assert result.violation is not None
    assert "does not read as zeroes" in result.violation.problems[0]
    assert_steps(
        result.violation.trace,
        [
            "c1: a = allocate",
            "c1: write(a, all)",
            "c1: dec_ref(a)",
            "reclaimer: findReclaimable takes",
            "reclaimer: punches",
            "reclaimer: markDecommitted",
            "reclaimer: markReclaimed",
            "c1: b = allocate(1 page) -> [0x3ffff000, 0x40000000)",
        ],
    )


def test_a_dec_ref_that_forgets_the_reclaim_set_is_caught_at_once() -> None:
    def forgetful(state: State, fr: FileRange) -> State:
        after = allocator.dec_ref(state, fr)
        return replace(after, reclaim=state.reclaim)

    result = explore_broken((script(Allocate(1, "a"), DecRef("a")),), dec_ref=forgetful)
    assert result.violation is not None
    assert len(result.violation.trace) == 2
    assert any("awaiting reclaim" in p for p in result.violation.problems)


def test_an_allocate_that_reuses_pages_awaiting_reclaim_is_caught() -> None:
    def hasty(state: State, length: int, kind: MemoryKind) -> tuple[State, FileRange]:
        referenced = [fr for fr, info in state.usage if info.refs]  # forgets refs-0 pages
        fr = find_available_range(referenced, state.file_size, length, PAGE_SIZE)
        assert fr is not None
        usage = state.usage.assign(fr, UsageInfo(kind, known_committed=False, refs=1))
        return replace(state, file_size=max(state.file_size, CHUNK_SIZE), usage=usage), fr

    result = explore_broken(
        (script(Allocate(1, "a"), DecRef("a"), Allocate(1, "b")),), allocate=hasty
    )
    assert result.violation is not None
    assert len(result.violation.trace) == 3
    assert any("awaits reclaim" in p for p in result.violation.problems)


def test_an_allocate_that_hands_out_a_live_range_is_caught() -> None:
    def doubling(state: State, length: int, kind: MemoryKind) -> tuple[State, FileRange]:
        after, fr = allocator.allocate(state, length, kind)
        last = state.usage.last()
        if last is None:
            return after, fr
        again = FileRange(last[0].end - length, last[0].end)
        return replace(after, usage=state.usage.assign(again, last[1])), again

    result = explore_broken((script(Allocate(1, "a")), script(Allocate(1, "b"))), allocate=doubling)
    assert result.violation is not None
    assert len(result.violation.trace) == 2
    assert any("handed out twice" in p for p in result.violation.problems)


def test_an_inc_ref_that_does_not_count_is_caught_by_the_holdings() -> None:
    result = explore_broken(
        (script(Allocate(2, "a"), IncRef("a", Part.LAST, "b")),),
        inc_ref=lambda state, fr: state,
    )
    assert result.violation is not None
    assert result.violation.problems == (
        "[0x3ffff000, 0x40000000) has 1 references but 2 holdings",
    )


def test_a_dec_ref_that_does_not_wake_the_reclaimer_is_a_lost_wake_up() -> None:
    def silent(state: State, fr: FileRange) -> State:
        after = allocator.dec_ref(state, fr)
        return replace(after, reclaimer=state.reclaimer)

    result = explore_broken((script(Allocate(1, "a"), DecRef("a")),), dec_ref=silent)
    assert result.violation is not None
    assert any("lost wake-up" in p for p in result.violation.problems)
    # The reclaimer went to sleep before the dec_ref (in either order with the allocate).
    trace = result.violation.trace
    assert len(trace) == 3 and trace[2].startswith("c1: dec_ref(a)")
    assert "reclaimer: findReclaimable finds nothing, waits" in trace[:2]


def test_a_reclaimer_that_leaves_pages_known_committed_is_caught() -> None:
    def sloppy(state: State) -> State:
        taken = state.reclaimer.range
        return replace(state, reclaimer=Reclaimer(ReclaimerStep.MARKING_RECLAIMED, taken))

    result = explore_broken(
        (script(Allocate(1, "a"), Write("a"), DecRef("a")), script(UpdateUsage())),
        every_kind=True,
        mark_range_decommitted=sloppy,
    )
    trace = violation_of_kind(result, KNOWN_NOT_HELD)
    assert len(trace) == 9 and trace[-1].startswith("reclaimer: markDecommitted")
    assert "c2: update_usage: records mincore, scan ends; usage_expected=0x1000" in trace[4]


def test_a_transition_that_raises_is_reported_as_a_panic() -> None:
    def backwards(state: State, user: Hashable) -> State:
        return eviction.deliver_eviction(state, user)[0]  # delivers before taking anything

    result = explore_broken(
        (script(Allocate(1, "a"), MarkEvictable("a")),),
        opts=MemoryFileOpts(DelayedEviction.DISABLED),
        take_eviction=backwards,
    )
    assert result.violation is not None
    assert result.violation.problems == (
        "evictor(c1) raised InvalidArgument: the eviction goroutine of 'c1' holds no range",
    )
    assert result.violation.trace[-1] == "evictor(c1): takes a range"
    assert len(result.violation.trace) == 3


def test_an_eviction_never_started_is_caught_when_everything_stops() -> None:
    def lazy(state: State, user: Hashable, er: EvictableRange) -> State:
        manual = replace(state, opts=MemoryFileOpts(DelayedEviction.MANUAL))
        return replace(eviction.mark_evictable(manual, user, er), opts=state.opts)

    programs = (script(Allocate(1, "a"), MarkEvictable("a")),)
    disabled = MemoryFileOpts(DelayedEviction.DISABLED)
    result = explore_broken(programs, opts=disabled, mark_evictable=lazy)
    assert result.violation is not None
    assert result.violation.problems == (
        "everything stopped, yet evictable ranges were never evicted",
    )
    assert explore_broken(programs, opts=disabled).violation is None


# --- The search itself ----------------------------------------------------------------------


def test_first_mode_reports_one_shortest_violation_and_every_kind_reports_more() -> None:
    first = explore(STALE_MINCORE_REUSE)
    every = explore(STALE_MINCORE_REUSE, every_kind=True)
    assert len(first.violations) == 1
    assert len(every.violations) == 2
    assert first.violation == every.violation
    assert [len(v.trace) for v in every.violations] == sorted(
        len(v.trace) for v in every.violations
    )


def test_progress_lines_and_the_state_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    monkeypatch.setattr(search, "PROGRESS_INTERVAL", 0.0)
    bounded = explore(DEFAULT_SCENARIOS[0], lines.append, max_states=500)
    assert not bounded.complete and 500 <= bounded.states < 600
    assert lines and all(line.startswith("any-3-and-2: ") for line in lines)
    assert "INCOMPLETE" in bounded.summary()


def test_the_model_checker_check_reports_states_and_traces(monkeypatch: pytest.MonkeyPatch) -> None:
    (check,) = CHECKS
    assert check.name == "model-checker"
    clean = replace(ADJACENT_SEGMENT, defects=SeedDefects())
    monkeypatch.setattr(scenario_module, "DEFAULT_SCENARIOS", (clean,))
    lines: list[str] = []
    passed = check.run(1.0, lines.append)
    assert passed.passed and passed.count == explore(clean).states and passed.unit == "states"
    assert any("transitions in all" in line for line in lines)
    monkeypatch.setattr(scenario_module, "DEFAULT_SCENARIOS", (clean, ADJACENT_SEGMENT))
    failed = check.run(1.0, lines.append)
    assert not failed.passed
    assert "scenario adjacent-segment: violated after 6 steps" in failed.detail
    assert "c2: b = inc_ref(a, first page)" in failed.detail


def test_normalize_keeps_only_what_update_usage_compares() -> None:
    state = allocator.new_memory_file()
    scan = UsageScan(0, segment=FileRange(0, PAGE_SIZE), slice=FileRange(0, PAGE_SIZE))
    busy = replace(state, usage_last=123, decommit_generation=7, scan=scan)
    normal = normalize(busy)
    assert normal.usage_last is None and normal.decommit_generation == 2
    assert normal.scan == scan  # not asked yet: nothing to renumber
    stale = replace(scan, committed=state.reclaim, queried_generation=5)
    assert normalize(replace(busy, scan=stale)).scan == replace(stale, queried_generation=1)
    fresh = replace(scan, committed=state.reclaim, queried_generation=7)
    assert normalize(replace(busy, scan=fresh)).scan == replace(fresh, queried_generation=2)
    idle = normalize(replace(state, usage_last=9, decommit_generation=4))
    assert idle == state


def test_program_and_client_state_basics() -> None:
    fr = FileRange(0, 3 * PAGE_SIZE)
    assert Part.FIRST.of(fr) == FileRange(0, PAGE_SIZE)
    assert Part.LAST.of(fr) == FileRange(2 * PAGE_SIZE, 3 * PAGE_SIZE)
    program = script(Allocate(1, "a"), Decommit("a"))
    assert program.next_ops(1) == (Decommit("a"),) and program.next_ops(2) == ()
    assert choice(2, *ALPHABET).next_ops(1) == ALPHABET and choice(2, *ALPHABET).next_ops(2) == ()
    a, b = Holding(FileRange(PAGE_SIZE, 2 * PAGE_SIZE), "a"), Holding(FileRange(0, PAGE_SIZE), "b")
    client = ClientState().with_holding(a).with_holding(b).with_holding(a)
    assert client.holdings == (b, a, a)
    assert client.holding("a") == (a,) and len(client.holding("*")) == 2
    assert client.without_holding(a).holdings == (b, a)
    assert client_index("c2") == 1 and client_index("user") is None
    assert str(IncRef("a", Part.FIRST, "b")) == "b = inc_ref(a, first page)"

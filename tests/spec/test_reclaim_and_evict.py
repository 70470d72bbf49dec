"""The reclaimer and the eviction goroutines of the specification, step by step."""

from __future__ import annotations

import errno
from collections.abc import Hashable
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spec import eviction, reclaimer
from spec.errors import InvalidArgument, InvariantViolation
from spec.invariants import check_invariants
from spec.memory_file import SpecMemoryFile
from spec.state import SEED, ReclaimerStep, SeedDefects, UsageInfo
from spec.vocabulary import (
    CHUNK_SIZE,
    PAGE_SIZE,
    READ,
    READ_WRITE,
    DelayedEviction,
    EvictableRange,
    HostFaults,
    MemoryFileOpts,
    MemoryKind,
)

P = PAGE_SIZE
C = CHUNK_SIZE
ANON = MemoryKind.ANONYMOUS
E = EvictableRange


# --- The reclaimer -------------------------------------------------------------------


def test_reclaimer_takes_the_last_range_first() -> None:
    f = SpecMemoryFile()
    ranges = [f.allocate(P, ANON) for _ in range(4)]  # top-down: C-P, C-2P, C-3P, C-4P
    f.reclaim()  # let it go idle first
    f.dec_ref(ranges[3])
    f.dec_ref(ranges[1])
    assert f.reclaim() == [ranges[1], ranges[3]]  # higher offsets first
    assert f.observation().usage == ((ranges[2], ANON, 1, False), (ranges[0], ANON, 1, False))
    check_invariants(f.state)


def test_reclaim_steps_and_their_split_points() -> None:
    f = SpecMemoryFile()
    fr = f.allocate(2 * P, ANON)
    f.map_internal(fr, READ_WRITE)
    f.write(fr.start, b"secret")
    f.update_usage(10**9)
    f.dec_ref(fr)
    state = f.state
    assert state.reclaimer.step is ReclaimerStep.RUNNING  # signalled (it started RUNNING)
    steps = []
    while reclaimer.reclaimer_runnable(state):
        state = reclaimer.reclaimer_step(state)
        check_invariants(state)
        steps.append((state.reclaimer.step, state.reclaimer.range))
    assert steps == [
        (ReclaimerStep.DECOMMITTING, fr),
        (ReclaimerStep.MARKING_DECOMMITTED, fr),
        (ReclaimerStep.MARKING_RECLAIMED, fr),
        (ReclaimerStep.RUNNING, None),
        (ReclaimerStep.WAITING, None),
    ]
    assert not state.usage and not state.reclaim and not state.reclaimable
    assert state.host.committed.total() == 0
    assert state.accounting[MemoryKind.SYSTEM] == 0


def test_freed_memory_reads_as_zero_when_reallocated() -> None:
    for opts, punch_error in [
        (MemoryFileOpts(), None),
        (MemoryFileOpts(manual_zeroing=True), None),
        (MemoryFileOpts(), errno.EOPNOTSUPP),
    ]:
        f = SpecMemoryFile(opts, faults=HostFaults(punch=punch_error))
        fr = f.allocate(P, ANON)
        f.map_internal(fr, READ_WRITE)
        f.write(fr.start, b"\xaa" * P)
        f.dec_ref(fr)
        f.reclaim()
        again = f.allocate(P, ANON)
        assert again == fr
        assert f.read(again) == bytes(P), (opts, punch_error)


def test_punch_failure_zeroes_but_keeps_usage() -> None:
    f = SpecMemoryFile(faults=HostFaults(punch=errno.EOPNOTSUPP))
    fr = f.allocate(P, ANON)
    f.map_internal(fr, READ_WRITE)
    f.write(fr.start, b"x")
    f.dec_ref(fr)
    assert f.reclaim() == [fr]
    assert f.total_usage() == P  # zeroed by hand: still committed


def test_total_usage_falls_after_reclaim() -> None:
    f = SpecMemoryFile()
    fr = f.allocate(4 * P, ANON)
    f.map_internal(fr, READ_WRITE)
    f.write(fr.start, b"x" * 4 * P)
    assert f.total_usage() == 4 * P
    f.dec_ref(fr)
    assert f.total_usage() == 4 * P  # not until the reclaimer runs
    f.reclaim()
    assert f.total_usage() == 0


def test_mark_reclaimed_refuses_pages_that_are_not_free() -> None:
    f = SpecMemoryFile()
    fr = f.allocate(P, ANON)
    f.dec_ref(fr)
    state = reclaimer.mark_range_decommitted(
        reclaimer.decommit_file(reclaimer.find_reclaimable(f.state))
    )
    # Corrupt the held pages behind the reclaimer's back: markReclaimed must notice.
    broken = replace(state, usage=state.usage.update(fr, lambda _: UsageInfo(ANON, False, 1)))
    with pytest.raises(InvariantViolation):
        reclaimer.mark_reclaimed(broken)


def test_a_step_out_of_turn_is_refused() -> None:
    f = SpecMemoryFile()
    with pytest.raises(InvalidArgument):
        reclaimer.decommit_file(f.state)


def test_destroy_makes_the_reclaimer_exit_and_abandon_work() -> None:
    f = SpecMemoryFile()
    fr = f.allocate(P, ANON)
    f.map_internal(fr, READ)
    f.dec_ref(fr)
    f.destroy()
    assert f.state.reclaimer.step is ReclaimerStep.EXITED
    assert f.state.reclaim.ranges() == (fr,)  # pending reclaim is abandoned, as in the seed


# --- Evictions --------------------------------------------------------------------------


@dataclass(eq=False)
class User:
    """An EvictableMemoryUser that records what it is asked to evict."""

    name: str
    evicted: list[EvictableRange] = field(default_factory=list)

    def evict(self, er: EvictableRange) -> None:
        self.evicted.append(er)

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name


def marked(mode: DelayedEviction, memcg: bool = False) -> tuple[SpecMemoryFile, User]:
    f = SpecMemoryFile(MemoryFileOpts(mode, use_host_memcg_pressure=memcg))
    f.reclaim()  # the reclaimer's first run: nothing to do, it waits
    user = User("u")
    f.mark_evictable(user, E(0, 10))
    f.mark_evictable(user, E(20, 30))
    f.mark_evictable(user, E(5, 25))  # overlaps both: merged
    return f, user


def test_disabled_evicts_at_once() -> None:
    f, user = marked(DelayedEviction.DISABLED)
    assert f.observation().evictable == (("u", (E(0, 30),), True),)
    f.run_evictions()
    assert user.evicted == [E(0, 30)]
    assert f.observation().evictable == ()  # the goroutine deleted the entry


def test_enabled_evicts_when_the_reclaimer_runs_out_of_work() -> None:
    f, user = marked(DelayedEviction.ENABLED)
    assert f.observation().evictable == (("u", (E(0, 30),), False),)
    fr = f.allocate(P, ANON)
    f.dec_ref(fr)
    # mark_evictable signalled the reclaimer; it first reclaims, then, idle, starts evictions.
    assert f.reclaim() == [fr]
    assert f.observation().evictable == (("u", (E(0, 30),), True),)
    f.wait_for_evictions()
    assert user.evicted == [E(0, 30)]


def test_enabled_with_memcg_waits_for_pressure() -> None:
    f, user = marked(DelayedEviction.ENABLED, memcg=True)
    f.reclaim()  # idle, but with memcg pressure the reclaimer does not start evictions
    f.run_evictions()
    assert user.evicted == []
    assert f.memcg_pressure() is True
    f.run_evictions()
    assert user.evicted == [E(0, 30)]
    assert f.memcg_pressure() is False  # nothing left to evict


def test_manual_only_on_start_evictions() -> None:
    f, user = marked(DelayedEviction.MANUAL)
    f.reclaim()
    assert f.memcg_pressure() is False
    f.run_evictions()
    assert user.evicted == []
    f.start_evictions()
    f.run_evictions()
    assert user.evicted == [E(0, 30)]


def test_eviction_goes_from_the_last_range_and_user_by_user() -> None:
    f = SpecMemoryFile(MemoryFileOpts(DelayedEviction.MANUAL))
    a, b = User("a"), User("b")
    f.mark_evictable(b, E(0, 1))
    f.mark_evictable(a, E(0, 1))
    f.mark_evictable(a, E(5, 6))
    f.start_evictions()
    delivered = f.run_evictions()
    assert delivered == [(b, E(0, 1)), (a, E(5, 6)), (a, E(0, 1))]


def test_evict_may_race_with_mark_unevictable() -> None:
    f = SpecMemoryFile(MemoryFileOpts(DelayedEviction.MANUAL))
    f.mark_evictable("u", E(0, 10))
    f.start_evictions()
    state = eviction.take_eviction(f.state, "u")  # taken under the lock...
    state = eviction.mark_unevictable(state, "u", E(0, 10))  # ...then made unevictable...
    state, er = eviction.deliver_eviction(state, "u")  # ...and still delivered
    assert er == E(0, 10)
    check_invariants(state)


def test_mark_unevictable_splits_and_removes_entries() -> None:
    f = SpecMemoryFile(MemoryFileOpts(DelayedEviction.MANUAL))
    f.mark_evictable("u", E(0, 30))
    f.mark_unevictable("u", E(10, 20))
    assert f.observation().evictable == (("u", (E(0, 10), E(20, 30)), False),)
    f.mark_unevictable("u", E(0, 30))
    assert f.observation().evictable == ()
    f.mark_unevictable("nobody", E(0, 1))  # unknown users are ignored


def _seed_mark_unevictable(segments: list[list[int]], er: EvictableRange) -> list[list[int]]:
    """The seed's MarkUnevictable loop over a maximal segment list, ``Isolate`` and all."""
    segs = [list(seg) for seg in segments]
    i = next((n for n, (_, end) in enumerate(segs) if end > er.start), len(segs))
    while i < len(segs) and segs[i][0] < er.end:  # seg.Ok() && seg.Start() < er.End
        start, end = segs[i]
        if start < er.start < end:  # Isolate: CanSplitAt(er.Start)
            segs[i : i + 1] = [[start, er.start], [er.start, end]]
            i += 1
        start, end = segs[i]
        if start < er.end < end:  # Isolate: CanSplitAt(er.End)
            segs[i : i + 1] = [[start, er.end], [er.end, end]]
        del segs[i]  # Remove(seg).NextSegment()
    return segs


@given(
    st.lists(st.integers(0, 12), min_size=0, max_size=8, unique=True).map(sorted),
    st.integers(0, 12),
    st.integers(0, 4),
)
def test_mark_unevictable_is_the_seeds_loop_but_for_empty_ranges(
    bounds: list[int], start: int, length: int
) -> None:
    pairs = [bounds[n : n + 2] for n in range(0, len(bounds) - 1, 2)]
    er = E(start, start + length)
    seed = _seed_mark_unevictable(pairs, er)
    for defects in (SeedDefects(), SEED):
        f = SpecMemoryFile(MemoryFileOpts(DelayedEviction.MANUAL), defects=defects)
        for lo, hi in pairs:
            f.mark_evictable("u", E(lo, hi))
        f.mark_unevictable("u", er)
        ranges = f.observation().evictable
        got = [[r.start, r.end] for r in ranges[0][1]] if ranges else []
        if defects == SEED or length:
            assert got == seed, (pairs, er, defects)
        else:  # D4: an empty range removes nothing
            assert got == pairs


def test_empty_unmark_inside_a_range_drops_its_tail_only_in_the_seed() -> None:
    for defects, kept in ((SeedDefects(), E(0, 32)), (SEED, E(0, 16))):
        f = SpecMemoryFile(defects=defects)
        f.mark_evictable("b", E(0, 32))
        f.mark_unevictable("b", E(16, 16))
        assert f.observation().evictable == (("b", (kept,), False),)


def test_an_evicting_user_keeps_its_entry_until_its_goroutine_ends() -> None:
    f = SpecMemoryFile(MemoryFileOpts(DelayedEviction.MANUAL))
    f.mark_evictable("u", E(0, 10))
    f.start_evictions()
    f.mark_all_unevictable("u")
    assert f.observation().evictable == (("u", (), True),)
    assert f.run_evictions() == []
    assert f.observation().evictable == ()


def test_marking_an_empty_range_creates_an_entry_as_in_the_seed() -> None:
    f = SpecMemoryFile(MemoryFileOpts(DelayedEviction.MANUAL))
    f.mark_evictable("u", E(3, 3))
    assert f.observation().evictable == (("u", (), False),)
    f.start_evictions()
    f.run_evictions()
    assert f.observation().evictable == ()


def test_evictions_stop_once_destroyed() -> None:
    f = SpecMemoryFile(MemoryFileOpts(DelayedEviction.DISABLED))
    user = User("u")
    f.mark_evictable(user, E(0, 10))
    f.destroy()
    assert user.evicted == []


def test_users_are_any_hashable() -> None:
    users: list[Hashable] = [1, ("a", 2), "name"]
    f = SpecMemoryFile(MemoryFileOpts(DelayedEviction.MANUAL))
    for user in users:
        f.mark_evictable(user, E(0, 1))
    assert [label for label, _, _ in f.observation().evictable] == sorted(str(u) for u in users)

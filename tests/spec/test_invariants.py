"""check_invariants has teeth: each deliberately broken state is caught.

And the random workload of ``pgalloc check`` catches a deliberately broken
transition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from models.workload import WorkloadFailure, run_workload
from spec import allocator
from spec.errors import InvariantViolation
from spec.host import Host
from spec.invariants import check_invariants, violations
from spec.memory_file import SpecMemoryFile
from spec.rangemap import RangeMap, range_set
from spec.state import EvictableUser, State, UsageInfo
from spec.vocabulary import CHUNK_SIZE, PAGE_SIZE, READ_WRITE, EvictableRange, FileRange, MemoryKind

P = PAGE_SIZE
C = CHUNK_SIZE
ANON = MemoryKind.ANONYMOUS


def healthy() -> State:
    """A state with live, known-committed, freed and evictable parts."""
    f = SpecMemoryFile()
    a = f.allocate(2 * P, ANON)
    f.allocate(P, MemoryKind.TMPFS)
    f.map_internal(a, READ_WRITE)
    f.write(a.start, b"x" * 2 * P)
    f.update_usage(10**9)
    f.dec_ref(FileRange(a.start + P, a.end))
    f.mark_evictable("u", EvictableRange(0, 5))
    check_invariants(f.state)
    return f.state


LIVE = UsageInfo(ANON, known_committed=False, refs=1)

BREAKAGES: dict[str, Callable[[State], State]] = {
    "file size not a power-of-two chunk multiple": lambda s: replace(s, file_size=3 * C),
    "usage not merged": lambda s: replace(
        s, usage=RangeMap(((0, P, LIVE), (P, 2 * P, LIVE), *s.usage.entries))
    ),
    "usage overlapping": lambda s: replace(s, usage=RangeMap(((0, 2 * P, LIVE), (P, 3 * P, LIVE)))),
    "usage not page-aligned": lambda s: replace(s, usage=RangeMap(((0, 100, LIVE),))),
    "usage past the file": lambda s: replace(s, usage=RangeMap(((C, C + P, LIVE),))),
    "freed pages forgotten by reclaim": lambda s: replace(s, reclaim=RangeMap(), reclaimable=False),
    "live pages in reclaim": lambda s: replace(
        s, reclaim=range_set([FileRange(C - 3 * P, C - 2 * P)])
    ),
    "accounting off": lambda s: replace(s, accounting=(0, 1, 0, 0, 0, 0)),
    "usage_expected off": lambda s: replace(s, usage_expected=s.usage_expected + P),
    "negative swap": lambda s: replace(s, usage_swapped=-P),
    "known committed but not on the host": lambda s: replace(s, host=Host()),
    "data in an uncommitted page": lambda s: replace(
        s, host=replace(s.host, data=((0, b"\x01" + bytes(P - 1)),))
    ),
    "reclaim pending but not reclaimable": lambda s: replace(s, reclaimable=False),
    "user listed twice": lambda s: replace(s, evictable=(*s.evictable, *s.evictable)),
    "range in flight without a goroutine": lambda s: replace(
        s, evictable=(("u", EvictableUser(in_flight=EvictableRange(0, 1))),)
    ),
    "mapped chunk past the file": lambda s: replace(s, mapped_chunks=frozenset({7})),
    "file closed while the reclaimer runs": lambda s: replace(s, file_open=False),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES.values()), ids=list(BREAKAGES))
def test_each_broken_state_is_caught(breakage: Callable[[State], State]) -> None:
    broken = breakage(healthy())
    assert violations(broken)
    with pytest.raises(InvariantViolation):
        check_invariants(broken)


def test_a_dec_ref_that_forgets_the_reclaim_set_is_caught_by_the_workload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = allocator.dec_ref

    def forgetful(state: State, fr: FileRange) -> State:
        return replace(original(state, fr), reclaim=state.reclaim)

    monkeypatch.setattr(allocator, "dec_ref", forgetful)
    with pytest.raises(WorkloadFailure, match="awaiting reclaim"):
        for seed in range(20):
            run_workload(seed, 100)


def test_an_allocate_that_skips_manual_zeroing_is_caught_by_the_workload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = allocator.take_range

    def lazy(state: State, fr: FileRange, kind: MemoryKind, map_error: int | None) -> State:
        unzeroed = replace(state, opts=replace(state.opts, manual_zeroing=False))
        return replace(original(unzeroed, fr, kind, map_error), opts=state.opts)

    monkeypatch.setattr(allocator, "take_range", lazy)
    with pytest.raises(WorkloadFailure, match="does not read as zeroes"):
        for seed in range(200):
            run_workload(seed, 200)

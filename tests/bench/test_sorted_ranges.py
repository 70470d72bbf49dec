"""The measured alternatives of bench/bench_sets.py hold the same sets as ``GapSet``.

Otherwise the comparison would time different work.
"""

from __future__ import annotations

from hypothesis import given

from bench.sorted_ranges import KeyedRanges, OrderedRanges
from impl.gaps import GapSet
from tests.strategies import range_operations


@given(range_operations(limit=200))
def test_the_alternatives_hold_what_gapset_holds(operations: list[tuple[str, int, int]]) -> None:
    gaps, ordered, keyed = GapSet(load=4), OrderedRanges(), KeyedRanges()
    for op, start, end in operations:
        if op == "pop_last":
            assert ordered.pop_last() == keyed.pop_last() == gaps.pop_last()
        else:
            for ranges in (gaps, ordered, keyed):
                getattr(ranges, op)(start, end)
        ordered._check()
        assert list(ordered) == list(keyed) == list(gaps)


def test_a_broken_alternative_is_caught() -> None:
    """``_check`` finds touching ranges (what an add that forgot to merge would leave)."""
    ordered = OrderedRanges()
    ordered.add(0, 10)
    ordered._ends[10] = 20  # planted: a range that touches the one before
    try:
        ordered._check()
    except AssertionError as failure:
        assert "touches" in str(failure)
    else:
        raise AssertionError("_check accepted touching ranges")

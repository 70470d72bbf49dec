"""The reclaim and evictable sets as sortedcontainers would hold them: the measured alternative.

The reclaim set and each user's evictable set need ordered ranges, merging
on insert, subtraction, and taking the last range; nothing of the gap
bookkeeping that :class:`impl.gaps.GapSet` keeps for the range search.
:class:`OrderedRanges` keeps them in a ``SortedDict`` (start -> end),
:class:`KeyedRanges` in a ``SortedKeyList`` of ``(start, end)``; both use
``irange`` (positional access would rebuild ``SortedList``'s index after
every change). ``bench/bench_sets.py`` measures both against ``GapSet``;
docs/architecture.md gives the figures and the decision (GapSet everywhere). Ranges are half-open,
non-empty, and never touch (an add merges with every range it meets or
touches). Complexities, with ``n`` ranges: ``add`` and ``remove``
O(log n + ranges absorbed or cut); ``last`` and ``pop_last`` O(log n).
"""

from __future__ import annotations

from collections.abc import Iterator

from sortedcontainers import SortedDict, SortedKeyList


class OrderedRanges:
    """A set of offsets, stored as sorted, disjoint, non-touching ranges.

    >>> rs = OrderedRanges()
    >>> rs.add(0, 10); rs.add(10, 20); rs.remove(5, 7)
    >>> list(rs)
    [(0, 5), (7, 20)]
    """

    __slots__ = ("_ends",)

    def __init__(self) -> None:
        self._ends: SortedDict[int, int] = SortedDict()
        """start -> end of each range."""

    def __bool__(self) -> bool:
        return bool(self._ends)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """The ranges in order, as ``(start, end)``; the set must not change meanwhile."""
        return iter(self._ends.items())

    def last(self) -> tuple[int, int] | None:
        """The highest range."""
        return self._ends.peekitem(-1) if self._ends else None

    def pop_last(self) -> tuple[int, int] | None:
        """Remove and return the highest range."""
        return self._ends.popitem() if self._ends else None

    def clear(self) -> None:
        self._ends.clear()

    def add(self, start: int, end: int) -> None:
        """Union with ``[start, end)`` (no-op if empty)."""
        if start >= end:
            return
        ends = self._ends
        for before in ends.irange(maximum=start, reverse=True):  # the range at or before start
            before_end = ends[before]
            if before_end >= start:  # it reaches start: the new range extends it
                if before_end >= end:
                    return
                start = before
            break
        for after in list(ends.irange(minimum=start, maximum=end)):  # ranges the new one reaches
            end = max(end, ends.pop(after))
        ends[start] = end

    def remove(self, start: int, end: int) -> None:
        """Difference with ``[start, end)`` (no-op if empty)."""
        if start >= end:
            return
        ends = self._ends
        for before in ends.irange(maximum=start, reverse=True):  # the range at or before start
            before_end = ends[before]
            if before_end > start:
                if before < start:
                    ends[before] = start
                else:
                    del ends[before]
                if before_end > end:
                    ends[end] = before_end
                    return
            break
        for after in list(ends.irange(minimum=start, maximum=end, inclusive=(False, False))):
            after_end = ends.pop(after)
            if after_end > end:
                ends[end] = after_end

    def _check(self) -> None:
        """Assert the invariants: non-empty ranges, in order, never touching."""
        previous_end = -1
        for start, end in self._ends.items():
            assert start < end, f"empty range at {start}"
            assert start > previous_end, f"range at {start} touches or overlaps the one before"
            previous_end = end


class KeyedRanges:
    """:class:`OrderedRanges` on a ``SortedKeyList`` of ``(start, end)`` tuples, by start."""

    __slots__ = ("_ranges",)

    def __init__(self) -> None:
        self._ranges: SortedKeyList[tuple[int, int], int] = SortedKeyList(key=_start)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self._ranges)

    def pop_last(self) -> tuple[int, int] | None:
        return self._ranges.pop() if self._ranges else None

    def add(self, start: int, end: int) -> None:
        """Union with ``[start, end)`` (no-op if empty)."""
        if start >= end:
            return
        ranges = self._ranges
        for before in ranges.irange_key(max_key=start, reverse=True):
            if before[1] >= start:
                if before[1] >= end:
                    return
                start = before[0]
            break
        for after in list(ranges.irange_key(min_key=start, max_key=end)):
            end = max(end, after[1])
            ranges.remove(after)
        ranges.add((start, end))

    def remove(self, start: int, end: int) -> None:
        """Difference with ``[start, end)`` (no-op if empty)."""
        if start >= end:
            return
        ranges = self._ranges
        for before in ranges.irange_key(max_key=start, reverse=True):
            if before[1] > start:
                ranges.remove(before)
                if before[0] < start:
                    ranges.add((before[0], start))
                if before[1] > end:
                    ranges.add((end, before[1]))
                    return
            break
        for after in list(ranges.irange_key(min_key=start, max_key=end, inclusive=(False, False))):
            ranges.remove(after)
            if after[1] > end:
                ranges.add((end, after[1]))


def _start(r: tuple[int, int]) -> int:
    return r[0]

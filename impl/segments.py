"""``SegmentSet``: the usage set, disjoint ranges mapped to values, with its gaps tracked.

gVisor keeps the usage set in a B-tree whose nodes record their largest gap,
so ``PrevLargeEnoughGap`` costs O(log n). Here the segments live in sorted
leaves (the engine of :mod:`impl.leaves`, after sortedcontainers' ``SortedList``:
lists of at most ``2 * load`` entries, split in half when full, joined when
below ``load / 2``, located with two C-level bisects over ``_lasts`` and the
leaf) as three parallel lists
of starts, ends and values, so no tuple is built per segment. The *gaps*, the
complement of the segments in ``[0, MAX_KEY)``, are a separate
:class:`impl.gaps.GapSet`, which keeps a bound on the largest gap of each of
its leaves and a max tree over them: finding the previous gap large enough
costs O(log n) (see :mod:`impl.gaps`). Keeping only the non-empty gaps there
(rather than one gap before every segment, as gVisor does) means that runs of
adjacent segments with different values never slow the search down.

``SortedList`` itself is not used for the segments: it stores one key per
entry, offers no hook to keep per-leaf gap bounds in step with its leaves, and
its ``add``/``remove`` cost about 1.8 us together (measured here), most of an
allocation's budget, where replacing a start or an end in place, which is what
most allocations and frees do, costs one list store.

Allocation is top-down, so ``insert`` first tries the segment the previous
insert touched (a *finger*) as the new range's upper neighbour, checking it in
O(1) before falling back to bisection.

The set is kept maximally merged at all times: two segments that touch hold
different values. Complexities, with ``n`` segments and leaves of ``B``:
``insert`` O(log n) (plus a C-level O(B) memmove); ``update``/``remove``/
``segments`` O(log n + B + k) for ``k`` segments touched; ``lower_bound``,
``first_gap`` O(log n); ``find_available_range`` O(log n) per gap visited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from impl.gaps import MAX_KEY, GapSet
from impl.leaves import DEFAULT_LOAD, Leaves, bisect_right

__all__ = ["DEFAULT_LOAD", "MAX_KEY", "GapSet", "SegmentSet"]

V = TypeVar("V")


class SegmentSet(Leaves, Generic[V]):
    """Disjoint ranges ``[start, end)`` of offsets in ``[0, MAX_KEY]`` mapped to values.

    Values are immutable and compared with ``==``. The set must not change
    while it is being iterated (``RuntimeError``, like a dict).

    >>> usage = SegmentSet()
    >>> usage.insert(0, 10, "a"); usage.insert(10, 20, "a"); usage.insert(30, 40, "b")
    >>> list(usage), usage.first_gap(0, 40)
    ([(0, 20, 'a'), (30, 40, 'b')], (20, 30))
    """

    __slots__ = ("_finger_index", "_finger_leaf", "_gaps", "_len", "_starts", "_vals", "_version")

    def __init__(self, *, load: int = DEFAULT_LOAD) -> None:
        self._starts: list[list[int]] = []
        self._ends: list[list[int]] = []
        self._vals: list[list[V]] = []
        super().__init__(load, (self._starts, self._ends, self._vals))
        self._len = 0
        self._version = 0
        # The position of the segment the last insert made or extended (two
        # ints, not a tuple: compiled, they are stored unboxed).
        self._finger_leaf = 0
        self._finger_index = 0
        self._gaps = GapSet(load=load)
        self._gaps.add(0, MAX_KEY)

    def __len__(self) -> int:
        """The number of segments."""
        return self._len

    def __iter__(self) -> Iterator[tuple[int, int, V]]:
        """Every segment as ``(start, end, value)``, in order."""
        version = self._version
        for starts, ends, vals in zip(self._starts, self._ends, self._vals, strict=True):
            for segment in zip(starts, ends, vals, strict=True):
                if self._version != version:
                    raise RuntimeError("SegmentSet changed during iteration")
                yield segment

    # --- queries ----------------------------------------------------------------------

    def find_available_range(
        self, file_size: int, length: int, alignment: int
    ) -> tuple[int, int] | None:
        """The seed's ``findAvailableRange`` over this set's gaps: ``(start, end)`` or None.

        Returns what ``spec.ranges.find_available_range`` returns for every
        input meeting its preconditions (``alignment`` a power of two,
        ``length`` a non-zero page multiple, ``0 <= file_size <= INT64_MAX``,
        every segment below ``file_size``); the caller validates them.
        O(log n) per gap visited.
        """
        lasts = self._lasts
        return self._gaps.find_available_range(
            file_size, length, alignment, lasts[-1] if lasts else 0
        )

    def first_gap(self, start: int, end: int) -> tuple[int, int] | None:
        """The first unallocated part of ``[start, end)``, None if all of it is allocated.

        O(log n).
        """
        return self._gaps.first_within(start, end)

    def lower_bound(self, position: int) -> tuple[int, int, V] | None:
        """The first segment ending after ``position``, or None.

        O(log n); O(1) right after an insert there (see :meth:`_position_after`).
        """
        b, i = self._position_after(position)
        if b == len(self._lasts):
            return None
        return self._starts[b][i], self._ends[b][i], self._vals[b][i]

    def segments(self, start: int, end: int) -> list[tuple[int, int, V]]:
        """The segments overlapping ``[start, end)``, clipped to it, in order.

        O(log n + k) for ``k`` segments returned.
        """
        out: list[tuple[int, int, V]] = []
        if start >= end:
            return out
        count = len(self._lasts)
        b = bisect_right(self._lasts, start)
        if b == count:
            return out
        ends = self._ends[b]
        i = bisect_right(ends, start)
        segment_end = ends[i]
        if segment_end >= end:
            # One segment reaches past end (the usual case: a whole allocation),
            # so it is the only part: what the loop below returns, without it.
            segment_start = self._starts[b][i]
            if segment_start < end:
                out.append(
                    (segment_start if segment_start > start else start, end, self._vals[b][i])
                )
            return out
        while b < count:
            starts = self._starts[b]
            ends = self._ends[b]
            vals = self._vals[b]
            for j in range(i, len(starts)):
                segment_start = starts[j]
                if segment_start >= end:
                    return out
                segment_end = ends[j]
                out.append(
                    (
                        segment_start if segment_start > start else start,
                        segment_end if segment_end < end else end,
                        vals[j],
                    )
                )
            b += 1
            i = 0
        return out

    # --- updates ----------------------------------------------------------------------

    def insert(self, start: int, end: int, value: V) -> None:
        """Map ``[start, end)``, which must be non-empty and entirely free, to ``value``.

        Merges with equal neighbours. Raises ValueError, changing nothing, if
        the range is empty or not free. O(log n).
        """
        self._gaps.take(start, end)  # validates first
        self._version += 1
        lasts = self._lasts
        count = len(lasts)
        # (b, i): the next segment, the first ending after start. Allocations go
        # top-down, so it is usually the segment the last insert touched (the
        # finger), with the previous segment in the same leaf (or none at all):
        # checking that costs less than two bisects. The finger may be stale,
        # even past the last leaf (the set may have shrunk since).
        b = self._finger_leaf
        i = self._finger_index
        if not (
            b < count
            and i < len(ends := self._ends[b])
            and start < ends[i]
            and (ends[i - 1] <= start if i else not b)
        ):
            b = bisect_right(lasts, start)
            if b < count:
                ends = self._ends[b]
                i = bisect_right(ends, start)
            else:
                i = 0
        if b < count and (i or not b):
            # The common case: the next segment at i in leaf b, the previous one
            # (if any: at the very start there is none) at i - 1.
            starts = self._starts[b]
            vals = self._vals[b]
            # (Values equal by identity first: equal values are usually one
            # object here, and compiled, == on a generic value is a rich compare.)
            if i and ends[i - 1] == start and (vals[i - 1] is value or vals[i - 1] == value):
                self._finger_leaf = b
                self._finger_index = i - 1
                if starts[i] == end and (vals[i] is value or vals[i] == value):
                    # Fills a hole exactly: the previous segment's start, the next
                    # one's end. (pop, not del: compiled, del boxes the index and
                    # dispatches; and no int moves: compiled, it would be re-boxed.)
                    starts.pop(i)
                    ends.pop(i - 1)
                    vals.pop(i)
                    self._len -= 1
                    if len(ends) < self._load >> 1:  # (the leaf's last end is unchanged)
                        self._after_delete(b)
                else:
                    ends[i - 1] = end
            elif starts[i] == end and (vals[i] is value or vals[i] == value):
                starts[i] = start
                self._finger_leaf = b
                self._finger_index = i
            else:
                starts.insert(i, start)
                ends.insert(i, end)
                vals.insert(i, value)
                self._len += 1
                self._finger_leaf = b
                self._finger_index = i
                if len(starts) > 2 * self._load:
                    self._split(b)
            return
        self._insert_at_leaf_start(b, start, end, value)

    def _insert_at_leaf_start(self, b: int, start: int, end: int, value: V) -> None:
        """Insert where the next segment, if any, starts leaf ``b`` (the rest of insert)."""
        lasts = self._lasts
        count = len(lasts)
        merge_next = b < count and self._starts[b][0] == end and self._vals[b][0] == value
        if b:  # the previous segment ends leaf b - 1
            prev_ends = self._ends[b - 1]
            merge_prev = prev_ends[-1] == start and self._vals[b - 1][-1] == value
        else:
            merge_prev = False
        if merge_prev:
            self._finger_leaf = b - 1
            self._finger_index = len(prev_ends) - 1
            if merge_next:  # the next segment joins the previous one
                prev_ends[-1] = lasts[b - 1] = self._ends[b][0]
                del self._starts[b][0], self._ends[b][0], self._vals[b][0]
                self._len -= 1
                self._after_delete(b)
            else:
                prev_ends[-1] = lasts[b - 1] = end
        elif merge_next:
            self._starts[b][0] = start
            self._finger_leaf = b
            self._finger_index = 0
        else:
            self._len += 1
            if b == count:
                self._append(start, end, value)
                self._finger_leaf = len(lasts) - 1
                self._finger_index = len(self._ends[-1]) - 1
            else:
                self._starts[b].insert(0, start)
                self._ends[b].insert(0, end)
                self._vals[b].insert(0, value)
                self._finger_leaf = b
                self._finger_index = 0
                if len(self._starts[b]) > 2 * self._load:
                    self._split(b)

    def update(self, start: int, end: int, fn: Callable[[V], V]) -> None:
        """Replace each value ``v`` on ``[start, end)`` by ``fn(v)``; gaps stay gaps.

        Segments are split at ``start`` and ``end`` and the result merged,
        including with the neighbours beyond the boundaries. ``fn`` is called
        once per segment part covered, in order, before anything changes.
        O(log n + B + k) for ``k`` segments touched.
        """
        if start >= end:
            return
        b0, i0 = self._position_after(start)
        if b0 == len(self._lasts):
            return
        ends = self._ends[b0]
        if self._starts[b0][i0] >= end:
            return
        if ends[i0] >= end and self._update_one(b0, i0, start, end, fn):
            return
        b1, i1 = self._end_position(b0, i0, end)
        # One more segment on each side, to merge across the boundaries.
        if i0:
            i0 -= 1
        elif b0:
            b0 -= 1
            i0 = len(self._ends[b0]) - 1
        if i1 < len(self._ends[b1]):
            i1 += 1
        elif b1 + 1 < len(self._lasts):
            b1 += 1
            i1 = 1
        old_starts, old_ends, old_vals = self._window(b0, i0, b1, i1)
        new_starts: list[int] = []
        new_ends: list[int] = []
        new_vals: list[V] = []

        def put(piece_start: int, piece_end: int, value: V) -> None:
            if new_ends and new_ends[-1] == piece_start and new_vals[-1] == value:
                new_ends[-1] = piece_end
            else:
                new_starts.append(piece_start)
                new_ends.append(piece_end)
                new_vals.append(value)

        for segment_start, segment_end, value in zip(old_starts, old_ends, old_vals, strict=True):
            if segment_end <= start or segment_start >= end:
                put(segment_start, segment_end, value)
                continue
            if segment_start < start:
                put(segment_start, start, value)
            put(max(segment_start, start), min(segment_end, end), fn(value))
            if segment_end > end:
                put(end, segment_end, value)
        self._version += 1
        self._len += len(new_starts) - len(old_starts)
        if b0 == b1:  # within one leaf (the engine's splice, without its loops)
            self._starts[b0][i0:i1] = new_starts
            self._ends[b0][i0:i1] = new_ends
            self._vals[b0][i0:i1] = new_vals
            self._repair(b0)
        else:
            self._splice(b0, i0, b1, i1, (new_starts, new_ends, new_vals))

    def _update_one(self, b: int, i: int, start: int, end: int, fn: Callable[[V], V]) -> bool:
        """update() where segment ``(b, i)`` is the only one overlapping ``[start, end)``.

        Handles it in place and returns True unless a merge would cross into
        another leaf (then changes nothing and returns False).
        """
        starts = self._starts[b]
        ends = self._ends[b]
        vals = self._vals[b]
        segment_start = starts[i]
        segment_end = ends[i]  # at least end
        last = len(starts) - 1
        # A part reaching an end of the segment may merge with the neighbour
        # there, which must then be in this leaf (or absent).
        if (start <= segment_start and not i and b) or (
            end == segment_end and i == last and b + 1 < len(self._lasts)
        ):
            return False
        value = vals[i]
        new_value = fn(value)
        self._version += 1
        if new_value == value:
            return True  # nothing changes (the set is merged: no merge can happen either)
        # After the part: cut off the rest of the segment, or join the next segment.
        if end < segment_end:
            starts.insert(i + 1, end)
            ends.insert(i, end)
            vals.insert(i, value)
        elif i < last and starts[i + 1] == end and vals[i + 1] == new_value:
            ends[i] = ends[i + 1]
            del starts[i + 1], ends[i + 1], vals[i + 1]
        # Before the part: cut off the start of the segment, or join the previous
        # one (the part then starts at segment_start: start may lie in a gap).
        if start > segment_start:
            starts.insert(i + 1, start)
            ends.insert(i, start)
            vals.insert(i + 1, new_value)
        elif i and ends[i - 1] == segment_start and vals[i - 1] == new_value:
            ends[i - 1] = ends[i]
            del starts[i], ends[i], vals[i]
        else:
            vals[i] = new_value
        size = len(starts)
        self._len += size - last - 1
        # The leaf's last end is unchanged; it may need splitting or joining.
        if size > 2 * self._load or (size < self._load >> 1 and len(self._lasts) > 1):
            self._repair(b)
        return True

    def remove(self, start: int, end: int) -> None:
        """Unmap ``[start, end)`` (whatever part of it is mapped).

        O(log n + B + k) for ``k`` segments removed.
        """
        if start >= end:
            return
        b0, i0 = self._position_after(start)
        if b0 == len(self._lasts):
            return
        ends = self._ends[b0]
        if self._starts[b0][i0] >= end:
            return
        if ends[i0] >= end:
            self._remove_within(b0, i0, start, end)
            return
        b1, i1 = self._end_position(b0, i0, end)
        first_start = self._starts[b0][i0]
        first_value = self._vals[b0][i0]
        last_end = self._ends[b1][i1 - 1]
        last_value = self._vals[b1][i1 - 1]
        new_starts = []
        new_ends = []
        new_vals = []
        if first_start < start:
            new_starts.append(first_start)
            new_ends.append(start)
            new_vals.append(first_value)
        if last_end > end:
            new_starts.append(end)
            new_ends.append(last_end)
            new_vals.append(last_value)
        removed = self._count(b0, i0, b1, i1)
        self._version += 1
        self._len += len(new_starts) - removed
        if b0 == b1:  # within one leaf (the engine's splice, without its loops)
            self._starts[b0][i0:i1] = new_starts
            self._ends[b0][i0:i1] = new_ends
            self._vals[b0][i0:i1] = new_vals
            self._repair(b0)
        else:
            self._splice(b0, i0, b1, i1, (new_starts, new_ends, new_vals))
        self._gaps.add(max(start, first_start), min(end, last_end))

    def _remove_within(self, b: int, i: int, start: int, end: int) -> None:
        """remove() where segment ``(b, i)`` is the only one overlapping ``[start, end)``."""
        starts = self._starts[b]
        ends = self._ends[b]
        segment_start = starts[i]
        segment_end = ends[i]
        self._version += 1
        if segment_start < start:
            ends[i] = start
            if segment_end > end:  # a hole in the middle: two segments remain
                starts.insert(i + 1, end)
                ends.insert(i + 1, segment_end)
                self._vals[b].insert(i + 1, self._vals[b][i])
                self._len += 1
                if len(starts) > 2 * self._load:
                    self._split(b)
            elif i == len(ends) - 1:
                self._lasts[b] = start
        elif segment_end > end:
            starts[i] = end
        else:
            starts.pop(i)  # (pop, not del: compiled, del boxes the index and dispatches)
            ends.pop(i)
            self._vals[b].pop(i)
            self._len -= 1
            if not ends or (len(ends) < self._load >> 1 and len(self._lasts) > 1):
                self._after_delete(b)
            elif i == len(ends):
                self._lasts[b] = ends[-1]
        self._gaps.add(
            segment_start if segment_start > start else start,
            segment_end if segment_end < end else end,
        )

    # --- checking ---------------------------------------------------------------------

    def check(self) -> None:
        """Verify every internal invariant, the gaps' included (AssertionError). O(n)."""
        count = len(self._lasts)
        assert len(self._starts) == len(self._ends) == len(self._vals) == count
        total = 0
        previous_end = 0
        previous_value: tuple[V] | None = None  # None before the first segment
        gaps = []
        for b in range(count):
            starts = self._starts[b]
            ends = self._ends[b]
            vals = self._vals[b]
            assert 0 < len(starts) <= 2 * self._load, "leaf size"
            assert len(ends) == len(vals) == len(starts)
            assert self._lasts[b] == ends[-1], "stale leaf end"
            for start, end, value in zip(starts, ends, vals, strict=True):
                assert previous_end <= start < end <= MAX_KEY, "unsorted, empty or overlapping"
                if previous_end < start:
                    gaps.append((previous_end, start))
                elif previous_value is not None:
                    assert previous_value[0] != value, "touching segments with equal values"
                previous_end = end
                previous_value = (value,)
            total += len(starts)
        assert total == self._len, "stale length"
        if previous_end < MAX_KEY:
            gaps.append((previous_end, MAX_KEY))
        self._gaps.check()
        assert list(self._gaps) == gaps, "gaps are not the complement of the segments"

    # --- internals ----------------------------------------------------------------------

    def _position_after(self, position: int) -> tuple[int, int]:
        """The position of the first segment ending after ``position`` (or ``(leaves, 0)``).

        Tries the finger first: a lookup tends to follow an insert there (an
        allocation is freed, then reclaimed), and checking it costs less than
        two bisects compiled. (A stale finger only fails the check.)
        """
        lasts = self._lasts
        b = self._finger_leaf
        i = self._finger_index
        if (
            b < len(lasts)
            and i < len(ends := self._ends[b])
            and position < ends[i]
            and (ends[i - 1] <= position if i else not b or lasts[b - 1] <= position)
        ):
            return b, i
        b = bisect_right(lasts, position)
        if b == len(lasts):
            return b, 0
        return b, bisect_right(self._ends[b], position)

    def _end_position(self, b: int, i: int, position: int) -> tuple[int, int]:
        """Where the segments starting before ``position`` end, as (leaf, index past them).

        ``(b, i)`` is such a segment. The index returned may be the leaf's
        length. Usually ``position`` falls in the next segment or two, so look
        there before bisecting.
        """
        for _ in range(2):
            if i + 1 < len(self._starts[b]):
                i += 1
            elif b + 1 < len(self._lasts):
                b += 1
                i = 0
            else:
                return b, i + 1
            if self._starts[b][i] >= position:
                return (b, i) if i else (b - 1, len(self._starts[b - 1]))
        b, i = self._position_after(position)
        if b < len(self._lasts) and self._starts[b][i] < position:
            i += 1  # this segment contains position
        if i == 0:
            b -= 1
            i = len(self._ends[b])
        return b, i

    def _window(self, b0: int, i0: int, b1: int, i1: int) -> tuple[list[int], list[int], list[V]]:
        """Copies of the entries from ``(b0, i0)`` to ``(b1, i1)`` (excluded)."""
        if b0 == b1:
            return self._starts[b0][i0:i1], self._ends[b0][i0:i1], self._vals[b0][i0:i1]
        starts = self._starts[b0][i0:]
        ends = self._ends[b0][i0:]
        vals = self._vals[b0][i0:]
        for b in range(b0 + 1, b1):
            starts += self._starts[b]
            ends += self._ends[b]
            vals += self._vals[b]
        starts += self._starts[b1][:i1]
        ends += self._ends[b1][:i1]
        vals += self._vals[b1][:i1]
        return starts, ends, vals

    def _count(self, b0: int, i0: int, b1: int, i1: int) -> int:
        """The number of entries from ``(b0, i0)`` to ``(b1, i1)`` (excluded)."""
        if b0 == b1:
            return i1 - i0
        return len(self._ends[b0]) - i0 + sum(map(len, self._ends[b0 + 1 : b1])) + i1

    def _append(self, start: int, end: int, value: V) -> None:
        """Add a segment above every other, not merging."""
        if not self._lasts:
            self._starts.append([start])
            self._ends.append([end])
            self._vals.append([value])
            self._lasts.append(end)
            return
        self._starts[-1].append(start)
        self._ends[-1].append(end)
        self._vals[-1].append(value)
        self._lasts[-1] = end
        if len(self._starts[-1]) > 2 * self._load:
            self._split(len(self._lasts) - 1)

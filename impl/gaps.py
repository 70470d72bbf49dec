"""``GapSet``: disjoint ranges in sorted leaves, with the largest-range bookkeeping.

One structure serves three purposes: the reclaim set, each user's evictable
set, and the *gaps* of a :class:`impl.segments.SegmentSet` (its complement),
where the seed's ``findAvailableRange`` searches for room. Offsets are plain
ints in ``[0, MAX_KEY]``; ranges are half-open, non-empty, and always merged
(two ranges never touch).

Layout, after sortedcontainers' ``SortedList`` (the engine, shared with
``SegmentSet``, is :mod:`impl.leaves`): ranges are kept in order in
*leaves*, Python lists of at most ``2 * load`` entries, as two parallel lists
of ends and sizes (no tuple per range). ``_lasts[b]`` is the last end in leaf
``b``, so a position is located with two C-level bisects. A leaf splits in
half when it outgrows ``2 * load`` and joins a neighbour when it shrinks below
``load / 2``, as ``SortedList`` does.

Largest-range bookkeeping, for the search of a range at least ``n`` long that
lies before a position (gVisor's ``PrevLargeEnoughGap``):

* ``_bounds[b]`` is an upper bound of the sizes in leaf ``b``. It is raised when
  a range grows past it, and left alone when ranges shrink or go (recomputing a
  leaf maximum costs about 20 ns per entry here, too much for every
  allocation); a search that scans a whole leaf without success tightens the
  bound to the leaf's true maximum, so each stale bound costs one scan.
* ``_index`` is a max segment tree over ``_bounds``, built on demand and
  discarded when leaves split or join (like ``SortedList``'s positional index);
  a raised or tightened bound updates it in O(log leaves).

So with ``n`` ranges and leaves of ``B`` entries, locating costs two bisects
(O(log n)); the previous large-enough range costs O(B) in the leaf searched
(usually O(1): the nearest range fits), O(log(n/B)) in the tree, plus one
O(B) tightening per bound made stale by earlier shrinking (amortized);
rebuilding the tree costs O(n/B) once per ``B/2`` structural changes at most.
Updates cost O(log n + B) with O(B) only in C (list insert/delete memmoves).

Constant factors matter (an allocation is a search then a ``take``, about a
microsecond each here): ``find_available_range`` remembers where it found
room, so the ``take`` that follows checks that range instead of bisecting.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from impl.leaves import DEFAULT_LOAD, Leaves, bisect_left, bisect_right
from spec.vocabulary import CHUNK_SIZE, INT64_MAX, UINT64_MAX

MAX_KEY: Final = UINT64_MAX
"""The largest offset; the last gap of a segment set ends here, as in gVisor.

(``Final``: compiled, it is read from a C static rather than this module's
dict. It is an int mypyc keeps boxed, as every int >= 2**62, so the hot
paths avoid arithmetic and ordering comparisons on it and on the last gap's
end and size; ``x != MAX_KEY`` with a small ``x`` costs one machine compare.)
"""


class GapSet(Leaves):
    """A set of offsets, stored as sorted, disjoint, non-touching ranges.

    >>> rs = GapSet()
    >>> rs.add(0, 10); rs.add(10, 20); rs.remove(5, 7)
    >>> list(rs)
    [(0, 5), (7, 20)]
    """

    __slots__ = ("_bounds", "_cap", "_found_index", "_found_leaf", "_sizes")

    def __init__(self, *, load: int = DEFAULT_LOAD) -> None:
        self._ends: list[list[int]] = []
        self._sizes: list[list[int]] = []
        self._bounds: list[int] = []
        super().__init__(load, (self._ends, self._sizes), (self._bounds,))
        self._cap = 0
        # Where find_available_range last found room: take() tries it before
        # bisecting. (Two ints, not a tuple: compiled, they are stored unboxed.)
        self._found_leaf = 0
        self._found_index = 0

    # --- the set interface ------------------------------------------------------------

    def __bool__(self) -> bool:
        return bool(self._lasts)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """The ranges in order, as ``(start, end)``; the set must not change meanwhile."""
        for ends, sizes in zip(self._ends, self._sizes, strict=True):
            for end, size in zip(ends, sizes, strict=True):
                yield end - size, end

    def last(self) -> tuple[int, int] | None:
        """The highest range, in O(1)."""
        if not self._lasts:
            return None
        end = self._lasts[-1]
        return end - self._sizes[-1][-1], end

    def pop_last(self) -> tuple[int, int] | None:
        """Remove and return the highest range, in O(1) (amortized)."""
        if not self._lasts:
            return None
        b = len(self._lasts) - 1
        ends = self._ends[b]
        end = ends.pop()
        size = self._sizes[b].pop()
        self._after_delete(b)
        return end - size, end

    def clear(self) -> None:
        self._ends.clear()
        self._sizes.clear()
        self._lasts.clear()
        self._bounds.clear()
        self._index = None

    def add(self, start: int, end: int) -> None:
        """Union with ``[start, end)`` (no-op if empty), in O(log n + B + ranges absorbed)."""
        if start >= end:
            return
        lasts = self._lasts
        b = bisect_left(lasts, start)  # the first range ending at or after start
        if b == len(lasts):
            self._append(start, end)
            return
        ends = self._ends[b]
        sizes = self._sizes[b]
        i = bisect_left(ends, start)
        range_end = ends[i]
        first_start = range_end - sizes[i]
        if first_start > end:  # touches nothing: a range of its own
            ends.insert(i, end)
            sizes.insert(i, end - start)
            self._raise_bound(b, end - start)
            if len(ends) > 2 * self._load:
                self._split(b)
            return
        start = first_start if first_start < start else start
        # Absorb every range starting at or before end. Usually that is range i
        # alone, as when a freed range joins the one below it: check the next
        # range of the leaf before searching.
        if end <= range_end:
            end = range_end
        elif i + 1 == len(ends) or ends[i + 1] - sizes[i + 1] <= end:  # more to absorb
            b1, i1 = self._last_starting_before(b, i, end + 1)
            if b1 != b or i1 != i:
                end = max(end, self._ends[b1][i1])
                self._raise_bound(b, end - start)  # first: the repairs may move the range
                if b1 == b:  # within one leaf (the engine's splice, without its loops)
                    ends[i : i1 + 1] = [end]
                    sizes[i : i1 + 1] = [end - start]
                    self._repair(b)
                else:
                    self._splice(b, i, b1, i1 + 1, ([end], [end - start]))
                return
        ends[i] = end
        sizes[i] = end - start
        if i == len(ends) - 1:
            lasts[b] = end
        if end - start > self._bounds[b]:
            self._raise_bound(b, end - start)

    def remove(self, start: int, end: int) -> None:
        """Difference with ``[start, end)``, in O(log n + B + ranges removed)."""
        if start >= end:
            return
        b, i = self._position_after(start)  # the first range ending after start
        if b == len(self._lasts):
            return
        first_start = self._ends[b][i] - self._sizes[b][i]
        if first_start >= end:
            return
        b1, i1 = self._last_starting_before(b, i, end)
        last_end = self._ends[b1][i1]
        new_ends = []
        new_sizes = []
        if first_start < start:
            new_ends.append(start)
            new_sizes.append(start - first_start)
        if last_end > end:
            new_ends.append(last_end)
            new_sizes.append(last_end - end)
        for size in new_sizes:  # first: the repairs may move the new ranges
            self._raise_bound(b, size)
        if b1 == b:  # within one leaf (the engine's splice, without its loops)
            self._ends[b][i : i1 + 1] = new_ends
            self._sizes[b][i : i1 + 1] = new_sizes
            self._repair(b)
        else:
            self._splice(b, i, b1, i1 + 1, (new_ends, new_sizes))

    # --- what a segment set needs of its gaps -------------------------------------------

    def take(self, start: int, end: int) -> None:
        """Remove ``[start, end)``, which must be non-empty and inside one range.

        Raises ValueError (changing nothing) otherwise. O(log n), plus a C-level
        O(B) list insert when the range is split in two; O(1) to locate the
        range if it is where ``find_available_range`` last found room (only one
        range can contain ``[start, end)``, so checking the candidate is enough).
        """
        lasts = self._lasts
        b = self._found_leaf
        i = self._found_index
        if b < len(lasts) and i < len(ends := self._ends[b]):
            sizes = self._sizes[b]
            range_end = ends[i]
            range_start = range_end - sizes[i]
            if not range_start <= start < range_end:
                b = -1  # not there: bisect
        else:
            b = -1
        if b < 0:
            b = bisect_right(lasts, start)
            if b == len(lasts):
                raise ValueError(f"[{start:#x}, {end:#x}) is not a non-empty free range")
            ends = self._ends[b]
            sizes = self._sizes[b]
            i = bisect_right(ends, start)
            range_end = ends[i]
            range_start = range_end - sizes[i]
        if not range_start <= start < end <= range_end:
            raise ValueError(f"[{start:#x}, {end:#x}) is not a non-empty free range")
        if start == range_start:
            if end == range_end:
                ends.pop(i)  # (pop, not del: compiled, del boxes the index and dispatches)
                sizes.pop(i)
                if len(ends) < self._load >> 1:
                    self._after_delete(b)
                elif i == len(ends):
                    lasts[b] = ends[-1]
            else:
                sizes[i] = range_end - end
        elif end == range_end:
            ends[i] = start
            sizes[i] = start - range_start
            if i == len(ends) - 1:
                lasts[b] = start
        else:
            sizes[i] = range_end - end
            ends.insert(i, start)
            sizes.insert(i, start - range_start)
            if len(ends) > 2 * self._load:
                self._split(b)

    def first_within(self, start: int, end: int) -> tuple[int, int] | None:
        """The first part of ``[start, end)`` in the set, or None, in O(log n)."""
        lasts = self._lasts
        b = bisect_right(lasts, start)
        if b == len(lasts) or start >= end:
            return None
        ends = self._ends[b]
        i = bisect_right(ends, start)
        range_end = ends[i]
        range_start = range_end - self._sizes[b][i]
        if range_start >= end:
            return None
        return max(range_start, start), min(range_end, end)

    def find_available_range(
        self, file_size: int, length: int, alignment: int, last_start: int
    ) -> tuple[int, int] | None:
        """The seed's ``findAvailableRange`` over these ranges taken as a segment set's gaps.

        The set must hold the gaps of a segment set over ``[0, MAX_KEY)``, and
        ``last_start`` must be where its last gap, the one ending at
        ``MAX_KEY``, starts: the segment set's last end (0 if it is empty,
        ``MAX_KEY`` if that gap is empty). The segment set knows it as a small
        int; here it would cost big-int arithmetic on the gap's end and size.
        Preconditions, as ``spec.ranges.find_available_range``: ``alignment`` a
        power of two, ``length`` a non-zero page multiple, ``0 <= file_size <=
        INT64_MAX``, every segment below ``file_size``. Returns ``(start, end)``
        or None where the seed fails. O(log n) per gap visited, as above.
        """
        mask = alignment - 1
        lasts = self._lasts
        b = len(lasts) - 1
        if last_start != MAX_KEY:  # the last gap is the last range
            sizes = self._sizes[b]
            i = len(sizes) - 1
        else:  # the last gap is empty, at MAX_KEY
            b += 1
            sizes = []
            i = 0
        # The last gap: its end is MAX_KEY, clipped to the file size (which is smaller).
        end = file_size
        if end >= length:  # else end - length wraps: no gap can hold length
            start = (end - length) & ~mask
            if start >= last_start:
                self._found_leaf = b
                self._found_index = i
                return start, start + length
            # Earlier gaps, each the previous one at least length long.
            while True:
                if i and sizes[i - 1] >= length:  # the usual case: the nearest gap is large enough
                    i -= 1
                else:
                    found = self._previous_large_enough(b, i, length)
                    if found is None:
                        break
                    b, i = found
                    sizes = self._sizes[b]
                gap_end = self._ends[b][i]
                end = gap_end if gap_end < file_size else file_size
                if end < length:
                    break
                start = (end - length) & ~mask
                if start >= gap_end - sizes[i]:
                    self._found_leaf = b
                    self._found_index = i
                    return start, start + length
        if lasts:
            self._found_leaf = len(lasts) - 1
            self._found_index = len(self._ends[-1]) - 1
        return _grow(last_start, file_size, length, mask)

    # --- checking ---------------------------------------------------------------------

    def check(self) -> None:
        """Verify every internal invariant (raises AssertionError), in O(n)."""
        load = self._load
        count = len(self._lasts)
        assert len(self._ends) == len(self._sizes) == len(self._bounds) == count
        previous_end = -1
        for b in range(count):
            ends = self._ends[b]
            sizes = self._sizes[b]
            assert 0 < len(ends) <= 2 * load, "leaf size"
            assert len(sizes) == len(ends)
            assert self._lasts[b] == ends[-1], "stale leaf end"
            assert self._bounds[b] >= max(sizes), "size bound too low"
            for end, size in zip(ends, sizes, strict=True):
                assert size > 0 and end <= MAX_KEY, "empty or out-of-range range"
                assert end - size > previous_end, "ranges unsorted, overlapping or touching"
                previous_end = end
        if self._index is not None:
            cap = self._cap
            tree = self._index
            assert count < cap and len(tree) == 2 * cap
            assert tree[cap : cap + count] == self._bounds, "tree leaves differ from bounds"
            assert not any(tree[cap + count :]), "tree padding"
            for j in range(1, cap):
                assert tree[j] == max(tree[2 * j], tree[2 * j + 1]), "tree node is not a max"

    # --- internals ----------------------------------------------------------------------

    def _position_after(self, position: int) -> tuple[int, int]:
        """The position of the first range ending after ``position`` (or the end)."""
        b = bisect_right(self._lasts, position)
        if b == len(self._lasts):
            return b, 0
        return b, bisect_right(self._ends[b], position)

    def _position_after_start(self, position: int) -> tuple[int, int]:
        """The position of the first range starting at or after ``position`` (or the end).

        Ranges never touch, so this is the range after the one ending at or
        after ``position``, unless that one starts at or after it.
        """
        b = bisect_left(self._lasts, position)
        if b == len(self._lasts):
            return b, 0
        ends = self._ends[b]
        i = bisect_left(ends, position)
        if ends[i] - self._sizes[b][i] >= position:
            return b, i
        return (b, i + 1) if i + 1 < len(ends) else (b + 1, 0)

    def _last_starting_before(self, b: int, i: int, position: int) -> tuple[int, int]:
        """The position of the last range starting before ``position``; ``(b, i)`` does.

        Usually that is ``(b, i)`` or the next range, so look there before bisecting.
        """
        for _ in range(2):
            nb, ni = (b, i + 1) if i + 1 < len(self._ends[b]) else (b + 1, 0)
            if nb == len(self._lasts) or self._ends[nb][ni] - self._sizes[nb][ni] >= position:
                return b, i
            b, i = nb, ni
        return self._step_back(*self._position_after_start(position))

    def _step_back(self, b: int, i: int) -> tuple[int, int]:
        """The position just before ``(b, i)`` (which must not be the first)."""
        if i:
            return b, i - 1
        return b - 1, len(self._ends[b - 1]) - 1

    def _append(self, start: int, end: int) -> None:
        """Add ``[start, end)`` above (and not touching) every range."""
        size = end - start
        if not self._lasts:
            self._ends.append([end])
            self._sizes.append([size])
            self._lasts.append(end)
            self._bounds.append(size)
            self._index = None
            return
        b = len(self._lasts) - 1
        self._ends[b].append(end)
        self._sizes[b].append(size)
        self._lasts[b] = end
        self._raise_bound(b, size)
        if len(self._ends[b]) > 2 * self._load:
            self._split(b)

    def _raise_bound(self, b: int, size: int) -> None:
        if size > self._bounds[b]:
            self._bounds[b] = size
            tree = self._index
            if tree is not None:
                j = self._cap + b
                while j and tree[j] < size:
                    tree[j] = size
                    j >>= 1

    def _tighten(self, b: int) -> None:
        """Lower leaf ``b``'s bound to its true maximum (the tree exists)."""
        bound = max(self._sizes[b])
        self._bounds[b] = bound
        tree = self._index
        assert tree is not None
        j = self._cap + b
        tree[j] = bound
        j >>= 1
        while j:
            left = tree[2 * j]
            right = tree[2 * j + 1]
            top = left if left > right else right
            if tree[j] == top:
                break
            tree[j] = top
            j >>= 1

    def _build_tree(self) -> list[int]:
        count = len(self._bounds)
        cap = 1 << count.bit_length()  # strictly above count: position count is a valid leaf
        level = self._bounds + [0] * (cap - count)
        levels = [level]
        while len(level) > 1:
            level = list(map(max, level[0::2], level[1::2]))
            levels.append(level)
        tree = [0]
        for level in reversed(levels):
            tree += level
        self._index = tree
        self._cap = cap
        return tree

    def _previous_large_enough(self, b: int, i: int, length: int) -> tuple[int, int] | None:
        """The position of the last range before ``(b, i)`` at least ``length`` long.

        ``length`` must be positive. O(B) in leaf ``b`` and in the leaf found,
        O(log(n/B)) to find that leaf, plus amortized tightening.
        """
        if i and self._bounds[b] >= length:
            sizes = self._sizes[b]
            i -= 1
            while i >= 0:
                if sizes[i] >= length:
                    return b, i
                i -= 1
        while True:
            b = self._previous_leaf(b, length)
            if b < 0:
                return None
            sizes = self._sizes[b]
            i = len(sizes) - 1
            while i >= 0:
                if sizes[i] >= length:
                    return b, i
                i -= 1
            self._tighten(b)  # the bound was stale

    def _previous_leaf(self, b: int, length: int) -> int:
        """The last leaf before leaf ``b`` whose bound is at least ``length``, or -1."""
        tree = self._index
        if tree is None:
            tree = self._build_tree()
        j = self._cap + b
        while j > 1:
            if j & 1 and tree[j - 1] >= length:  # the left sibling covers leaves before b
                j -= 1
                cap = self._cap
                while j < cap:
                    j = 2 * j + 1 if tree[2 * j + 1] >= length else 2 * j
                return j - cap
            j >>= 1
        return -1

    # --- the leaf engine's hooks: the bounds follow the leaves -------------------------

    def _leaves_split(self, b: int, count: int) -> None:
        self._bounds[b : b + 1] = [max(leaf) for leaf in self._sizes[b : b + count]]

    def _leaves_joined(self, b: int) -> None:
        self._bounds[b] = max(self._bounds[b], self._bounds[b + 1])


def _grow(last_start: int, file_size: int, length: int, mask: int) -> tuple[int, int] | None:
    """The seed's fallback: the smallest doubled file with room above every segment.

    Go's uint64 wrap-around and int64 overflow checks, in Python integers.
    """
    minimum = ((last_start + mask) & UINT64_MAX) & ~mask
    if (minimum + length) & UINT64_MAX < minimum:
        return None  # the allocation would exceed the range of uint64
    size = file_size
    while True:
        if size == 0:
            size = CHUNK_SIZE
        else:
            size *= 2
            if size > INT64_MAX:
                return None  # the allocation would exceed the range of int64
        if size >= length:  # else size - length wraps: the file is still too small
            start = (size - length) & ~mask
            if start >= minimum:
                return start, start + length

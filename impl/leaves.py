"""``Leaves``: the sorted-leaf engine that ``GapSet`` and ``SegmentSet`` share.

sortedcontainers' ``SortedList`` layout, for entries stored as parallel
*columns* (one Python list per leaf per column, no tuple per entry): entries
are kept in order in leaves of at most ``2 * load``; ``_lasts[b]`` is the last
end in leaf ``b``, so a position is located with two C-level bisects. A leaf
splits when it outgrows ``2 * load`` (into pieces of ``load`` to ``1.5 * load``)
and joins a neighbour when it shrinks below ``load / 2``.

A subclass names its columns (one of which is ``_ends``, which ``_lasts``
summarises) and any per-leaf summaries of its own (``GapSet``'s gap bounds),
which the engine deletes with their leaves; it computes them through two
hooks, :meth:`_leaves_split` and :meth:`_leaves_joined`, on the cold paths.
``_index``, a structure over the leaves a subclass builds on demand
(``GapSet``'s max tree; ``SortedList``'s positional index), is None after
any change to the leaves. The hot path of a removal, an entry leaving a leaf
that stays, touches only ``_ends`` and ``_lasts``.
"""

from __future__ import annotations

import bisect
from itertools import pairwise
from typing import Any, Final

DEFAULT_LOAD = 500
"""Leaf size: big enough that leaves rarely split, small enough for O(B) scans."""

bisect_left: Final = bisect.bisect_left
bisect_right: Final = bisect.bisect_right
"""The standard library's bisects, for the sets to locate with. (Final: compiled,
a call reads a C static, where a name imported from ``bisect`` is a dict lookup.)"""


class Leaves:
    """The leaf engine (see the module docstring); subclasses fill the columns."""

    __slots__ = ("_columns", "_ends", "_index", "_lasts", "_load", "_per_leaf", "_summaries")

    _ends: list[list[int]]
    """The column of ends, which orders the entries (a subclass sets it before ``__init__``)."""

    def __init__(
        self, load: int, columns: tuple[list[list[Any]], ...], summaries: tuple[list[Any], ...] = ()
    ) -> None:
        """``columns``: the leaves of each column, ``_ends`` among them; ``summaries``: one
        value per leaf each (both by identity: the engine changes them in place)."""
        if load < 2:
            raise ValueError("load must be at least 2")
        self._load = load
        self._columns = columns
        self._lasts: list[int] = []
        """The last end of each leaf."""
        self._summaries = (self._lasts, *summaries)
        self._per_leaf = (*columns, *self._summaries)
        """Every list with one entry per leaf."""
        self._index: list[int] | None = None
        """The subclass's tree over the leaves (GapSet's max tree), or None: rebuilt on demand."""

    # --- hooks: a subclass keeps its per-leaf summaries in step -------------------------

    def _leaves_split(self, b: int, count: int) -> None:
        """Leaf ``b`` became leaves ``b`` to ``b + count - 1``: summarise them."""

    def _leaves_joined(self, b: int) -> None:
        """Leaf ``b + 1`` was merged into leaf ``b``: summarise ``b`` (``b + 1``'s go next)."""

    # --- the engine -------------------------------------------------------------------

    def _split(self, b: int) -> None:
        """Split leaf ``b`` (too large) into leaves of ``load`` to ``1.5 * load`` entries."""
        cuts = leaf_cuts(len(self._ends[b]), self._load)
        for column in self._columns:
            leaf = column[b]
            column[b : b + 1] = [leaf[lo:hi] for lo, hi in cuts]
        self._lasts[b : b + 1] = [leaf[-1] for leaf in self._ends[b : b + len(cuts)]]
        self._index = None
        self._leaves_split(b, len(cuts))

    def _after_delete(self, b: int) -> None:
        """Restore the leaf invariants of leaf ``b`` after entries left it."""
        ends = self._ends[b]
        if not ends:
            for per_leaf in self._per_leaf:
                del per_leaf[b]
            self._index = None
            return
        self._lasts[b] = ends[-1]
        if len(ends) < self._load >> 1 and len(self._lasts) > 1:
            self._join(b - 1 if b else b)

    def _join(self, b: int) -> None:
        """Merge leaf ``b + 1`` into leaf ``b``, splitting again if too large."""
        for column in self._columns:
            column[b] += column[b + 1]
        self._lasts[b] = self._lasts[b + 1]
        self._leaves_joined(b)
        for per_leaf in self._per_leaf:
            del per_leaf[b + 1]
        self._index = None
        if len(self._ends[b]) > 2 * self._load:
            self._split(b)

    def _splice(self, b0: int, i0: int, b1: int, i1: int, new: tuple[list[Any], ...]) -> None:
        """Replace the entries from ``(b0, i0)`` to ``(b1, i1)`` (excluded) by ``new``.

        ``new`` holds one list per column. ``(b1, i1)`` may be one past the
        last entry of leaf ``b1``; the new entries must fit in order there.
        """
        if b0 == b1:
            for column, entries in zip(self._columns, new):  # noqa: B905 (lengths checked once)
                column[b0][i0:i1] = entries
        else:
            for column, entries in zip(self._columns, new):  # noqa: B905
                column[b0][i0:] = entries
                del column[b1][:i1]
                del column[b0 + 1 : b1]
            if b1 > b0 + 1:
                for summary in self._summaries:
                    del summary[b0 + 1 : b1]
                self._index = None
            self._repair(b0 + 1)
        self._repair(b0)

    def _repair(self, b: int) -> None:
        """Restore the leaf invariants of leaf ``b`` after a bulk change."""
        if len(self._ends[b]) > 2 * self._load:
            self._split(b)
        else:
            self._after_delete(b)


def leaf_cuts(length: int, load: int) -> list[tuple[int, int]]:
    """Where to cut a leaf of ``length > 2 * load`` entries: pieces of ``load`` to ``1.5 * load``.

    (Halves when the leaf just outgrew ``2 * load``, as ``SortedList`` splits.)
    """
    count = length // load
    bounds = [length * k // count for k in range(count + 1)]
    return list(pairwise(bounds))

"""``RangeMap``: an immutable map from disjoint byte ranges to values.

The specification's one data structure. It is kept *canonical*: entries are
sorted, non-empty, disjoint, and two adjacent entries never hold equal values
(they are merged). Two maps are therefore equal exactly when they map every
offset to the same value, which is what makes states comparable and hashable.

A ``RangeMap[None]`` is a set of ranges (``RangeSet``).

Every operation is O(n) in the number of entries and returns a new map:
obviously correct rather than fast (``impl/segments.py`` is the fast one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from spec.vocabulary import FileRange

V = TypeVar("V")

Entry = tuple[int, int, V]


def _canonical(entries: Iterable[Entry[V]]) -> tuple[Entry[V], ...]:
    """Sorted, disjoint ``entries`` with empty ones dropped and equal neighbours merged."""
    out: list[Entry[V]] = []
    for start, end, value in entries:
        if start >= end:
            continue
        if out and out[-1][1] == start and out[-1][2] == value:
            out[-1] = (out[-1][0], end, value)
        else:
            out.append((start, end, value))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class RangeMap(Generic[V]):
    """A canonical map from disjoint half-open ranges to values."""

    entries: tuple[Entry[V], ...] = ()

    def __iter__(self) -> Iterator[tuple[FileRange, V]]:
        for start, end, value in self.entries:
            yield FileRange(start, end), value

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def ranges(self) -> tuple[FileRange, ...]:
        return tuple(FileRange(start, end) for start, end, _ in self.entries)

    def total(self) -> int:
        """The number of offsets mapped."""
        return sum(end - start for start, end, _ in self.entries)

    def get(self, offset: int) -> V | None:
        """The value at ``offset``, or None where nothing is mapped."""
        for start, end, value in self.entries:
            if start <= offset < end:
                return value
        return None

    def last(self) -> tuple[FileRange, V] | None:
        if not self.entries:
            return None
        start, end, value = self.entries[-1]
        return FileRange(start, end), value

    def within(self, fr: FileRange) -> Iterator[tuple[FileRange, V]]:
        """The parts of the entries inside ``fr``, clipped to it, in order."""
        for start, end, value in self.entries:
            if start < fr.end and fr.start < end:
                yield FileRange(max(start, fr.start), min(end, fr.end)), value

    def gaps_within(self, fr: FileRange) -> Iterator[FileRange]:
        """The parts of ``fr`` that nothing maps, in order."""
        position = fr.start
        for part, _ in self.within(fr):
            if part.start > position:
                yield FileRange(position, part.start)
            position = part.end
        if position < fr.end:
            yield FileRange(position, fr.end)

    def covers(self, fr: FileRange) -> bool:
        """Whether every offset of ``fr`` is mapped."""
        return next(self.gaps_within(fr), None) is None

    def restrict(self, fr: FileRange) -> RangeMap[V]:
        """The map cut down to ``fr``."""
        return RangeMap(tuple((p.start, p.end, v) for p, v in self.within(fr)))

    def update(self, fr: FileRange, fn: Callable[[V], V]) -> RangeMap[V]:
        """Apply ``fn`` to the values of the mapped parts of ``fr``; gaps stay gaps."""
        out: list[Entry[V]] = []
        for start, end, value in self.entries:
            if end <= fr.start or fr.end <= start:
                out.append((start, end, value))
                continue
            out.append((start, max(start, fr.start), value))
            out.append((max(start, fr.start), min(end, fr.end), fn(value)))
            out.append((min(end, fr.end), end, value))
        return RangeMap(_canonical(out))

    def remove(self, fr: FileRange) -> RangeMap[V]:
        """The map without anything in ``fr``."""
        out: list[Entry[V]] = []
        for start, end, value in self.entries:
            out.append((start, min(end, fr.start), value))
            out.append((max(start, fr.end), end, value))
        return RangeMap(_canonical(out))

    def assign(self, fr: FileRange, value: V) -> RangeMap[V]:
        """The map with every offset of ``fr`` mapped to ``value``."""
        rest = self.remove(fr).entries
        return RangeMap(_canonical(sorted((*rest, (fr.start, fr.end, value)), key=lambda e: e[0])))


RangeSet = RangeMap[None]
"""A set of ranges: a map whose every value is None."""

EMPTY_SET: RangeSet = RangeMap()


def range_set(ranges: Iterable[FileRange]) -> RangeSet:
    """The union of ``ranges`` (which may overlap)."""
    merged: list[Entry[None]] = []
    for start, end in sorted(fr for fr in ranges if fr.start < fr.end):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]), None)
        else:
            merged.append((start, end, None))
    return RangeMap(tuple(merged))

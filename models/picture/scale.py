"""The horizontal scale: file offsets to positions, so that small ranges stay visible.

A file spans pages to terabytes, and one page matters as much as a
gigabyte. The scale is piecewise: the offsets where anything in the whole
trace starts or ends (and the 1 GiB chunk boundaries, when there are few)
cut the axis into pieces, and each piece gets a width that grows slowly with
its length (``1 + log2(1 + pages) ** 0.7``: one page 2 units, 16 pages 3.7,
1 GiB 8.6), linear inside. Lengths are read from the labels, not the widths. One
scale serves every step of a trace, so the same offset is at the same place
in every drawing.

Cost: O(p log p) to build for p break points; O(log p) per position.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

PAGE = 4096
CHUNK = 1 << 30
"""The seed's chunkSize: the file is mapped in chunks of this many bytes."""
MAX_CHUNK_MARKS = 64
"""Chunk boundaries are marked (and cut the axis) only up to this many."""


@dataclass(frozen=True, slots=True)
class Scale:
    points: tuple[int, ...]
    """The break points, ascending; the first is 0."""
    positions: tuple[float, ...]
    """Where each break point is drawn, from 0 to ``width``."""
    chunks: tuple[int, ...]
    """The chunk boundaries to mark (inside the axis, not 0)."""
    width: float

    def x(self, offset: int) -> float:
        """The position of ``offset`` (clamped to the axis)."""
        points, positions = self.points, self.positions
        if offset >= points[-1]:
            return positions[-1]
        i = bisect.bisect_right(points, offset) - 1
        if i < 0:
            return 0.0
        start, end = points[i], points[i + 1]
        left, right = positions[i], positions[i + 1]
        return left + (right - left) * (offset - start) / (end - start)

    def labelled(self, gap: float) -> list[int]:
        """Break points to label, left to right, at least ``gap`` apart (always the ends)."""
        chosen: list[int] = []
        last = -math.inf
        for point, position in zip(self.points, self.positions, strict=True):
            if position - last >= gap:
                chosen.append(point)
                last = position
        if chosen and chosen[-1] != self.points[-1] and self.positions[-1] - last < gap:
            chosen[-1] = self.points[-1]
        return chosen


def build(offsets: Iterable[int], width: float) -> Scale:
    """The scale for a trace whose observations start or end things at ``offsets``."""
    points = {0, *offsets}
    top = max(points)
    if top == 0:
        top = CHUNK  # an empty file: show one chunk's width of nothing
        points.add(top)
    chunks = tuple(range(CHUNK, top, CHUNK)) if top // CHUNK <= MAX_CHUNK_MARKS else ()
    ordered = tuple(sorted(points | set(chunks)))
    weights = [_weight(b - a) for a, b in itertools.pairwise(ordered)]
    total = sum(weights)
    positions = [0.0]
    for weight in weights:
        positions.append(positions[-1] + width * weight / total)
    return Scale(ordered, tuple(positions), chunks, width)


def _weight(length: int) -> float:
    return 1.0 + float(math.log2(1.0 + length / PAGE) ** 0.7)


def offset_label(offset: int) -> str:
    """An offset as a porter reads it: whole GiB/MiB/KiB where it is one, else hex."""
    for unit, name in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB")):
        if offset and offset % unit == 0:
            return f"{offset // unit} {name}"
    return hex(offset)


def size_label(length: int) -> str:
    """A length in the largest unit it is a whole number of (bytes otherwise)."""
    for unit, name in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if length and length % unit == 0:
            return f"{length // unit} {name}"
    return f"{length} B"

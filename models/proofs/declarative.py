"""``spec.ranges`` as terms: what the seed's loop must compute, in exact arithmetic.

The specification computes with Python's unbounded integers. Every quantity it
forms from 64-bit inputs is a sum of two values below ``2**64`` (a gap end
minus a length, a start plus a length, a value rounded up to an alignment of at
most ``2**63``, a size doubled), so it is below ``2**65``: words of
:data:`EXACT_WIDTH` bits hold them without ever wrapping, and the terms below
are the spec's arithmetic exactly. Comparing the seed's 64-bit words with these
(widened by :func:`exact`) is what exposes any wrap-around in the seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.proofs.smt import FALSE, Bool, Word, const, ite
from spec.vocabulary import CHUNK_SIZE, INT64_MAX

EXACT_WIDTH = 66


def exact(value: Word) -> Word:
    """A 64-bit word as the exact integer it stands for."""
    return value.zext(EXACT_WIDTH)


def number(value: int) -> Word:
    """A constant in exact arithmetic."""
    return const(value, EXACT_WIDTH)


def align_down(value: Word, alignment: Word) -> Word:
    return value & ~(alignment - 1)


def align_up(value: Word, alignment: Word) -> Word:
    return (value + alignment - 1) & ~(alignment - 1)


def aligned(value: Word, alignment: Word) -> Bool:
    return (value & (alignment - 1)).eq(0)


def is_fit(start: Word, gap_start: Word, gap_end: Word, length: Word, alignment: Word) -> Bool:
    """Whether ``[start, start + length)`` is an aligned range inside the gap.

    This is the prose's notion of a fit, with no algorithm in it; all words exact.
    """
    return aligned(start, alignment) & gap_start.ule(start) & (start + length).ule(gap_end)


@dataclass(frozen=True, slots=True)
class Fit:
    """``spec.ranges.top_fit``: whether a fit exists and, if so, its start."""

    exists: Bool
    start: Word


def top_fit(gap_start: Word, gap_end: Word, length: Word, alignment: Word) -> Fit:
    """``spec.ranges.top_fit`` of the gap ``[gap_start, gap_end)``; all words exact."""
    start = align_down(gap_end - length, alignment)
    return Fit(gap_end.uge(length) & start.uge(gap_start), start)


def highest(fits: Sequence[Fit]) -> Fit:
    """``max`` of the fits that exist (``spec.ranges.find_available_range``'s first step)."""
    best = Fit(FALSE, number(0))
    for fit in fits:
        better = fit.exists & (~best.exists | fit.start.ugt(best.start))
        best = Fit(best.exists | fit.exists, ite(better, fit.start, best.start))
    return best


@dataclass(frozen=True, slots=True)
class GrowthSize:
    """The next size ``spec.ranges.growth_sizes`` yields, or its end."""

    stops: Bool
    size: Word


def next_growth_size(size: Word) -> GrowthSize:
    """What ``growth_sizes`` yields after ``size`` (exact): its double, or one chunk after 0.

    It stops when that passes ``INT64_MAX``.
    """
    grown = ite(size.eq(0), number(CHUNK_SIZE), size * 2)
    return GrowthSize(grown.ugt(INT64_MAX), grown)

"""``spec.ranges`` as terms: what the seed's loop must compute, in exact arithmetic.

Each term below is built by running ``spec.ranges``' own function on z3 terms
(:mod:`models.proofs.symbolic`): the proofs are about the code that runs, and
a change to it changes them. Only :func:`is_fit` (the prose's notion of a fit,
with no algorithm in it) and :func:`aligned` are written here.

The specification computes with Python's unbounded integers. Every quantity it
forms from 64-bit inputs is a sum of two values below ``2**64`` (a gap end
minus a length, a start plus a length, a value rounded up to an alignment of at
most ``2**63``, a size doubled), so it is below ``2**65``: words of
:data:`EXACT_WIDTH` bits hold its results without wrapping (the lemma
``spec-arithmetic-exact`` proves it, and that no step of the run overflowed).
Comparing the seed's 64-bit words with these (widened by :func:`exact`) is
what exposes any wrap-around in the seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.proofs.smt import Bool, Word, const
from models.proofs.symbolic import SymInt, as_int, decide, explore, holds_on, merge
from spec import ranges
from spec.vocabulary import FileRange

EXACT_WIDTH = 66


def exact(value: Word) -> Word:
    """A 64-bit word as the exact integer it stands for."""
    return value.zext(EXACT_WIDTH)


def number(value: int) -> Word:
    """A constant in exact arithmetic."""
    return const(value, EXACT_WIDTH)


def align_up(value: Word, alignment: Word) -> Word:
    """``spec.ranges.align_up``, run on the exact words."""
    (path,) = explore(lambda: ranges.align_up(as_int(value), as_int(alignment)))
    return merge([path], EXACT_WIDTH, _int)


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
    """``spec.ranges.top_fit`` of the gap ``[gap_start, gap_end)``, run on the exact words."""
    paths = explore(
        lambda: ranges.top_fit(
            FileRange(as_int(gap_start), as_int(gap_end)),
            as_int(length),
            as_int(alignment),
        )
    )
    return Fit(holds_on(paths, _exists), merge(paths, EXACT_WIDTH, _start))


def highest(fits: Sequence[Fit]) -> Fit:
    """``spec.ranges.highest`` of the fits that exist, run on the exact words.

    Whether each fit exists is a branch of the run (:func:`decide`), as it is
    a branch of ``top_fit`` in the spec.
    """

    def run() -> FileRange | None:
        given = [
            FileRange(as_int(fit.start), as_int(fit.start)) if decide(fit.exists) else None
            for fit in fits
        ]
        return ranges.highest(given)

    paths = explore(run)
    return Fit(holds_on(paths, _exists), merge(paths, EXACT_WIDTH, _start))


def _exists(result: object) -> bool:
    return result is not None


def _start(result: object) -> SymInt | int:
    return result[0] if isinstance(result, tuple) else 0


def _int(result: object) -> SymInt | int:
    assert isinstance(result, SymInt | int)
    return result


@dataclass(frozen=True, slots=True)
class GrowthSize:
    """The next size ``spec.ranges.growth_sizes`` yields, or its end."""

    stops: Bool
    size: Word


def next_growth_size(size: Word) -> GrowthSize:
    """What ``spec.ranges.growth_sizes`` yields after ``size`` (its first step), run on the
    exact word: its double, or one chunk after 0; it stops past ``INT64_MAX``."""
    paths = explore(lambda: next(ranges.growth_sizes(as_int(size)), None))
    stops = holds_on(paths, lambda result: result is None)
    return GrowthSize(stops, merge(paths, EXACT_WIDTH, lambda r: 0 if r is None else _int(r)))


def allocation_alignment(length: Word) -> Word:
    """``spec.ranges.allocation_alignment`` of a 64-bit length, run on z3 terms."""
    paths = explore(lambda: ranges.allocation_alignment(as_int(length)))
    return merge(paths, 64, _int)

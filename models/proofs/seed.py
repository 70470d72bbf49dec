"""The seed's ``findAvailableRange``, one loop step at a time, as bit-vector terms.

Each function is one step of the seed's loops with the seed's widths: offsets,
lengths and the alignment are ``uint64`` words, the file size an ``int64``
word (the same 64 bits, compared signed where Go compares ``int64``), so the
wrap-arounds the seed guards against are the ones the proofs see. Loops are
not unrolled here: the lemmas (``models.proofs.gap_lemmas`` and
``growth_lemmas``) reason about one step from an arbitrary state, and
:func:`run_seed` drives the very same steps with Python control flow on
constants, so a counterexample runs through exactly the encoding that was (or
failed to be) proved. A test checks that
:func:`run_seed` agrees with the line-by-line transcription
``models.seed_loop``.

A :class:`Weakening` selects a deliberately broken variant, to show that the
proofs refute what is wrong (their teeth).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from models.proofs.smt import FALSE, Bool, Word, const, ite
from models.seed_loop import segment_set_gaps
from spec.vocabulary import CHUNK_SIZE, HUGE_PAGE_SIZE, PAGE_SIZE, UINT64_MAX, FileRange

MAX_KEY = UINT64_MAX
"""Where a segment set's last gap ends."""

GROWTH_BOUND = 63
"""Iterations the growth loop may take at most (lemma ``growth-terminates``)."""


class Weakening(Enum):
    """The seed as written, or one deliberately broken variant of it."""

    NONE = "none"
    NO_ALIGNMENT_MASK = "no-alignment-mask"
    """The start of a fit is not aligned down: ``start := unalignedStart``."""
    NO_UNDERFLOW_CHECK = "no-underflow-check"
    """The gap loop lacks its "negative overflow" break."""
    STRICT_FIT = "strict-fit"
    """The gap loop's fit test is ``start > gap.Start()`` rather than ``>=``."""
    E61ACFB5EAEC = "e61acfb5eaec"
    """gVisor before its commit e61acfb5eaec: the growth loop lacks the
    "fileSize is still inadequate" continue, so a length above twice the file
    size wraps below zero and returns a wrapped range."""
    NO_INT64_OVERFLOW_CHECK = "no-int64-overflow-check"
    """The growth loop doubles without its ``newFileSize <= fileSize`` overflow test."""


@dataclass(frozen=True, slots=True)
class GapStep:
    """What one pass of the gap loop does with a gap."""

    breaks: Bool
    """"Negative overflow": the gap, clipped to the file, ends below ``length``."""
    returns: Bool
    """The range ``[start, end)`` fits at the top of the gap."""
    start: Word
    end: Word
    """``start + length``, wrapping as Go's does."""


def gap_step(
    gap_start: Word,
    gap_end: Word,
    file_size: Word,
    length: Word,
    alignment: Word,
    weakening: Weakening = Weakening.NONE,
) -> GapStep:
    """One pass of the gap loop's body over the gap ``[gap_start, gap_end)``."""
    alignment_mask = alignment - 1
    end = ite(gap_end.ugt(file_size), file_size, gap_end)
    unaligned_start = end - length
    breaks = FALSE if weakening is Weakening.NO_UNDERFLOW_CHECK else unaligned_start.ugt(end)
    if weakening is Weakening.NO_ALIGNMENT_MASK:
        start = unaligned_start
    else:
        start = unaligned_start & ~alignment_mask
    fits = start.ugt(gap_start) if weakening is Weakening.STRICT_FIT else start.uge(gap_start)
    return GapStep(breaks, ~breaks & fits, start, start + length)


def allocate_alignment(length: Word) -> Word:
    """``Allocate``'s alignment: ``PageSize``, or ``HugePageSize`` if ``length >= HugePageSize``."""
    return ite(length.uge(HUGE_PAGE_SIZE), const(HUGE_PAGE_SIZE), const(PAGE_SIZE))


def large_enough(gap_start: Word, gap_end: Word, length: Word) -> Bool:
    """Whether ``PrevLargeEnoughGap(length)`` stops at this gap."""
    return (gap_end - gap_start).uge(length)


@dataclass(frozen=True, slots=True)
class GrowthEntry:
    """The check between the two loops, and the lowest start the growth loop accepts."""

    fails: Bool
    """Overflow: the allocation would exceed the range of uint64."""
    minimum: Word


def growth_entry(last_gap_start: Word, length: Word, alignment: Word) -> GrowthEntry:
    alignment_mask = alignment - 1
    minimum = (last_gap_start + alignment_mask) & ~alignment_mask
    return GrowthEntry((minimum + length).ult(minimum), minimum)


@dataclass(frozen=True, slots=True)
class Doubling:
    """The growth loop's new file size, or its failure."""

    fails: Bool
    """Overflow: the allocation would exceed the range of int64."""
    size: Word


def double(file_size: Word, weakening: Weakening = Weakening.NONE) -> Doubling:
    """The top of the growth loop: ``newFileSize := 2 * fileSize`` and its overflow test."""
    doubled = file_size * 2
    if weakening is Weakening.NO_INT64_OVERFLOW_CHECK:
        overflowed = file_size.eq(0)
    else:
        overflowed = doubled.sle(file_size)
    return Doubling(overflowed & file_size.ne(0), ite(overflowed, const(CHUNK_SIZE), doubled))


@dataclass(frozen=True, slots=True)
class GrowthStep:
    """Whether a range fits at the top of the grown file."""

    returns: Bool
    start: Word
    end: Word


def growth_step(
    file_size: Word,
    minimum: Word,
    length: Word,
    alignment: Word,
    weakening: Weakening = Weakening.NONE,
) -> GrowthStep:
    """The rest of the growth loop's body, once ``fileSize`` holds the new size."""
    alignment_mask = alignment - 1
    unaligned_start = file_size - length
    inadequate = FALSE if weakening is Weakening.E61ACFB5EAEC else unaligned_start.ugt(file_size)
    if weakening is Weakening.NO_ALIGNMENT_MASK:
        start = unaligned_start
    else:
        start = unaligned_start & ~alignment_mask
    return GrowthStep(~inadequate & start.uge(minimum), start, start + length)


class DoesNotTerminate(Exception):
    """A weakened growth loop ran past the bound the seed's loop provably keeps."""


def run_seed(
    allocated: Sequence[FileRange],
    file_size: int,
    length: int,
    alignment: int,
    weakening: Weakening = Weakening.NONE,
) -> FileRange | None:
    """``findAvailableRange`` on concrete inputs, through the steps above.

    Returns None where the seed returns ``ok == false``; the end of the range
    wraps as Go's ``start + length`` does. Raises :class:`DoesNotTerminate` if
    the growth loop runs more than :data:`GROWTH_BOUND` iterations.
    """
    size, need, align = const(file_size), const(length), const(alignment)
    gaps = segment_set_gaps(allocated)
    index = len(gaps) - 1
    while True:
        gap = gaps[index]
        step = gap_step(const(gap.start), const(gap.end), size, need, align, weakening)
        if step.breaks.value():
            break
        if step.returns.value():
            return FileRange(step.start.value(), step.end.value())
        index = _previous_large_enough_gap(gaps, index, need)
        if index < 0:
            break

    entry = growth_entry(const(gaps[-1].start), need, align)
    if entry.fails.value():
        return None
    minimum = const(entry.minimum.value())
    for _ in range(GROWTH_BOUND):
        doubling = double(size, weakening)
        if doubling.fails.value():
            return None
        size = const(doubling.size.value())
        grown = growth_step(size, minimum, need, align, weakening)
        if grown.returns.value():
            return FileRange(grown.start.value(), grown.end.value())
    raise DoesNotTerminate(
        f"growth loop still running after {GROWTH_BOUND} iterations (file size {size.value():#x})"
    )


def _previous_large_enough_gap(gaps: Sequence[FileRange], index: int, length: Word) -> int:
    """``PrevLargeEnoughGap``: the index of the nearest earlier gap fitting ``length``, or -1."""
    index -= 1
    while (
        index >= 0
        and not large_enough(const(gaps[index].start), const(gaps[index].end), length).value()
    ):
        index -= 1
    return index

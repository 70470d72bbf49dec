"""The growth loop's lemmas: its entry, one doubling, one body, and its bound.

When no gap holds the range, the seed doubles the file size until the aligned
range at the top of the file starts above every allocated range. These lemmas
are stated for one iteration from an arbitrary state, never unrolling the loop
(unrolled 34 times with a symbolic alignment, z3 did not finish in 12
minutes): :func:`growth_entry_agrees`, :func:`growth_doubling_agrees` and
:func:`growth_body_agrees` put the seed's loop in lock step with the spec's
search over ``growth_sizes``, :func:`growth_terminates` bounds it by
induction, and :func:`growth_file_size` says what the grown size is.

Every lemma takes the :class:`~models.proofs.seed.Weakening` of the seed to
encode, so the same statements refute the broken variants.
"""

from __future__ import annotations

from collections.abc import Callable

from models.proofs.cases import SearchCase
from models.proofs.declarative import (
    align_up,
    aligned,
    exact,
    next_growth_size,
    number,
    top_fit,
)
from models.proofs.obligation import Obligation
from models.proofs.preconditions import (
    is_alignment,
    is_file_size,
    is_length,
    page_aligned,
    search_parameters,
)
from models.proofs.seed import (
    Weakening,
    double,
    growth_entry,
    growth_step,
)
from models.proofs.smt import Bool, Model, Word, all_of, const, ite, word
from spec.vocabulary import CHUNK_MASK, CHUNK_SIZE, INT64_MAX


def _reaches_growth(before: Word, last_gap_start: Word, length: Word) -> Bool:
    """Witness: on the input (usage set ``{[0, last_gap_start)}``, file size ``before``)
    no gap holds a fit, so the growth loop starts from ``before``."""
    return all_of(
        [
            is_file_size(before),
            page_aligned(last_gap_start),
            last_gap_start.ule(before),
            exact(before).ult(exact(last_gap_start) + exact(length)),
        ]
    )


def _first_growth_size(before: Word, size: Word) -> Bool:
    """Witness: the growth loop's first size, from a file of ``before`` bytes, is ``size``."""
    return (before.ne(0) & size.eq(before * 2)) | (before.eq(0) & size.eq(CHUNK_SIZE))


def _growth_case(
    before: Word, last_gap_start: Word, length: Word, alignment: Word, weakening: Weakening
) -> Callable[[Model], SearchCase]:
    def case(model: Model) -> SearchCase:
        return SearchCase.of(
            [(0, model.value(last_gap_start))],
            model.value(before),
            model.value(length),
            model.value(alignment),
            weakening,
        )

    return case


def growth_entry_agrees(weakening: Weakening) -> Obligation:
    """Between the loops, the seed's lowest start is the spec's, and its overflow check is sound.

    For any last-gap start ``g`` (a page-aligned int64: it is at most the file
    size) and any size ``S`` a file can have, the seed's
    ``min = (g + mask) &^ mask`` does not wrap and equals the spec's exact
    ``align_up(g)``; and when the seed gives up because ``min + length``
    overflows uint64, the spec's ``top_fit`` at ``[min, S)`` does not exist,
    so the spec finds nothing at any growth size either.

    Why it suffices: the growth loops of both start from the same state; with
    the doubling and body lemmas they then run in lock step.
    """
    length, alignment, premises = search_parameters()
    last_gap_start, size = word("last_gap_start"), word("size")
    entry = growth_entry(last_gap_start, length, alignment)
    lowest = align_up(exact(last_gap_start), exact(alignment))
    fit = top_fit(lowest, exact(size), exact(length), exact(alignment))
    claims = [exact(entry.minimum).eq(lowest), entry.fails.implies(~fit.exists)]
    before = word("before")
    reachable = (
        _reaches_growth(before, last_gap_start, length),
        _first_growth_size(before, size),
    )
    premises += [is_file_size(last_gap_start), page_aligned(last_gap_start), is_file_size(size)]
    return Obligation.of_conjuncts(
        premises,
        claims,
        (reachable,),
        _growth_case(before, last_gap_start, length, alignment, weakening),
    )


def growth_doubling_agrees(weakening: Weakening) -> Obligation:
    """One doubling of the growth loop yields the spec's next growth size, or fails when it ends.

    From any file size ``F`` (a non-negative int64), the seed's
    ``newFileSize := 2 * fileSize`` with its int64 overflow test (0 becoming one
    chunk) fails exactly when the spec's ``growth_sizes``, computing exactly,
    would pass ``INT64_MAX``; otherwise both give the same size, which is again
    a non-negative int64, larger than ``F``.

    Why it suffices: by induction on the iterations, both loops try the same
    sequence of sizes and give up at the same point (the int64 limit).
    """
    size = word("size")
    doubling = double(size, weakening)
    spec = next_growth_size(exact(size))
    claims = [
        doubling.fails.iff(spec.stops),
        (~doubling.fails).implies(
            exact(doubling.size).eq(spec.size)
            & is_file_size(doubling.size)
            & doubling.size.ugt(size)
        ),
    ]
    length, alignment, last_gap_start = word("length"), word("alignment"), word("last_gap_start")
    reachable = (
        is_length(length),
        is_alignment(alignment),
        _reaches_growth(size, last_gap_start, length),
    )
    # Preferably the body then returns at the new size: the seed's final answer.
    entry = growth_entry(last_gap_start, length, alignment)
    grown = growth_step(doubling.size, entry.minimum, length, alignment, weakening)
    telling = (*reachable, ~entry.fails, ~doubling.fails, grown.returns)
    return Obligation.of_conjuncts(
        [is_file_size(size)],
        claims,
        (telling, reachable),
        _growth_case(size, last_gap_start, length, alignment, weakening),
    )


def growth_body_agrees(weakening: Weakening) -> Obligation:
    """At any size the growth loop tries, it returns exactly the spec's fit at the top of the file.

    For any size ``S`` the loop may hold (a positive int64 at least the last
    gap's start ``g``), once the entry check has passed: the seed's body returns
    ``[start, end)`` exactly when the spec's ``top_fit([align_up(g), S))``
    exists, at the same start; and then ``start`` is aligned, ``end`` is
    ``start + length`` without wrapping, ``start >= g`` (above every allocated
    range: inside the last free gap) and ``end <= S`` (inside the grown file).

    Why it suffices: with :func:`growth_doubling_agrees`, the seed's loop and
    the spec's search over ``growth_sizes`` take the same decision at every
    size, so they stop at the same smallest size with the same range.
    """
    length, alignment, premises = search_parameters()
    size, last_gap_start = word("size"), word("last_gap_start")
    entry = growth_entry(last_gap_start, length, alignment)
    grown = growth_step(size, entry.minimum, length, alignment, weakening)
    lowest = align_up(exact(last_gap_start), exact(alignment))
    fit = top_fit(lowest, exact(size), exact(length), exact(alignment))
    well_formed = all_of(
        [
            exact(grown.start).eq(fit.start),
            aligned(grown.start, alignment),
            exact(grown.end).eq(exact(grown.start) + exact(length)),
            last_gap_start.ule(grown.start),
            grown.end.ule(size),
        ]
    )
    claims = [grown.returns.iff(fit.exists), grown.returns.implies(well_formed)]
    premises += [
        is_file_size(size),
        size.ne(0),
        page_aligned(last_gap_start),
        last_gap_start.ule(size),
        ~entry.fails,
    ]
    before = word("before")
    reachable = (
        _reaches_growth(before, last_gap_start, length),
        _first_growth_size(before, size),
    )
    return Obligation.of_conjuncts(
        premises,
        claims,
        ((*reachable, grown.returns), reachable),
        _growth_case(before, last_gap_start, length, alignment, weakening),
    )


def _doubled(start_size: Word, size: Word, iterations: Word) -> Bool:
    """The growth loop's invariant after ``iterations`` doublings from ``start_size``.

    ``size = start_size * 2**iterations`` (``CHUNK_SIZE * 2**(iterations - 1)``
    from an empty file) without overflow, ``1 <= iterations <= 62``, and
    ``size`` is a non-negative int64.
    """
    base = ite(start_size.eq(0), const(CHUNK_SIZE // 2), start_size)
    shifted = base << iterations
    return all_of(
        [
            iterations.uge(1),
            iterations.ule(62),
            shifted.eq(size),
            (shifted >> iterations).eq(base),
            is_file_size(size),
        ]
    )


def growth_terminates(weakening: Weakening) -> Obligation:
    """The growth loop ends within 63 iterations, each size a doubling of the last.

    The invariant :func:`_doubled` (after ``k`` doublings from a file of
    ``F`` bytes, the size is ``F * 2**k``, or ``CHUNK_SIZE * 2**(k - 1)`` from
    an empty file, with ``1 <= k <= 62``) holds after the first iteration
    unless it already failed, and is kept by every iteration that does not
    fail. Since ``k <= 62`` is part of it, at most 62 sizes are tried and the
    63rd doubling fails at the latest: the loop terminates within
    ``GROWTH_BOUND = 63`` iterations (exactly 63 from a one-byte file where no
    size fits: its sizes reach ``2**62``, the last size that can double).

    Why it suffices: termination of the only unbounded loop; and the size the
    loop settles on is a doubling of the starting size, whatever that size is.
    """
    start_size, size, iterations = word("file_size"), word("size"), word("iterations")
    first = double(start_size, weakening)
    then = double(size, weakening)
    starts = first.fails | _doubled(start_size, first.size, const(1))
    keeps = (_doubled(start_size, size, iterations) & ~then.fails).implies(
        _doubled(start_size, then.size, iterations + 1)
    )
    length, alignment, last_gap_start = word("length"), word("alignment"), word("last_gap_start")
    before = ite(starts, size, start_size)
    reachable = (
        is_length(length),
        is_alignment(alignment),
        _reaches_growth(before, last_gap_start, length),
    )
    # Most telling: the growth starts at ``size``, whose doubling the seed refuses (int64
    # overflow) but the variant takes, and returns a range there: a whole-input disagreement.
    entry = growth_entry(last_gap_start, length, alignment)
    wraps = (
        starts,
        double(size).fails,
        ~entry.fails,
        growth_step(then.size, entry.minimum, length, alignment, weakening).returns,
    )
    return Obligation.of_conjuncts(
        [is_file_size(start_size)],
        [starts, keeps],
        ((*reachable, *wraps), reachable),
        _growth_case(before, last_gap_start, length, alignment, weakening),
    )


def growth_file_size(weakening: Weakening, chunk_multiple_start: bool = True) -> Obligation:
    """Growing from a whole number of chunks gives a whole number of chunks, within int64.

    If the file size is a multiple of ``CHUNK_SIZE`` (as ``Allocate`` keeps
    it), then at any size ``S`` the growth loop reaches (invariant of
    :func:`growth_terminates`) where its body returns ``[start, end)``, ``S``
    is a multiple of ``CHUNK_SIZE`` too (a power-of-two multiple of the
    starting size, or of one chunk from an empty file), and ``Allocate``'s new
    file size, ``end`` rounded up to a chunk, is at most ``S``: it never
    overflows int64. In the gap phase the file does not grow at all
    (:func:`gap_step_highest_fit`: ``end <= F``).

    With ``chunk_multiple_start=False`` only the last claim (the new file size
    fits in an int64) is made, for any starting size, and it is false: growth
    doubles whatever it is given, so ``S`` need not be a multiple of a chunk,
    and rounding ``end`` up to one can pass ``INT64_MAX``.
    """
    length, alignment, premises = search_parameters()
    start_size, size, iterations = word("file_size"), word("size"), word("iterations")
    last_gap_start = word("last_gap_start")
    entry = growth_entry(last_gap_start, length, alignment)
    grown = growth_step(size, entry.minimum, length, alignment, weakening)
    new_file_size = align_up(exact(grown.end), number(CHUNK_SIZE))
    within_int64 = grown.returns.implies(new_file_size.ule(INT64_MAX))
    claims = [
        grown.returns.implies((size & CHUNK_MASK).eq(0)),
        grown.returns.implies(new_file_size.ule(exact(size))),
        within_int64,
    ]
    premises += [
        is_file_size(start_size),
        _doubled(start_size, size, iterations),
        page_aligned(last_gap_start),
        last_gap_start.ule(start_size),
        ~entry.fails,
    ]
    if chunk_multiple_start:
        premises.append((start_size & CHUNK_MASK).eq(0))
    else:
        claims = [within_int64]
    before = word("before")
    reachable = (
        _reaches_growth(before, last_gap_start, length),
        _first_growth_size(before, size),
    )
    return Obligation.of_conjuncts(
        premises,
        claims,
        (reachable,),
        _growth_case(before, last_gap_start, length, alignment, weakening),
    )

"""The whole of ``findAvailableRange`` for every usage set of up to a few ranges.

The lemmas prove one pass of the gap loop over an arbitrary gap, and
``docs/proofs.md`` argues by induction that this covers any number of gaps.
This check mechanizes that composition on the real structure for each small
number of ranges: the seed's gap loop unrolled over every gap (with
``PrevLargeEnoughGap``'s skipping, and the last gap ending at ``MaxKey`` where
the spec's ends at the file size), against the spec's declarative answer, the
highest of the fits of all gaps, for every 64-bit value of the ranges, the file
size, the length and the alignment. The growth loop is not unrolled: both
enter it from the same state (checked here) and then run in lock step (the
growth lemmas).

One query over the whole unrolled loop took z3 about 15 s for two ranges and
did not finish in a minute for three (measured here), so the proof is cut at
each gap: the state after the gaps above (the seed's loop variables and the
spec's maximum so far) becomes fresh variables constrained by an invariant
proved at the cut before, and each query proves one conjunct of the invariant
after one more gap, in one situation of the loop (found, searching and visiting
the gap, searching and skipping it, broken off). The situations cover every
case and each invariant is proved before it is assumed, so chaining the cuts
proves the claim for the unrolled loop, with queries no bigger than a lemma.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.proofs.cases import SearchCase
from models.proofs.declarative import EXACT_WIDTH, Fit, align_up, exact, highest, is_fit, top_fit
from models.proofs.obligation import Goal, Obligation
from models.proofs.preconditions import is_file_size, page_aligned, search_parameters
from models.proofs.seed import MAX_KEY, Weakening, gap_step, growth_entry, large_enough
from models.proofs.smt import (
    FALSE,
    TRUE,
    Bool,
    Model,
    Word,
    all_of,
    any_of,
    boolean,
    const,
    ite,
    word,
)

MAX_RANGES = 4
"""The suite checks every usage set of 0 to MAX_RANGES ranges."""


@dataclass(frozen=True, slots=True)
class _Search:
    """The seed's gap-loop state between two gaps, and the spec's highest fit so far."""

    searching: Bool
    found: Bool
    start: Word
    end: Word
    best: Fit

    @classmethod
    def fresh(cls, index: int) -> _Search:
        """Any state at the cut before gap ``index``."""
        return cls(
            boolean(f"searching_{index}"),
            boolean(f"found_{index}"),
            word(f"found_start_{index}"),
            word(f"found_end_{index}"),
            Fit(boolean(f"spec_found_{index}"), word(f"spec_start_{index}", EXACT_WIDTH)),
        )


def whole_search(ranges: int, weakening: Weakening) -> Obligation:
    """With ``ranges`` allocated ranges, the seed's gap phase gives the spec's answer.

    For every usage set of exactly ``ranges`` non-empty, page-aligned, sorted,
    disjoint ranges below a non-negative int64 file size, every page-aligned
    non-zero length and every power-of-two alignment of at least a page: the
    seed's gap loop, unrolled over all ``ranges + 1`` gaps, finds a range
    exactly when some gap holds an aligned fit; the range is the highest of
    those fits (the spec's ``max``), aligned, ``start + length`` without
    wrapping, inside a free gap and inside the file; and when it finds none,
    the growth loop starts from the spec's lowest start, ``align_up`` of the
    last gap's start, computed without wrapping.
    """
    length, alignment, premises = search_parameters()
    file_size = word("file_size")
    starts = [word(f"start{i}") for i in range(ranges)]
    ends = [word(f"end{i}") for i in range(ranges)]
    premises.append(is_file_size(file_size))
    previous_end = const(0)
    for start, end in zip(starts, ends, strict=True):
        premises += [
            page_aligned(start),
            page_aligned(end),
            previous_end.ule(start),
            start.ult(end),
        ]
        previous_end = end
    premises.append(previous_end.ule(file_size))
    # Implied by the above, but z3 finds the chains of comparisons hard to follow.
    premises += [bound.ule(file_size) for bound in (*starts, *ends)]
    gap_starts = [const(0), *ends]
    gap_ends = [*starts, const(MAX_KEY)]
    spec_gaps = [
        (exact(start), exact(end))
        for start, end in zip(gap_starts, [*starts, file_size], strict=True)
    ]

    def fits(start: Word, lowest_gap: int) -> Bool:
        """Whether ``[start, start + length)`` is an aligned fit of a gap from ``lowest_gap`` up."""
        return any_of(
            is_fit(exact(start), gap_start, gap_end, exact(length), exact(alignment))
            for gap_start, gap_end in spec_gaps[lowest_gap:]
        )

    def invariant(state: _Search, index: int) -> list[Bool]:
        """What holds once the seed's loop has dealt with the gaps from ``index`` up."""
        return [
            state.found.iff(state.best.exists),
            state.searching.implies(~state.found),
            state.found.implies(exact(state.start).eq(state.best.start)),
            state.found.implies(exact(state.end).eq(exact(state.start) + exact(length))),
            state.found.implies(state.start.uge(gap_starts[index])),
            state.found.implies(state.end.ule(file_size)),
            state.found.implies(fits(state.start, index)),
            # A break: this gap and all below end before length.
            (~state.searching & ~state.found).implies(gap_starts[index].ult(length)),
        ]

    def after(state: _Search, index: int) -> _Search:
        """The seed's loop and the spec's maximum, one gap (``index``) further down."""
        step = gap_step(gap_starts[index], gap_ends[index], file_size, length, alignment, weakening)
        visits = state.searching
        if index < ranges:
            visits = visits & large_enough(gap_starts[index], gap_ends[index], length)
        takes = visits & step.returns
        fit = top_fit(*spec_gaps[index], exact(length), exact(alignment))
        return _Search(
            state.searching & ~(visits & (step.breaks | step.returns)),
            state.found | takes,
            ite(takes, step.start, state.start),
            ite(takes, step.end, state.end),
            highest([state.best, fit]),
        )

    def final_claim(state: _Search) -> Bool:
        entry = growth_entry(gap_starts[-1], length, alignment)
        lowest = align_up(exact(gap_starts[-1]), exact(alignment))
        return (~state.found).implies(exact(entry.minimum).eq(lowest))

    # The cuts: one goal per conjunct of the invariant after each gap, assuming
    # it before the gap, split by what the loop was doing (found, searching, broke).
    initial = _Search(TRUE, FALSE, const(0), const(0), Fit(FALSE, exact(const(0))))
    goals = []
    state = initial
    for index in reversed(range(ranges + 1)):
        if index == ranges:
            goals += [Goal(part) for part in invariant(after(initial, index), index)]
        else:
            cut = _Search.fresh(index + 1)
            assumed = all_of(invariant(cut, index + 1))
            visits = large_enough(gap_starts[index], gap_ends[index], length)
            situations = (
                cut.found,
                cut.searching & visits,
                cut.searching & ~visits,
                ~cut.found & ~cut.searching,
            )
            for situation in situations:
                goals += [
                    Goal(part, (assumed, situation)) for part in invariant(after(cut, index), index)
                ]
        state = after(state, index)
    cut = _Search.fresh(0)
    goals.append(Goal(final_claim(cut), tuple(invariant(cut, 0))))
    claim = all_of([*invariant(state, 0), final_claim(state)])

    def case(model: Model) -> SearchCase:
        return SearchCase.of(
            [(model.value(s), model.value(e)) for s, e in zip(starts, ends, strict=True)],
            model.value(file_size),
            model.value(length),
            model.value(alignment),
            weakening,
        )

    # Preferably the seed's gap loop returns a range: it is then the seed's final answer.
    return Obligation(tuple(premises), claim, tuple(goals), ((state.found,), ()), case)

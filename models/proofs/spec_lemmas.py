"""Lemmas about the specification's code itself: its arithmetic is exact, its rule is the seed's.

The other lemmas compare the seed's loop with terms built by running
``spec.ranges`` on z3 words (:mod:`models.proofs.symbolic`). Those words are
Python's unbounded ints only while no step overflows:
:func:`spec_arithmetic_exact` proves that for every 64-bit input, so the terms
are the spec's ints. :func:`alignment_rule_agrees` proves that the spec's
``allocation_alignment`` is ``Allocate``'s rule (the search takes the
alignment as an input, so no other lemma sees it).

The seed's variants (:class:`~models.proofs.seed.Weakening`) concern its
search loop, which these lemmas do not involve: they are stated for any.
"""

from __future__ import annotations

from models.proofs.cases import SearchCase
from models.proofs.declarative import EXACT_WIDTH, allocation_alignment, exact
from models.proofs.obligation import Obligation
from models.proofs.preconditions import is_file_size, is_length, search_parameters
from models.proofs.seed import Weakening, allocate_alignment
from models.proofs.smt import Bool, Model, all_of, word
from models.proofs.symbolic import Path, as_int, explore, fits
from spec import ranges
from spec.vocabulary import PAGE_SIZE, FileRange


def _exact(paths: list[Path]) -> Bool:
    """On whichever path is taken, no step overflowed and every int returned fits the words."""
    claims = []
    for path in paths:
        values = path.result if isinstance(path.result, tuple) else (path.result,)
        returned = [fits(value, EXACT_WIDTH) for value in values if value is not None]
        claims.append(path.condition.implies(all_of([path.exact, *returned])))
    return all_of(claims)


def _placeholder(weakening: Weakening) -> SearchCase:
    """These lemmas have no search input to show; a counterexample's values say it all."""
    return SearchCase((), 0, PAGE_SIZE, PAGE_SIZE, weakening)


def spec_arithmetic_exact(weakening: Weakening) -> Obligation:
    """Run on z3 words, ``spec.ranges``' arithmetic never overflows: the words are its ints.

    For any 64-bit gap bounds, length, alignment, file size and value meeting
    the search's preconditions, every ``+``, ``-`` and ``*`` that
    ``top_fit``, ``align_up`` and one step of ``growth_sizes`` perform stays
    within the symbolic words, and what they return fits in the exact width.

    Why it suffices: then each term the other lemmas use equals what the
    Python code computes on those inputs, so their proofs are about it.
    """
    length, alignment, premises = search_parameters()
    gap_start, gap_end, value, size = (
        word("gap_start"),
        word("gap_end"),
        word("value"),
        word("size"),
    )
    claims = [
        _exact(
            explore(
                lambda: ranges.top_fit(
                    FileRange(as_int(exact(gap_start)), as_int(exact(gap_end))),
                    as_int(exact(length)),
                    as_int(exact(alignment)),
                )
            )
        ),
        _exact(explore(lambda: ranges.align_up(as_int(exact(value)), as_int(exact(alignment))))),
        _exact(explore(lambda: next(ranges.growth_sizes(as_int(exact(size))), None))),
    ]
    premises += [gap_start.ule(gap_end), is_file_size(size)]

    def case(model: Model) -> SearchCase:
        return _placeholder(weakening)

    return Obligation.of_conjuncts(premises, claims, ((),), case)


def alignment_rule_agrees(weakening: Weakening) -> Obligation:
    """``spec.ranges.allocation_alignment`` is ``Allocate``'s alignment, for every length.

    For every 64-bit length ``Allocate`` accepts (non-zero, page-aligned),
    the spec's alignment is the huge-page size exactly when ``length >=
    HugePageSize``, and the page size otherwise.

    Why it suffices: the search lemmas take the alignment as an input; this
    one pins the input ``Allocate`` gives them.
    """
    length = word("length")
    claims = [allocation_alignment(length).eq(allocate_alignment(length))]

    def case(model: Model) -> SearchCase:
        return _placeholder(weakening)

    return Obligation.of_conjuncts([is_length(length)], claims, ((),), case)

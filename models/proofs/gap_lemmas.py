"""The gap loop's lemmas: one pass over an arbitrary gap, against the spec.

The seed's first loop walks the gaps of the usage set from the last one
(ending at ``MaxKey``) down, taking the highest aligned range that fits in the
first gap that has one. These lemmas are stated for one pass over an arbitrary
gap (and an arbitrary gap below it), never unrolling the loop:
:func:`gap_step_agrees` and :func:`gap_step_highest_fit` say what a pass
computes, :func:`gap_loop_invariant` is the inductive step that extends them to
any number of gaps. ``docs/proofs.md`` composes them.

Every lemma takes the :class:`~models.proofs.seed.Weakening` of the seed to
encode, so the same statements refute the broken variants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.proofs.cases import SearchCase
from models.proofs.declarative import (
    exact,
    is_fit,
    top_fit,
)
from models.proofs.obligation import Obligation
from models.proofs.preconditions import (
    is_file_size,
    page_aligned,
    search_parameters,
)
from models.proofs.seed import (
    MAX_KEY,
    Weakening,
    gap_step,
    large_enough,
)
from models.proofs.smt import Bool, Model, Word, all_of, ite, word


@dataclass(frozen=True, slots=True)
class _Gap:
    """A gap of the segment set: the seed's view and the spec's."""

    start: Word
    end: Word
    """The seed's end: a range's start, or MaxKey for the last gap."""
    spec_end: Word
    """The spec's end (exact): the same, but the file size for the last gap."""


def _gap(name: str, file_size: Word) -> tuple[_Gap, list[Bool]]:
    """Any gap of a usage set below ``file_size``: an inner one or the last one."""
    start, end = word(f"{name}_start"), word(f"{name}_end")
    premises = [
        page_aligned(start),
        start.ule(file_size),
        start.ule(end),
        (page_aligned(end) & end.ule(file_size)) | end.eq(MAX_KEY),
    ]
    return _Gap(start, end, exact(ite(end.eq(MAX_KEY), file_size, end))), premises


def _inner_gap_below(name: str, above: _Gap) -> tuple[_Gap, list[Bool]]:
    """Any gap lying wholly below the gap ``above`` (so an inner gap)."""
    start, end = word(f"{name}_start"), word(f"{name}_end")
    premises = [page_aligned(start), page_aligned(end), start.ule(end), end.ule(above.start)]
    return _Gap(start, end, exact(end)), premises


def _fits(start: Word, gap: _Gap, length: Word, alignment: Word) -> Bool:
    """Whether ``[start, start + length)`` is an aligned range inside ``gap`` (64-bit start)."""
    return is_fit(exact(start), exact(gap.start), gap.spec_end, exact(length), exact(alignment))


def _last_gap_case(
    gap: _Gap, returns: Bool, file_size: Word, length: Word, alignment: Word, weakening: Weakening
) -> tuple[tuple[tuple[Bool, ...], ...], Callable[[Model], SearchCase]]:
    """Witness: ``gap`` is the last gap of the usage set ``{[0, gap.start)}``.

    Preferably the pass ``returns``: its range is then the seed's final answer.
    """

    def case(model: Model) -> SearchCase:
        return SearchCase.of(
            [(0, model.value(gap.start))],
            model.value(file_size),
            model.value(length),
            model.value(alignment),
            weakening,
        )

    last = gap.end.eq(MAX_KEY)
    return ((last, returns), (last,)), case


def gap_step_agrees(weakening: Weakening) -> Obligation:
    """One pass of the gap loop over any gap decides as the spec's ``top_fit`` of that gap.

    For any gap ``[s, e)`` of the usage set (an inner gap, ``e`` at most the
    file size, or the last gap, ``e = MaxKey``) and any file size, the seed's
    pass returns ``start`` exactly when ``top_fit`` of the spec's gap (the
    same, but ending at the file size for the last gap) exists, and at the same
    start; and it breaks ("negative overflow") only when the spec's gap ends
    below ``length``.

    Why it suffices: the spec's answer in the gap phase is the highest of the
    ``top_fit`` of every gap; this lemma makes each pass of the loop compute
    exactly one of them, and :func:`gap_loop_invariant` shows the loop takes
    the highest.
    """
    length, alignment, premises = search_parameters()
    file_size = word("file_size")
    gap, gap_premises = _gap("gap", file_size)
    step = gap_step(gap.start, gap.end, file_size, length, alignment, weakening)
    fit = top_fit(exact(gap.start), gap.spec_end, exact(length), exact(alignment))
    claims = [
        step.returns.iff(fit.exists),
        step.returns.implies(exact(step.start).eq(fit.start)),
        step.breaks.implies(gap.spec_end.ult(exact(length))),
    ]
    witnesses, case = _last_gap_case(gap, step.returns, file_size, length, alignment, weakening)
    premises += [is_file_size(file_size), *gap_premises]
    return Obligation.of_conjuncts(premises, claims, witnesses, case)


def gap_step_highest_fit(weakening: Weakening) -> Obligation:
    """A pass of the gap loop returns the highest aligned fit of the gap, well formed.

    For any gap (as in :func:`gap_step_agrees`) and any 64-bit ``x``: if the
    pass returns ``[start, end)``, then ``start`` is aligned, ``end`` is
    ``start + length`` without wrapping, the range lies inside the gap and the
    file; and if ``[x, x + length)`` is any aligned range inside the gap, the
    pass returns and ``x <= start``. So when a pass does not return, no aligned
    range of ``length`` bytes fits in the gap.

    Why it suffices: this is the prose definition of a fit, with no algorithm
    in it; with :func:`gap_step_agrees` it also shows that the spec's
    ``top_fit`` is the highest fit of a gap, as ``spec.ranges`` says.
    """
    length, alignment, premises = search_parameters()
    file_size = word("file_size")
    gap, gap_premises = _gap("gap", file_size)
    step = gap_step(gap.start, gap.end, file_size, length, alignment, weakening)
    other = word("x")
    well_formed = all_of(
        [
            _fits(step.start, gap, length, alignment),
            exact(step.end).eq(exact(step.start) + exact(length)),
            step.end.ule(file_size),
        ]
    )
    claims = [
        step.returns.implies(well_formed),
        _fits(other, gap, length, alignment).implies(step.returns & other.ule(step.start)),
    ]
    witnesses, case = _last_gap_case(gap, step.returns, file_size, length, alignment, weakening)
    premises += [is_file_size(file_size), *gap_premises]
    return Obligation.of_conjuncts(premises, claims, witnesses, case)


def gap_loop_invariant(weakening: Weakening) -> Obligation:
    """The inductive step of the gap loop: "no aligned fit above the current gap" is kept.

    Take the current gap (any gap, as in :func:`gap_step_agrees`), any gap
    wholly below it, any 64-bit ``x`` and ``y``. Then:

    * if the pass returns ``[start, end)``, every aligned fit ``[x, x + length)``
      of the lower gap ends at or below ``start``: together with the invariant
      (nothing fits above the current gap), the returned range is the highest
      fit of all gaps, which is the spec's choice;
    * if the pass breaks, neither the lower gap nor the current one holds an
      aligned fit (``x``, ``y``): no gap does, and the spec grows the file as
      the seed does;
    * if the pass neither returns nor breaks, the current gap holds no aligned
      fit ``y``: the invariant holds at the next gap the loop visits;
    * a lower gap shorter than ``length`` holds no aligned fit ``x``: skipping
      it, as ``PrevLargeEnoughGap`` does, keeps the invariant; and when no
      large-enough gap is left, no gap holds a fit.

    Why it suffices: the invariant holds vacuously at the last gap, where the
    loop starts; by induction over the gaps visited it holds at each, for any
    number of gaps.
    """
    length, alignment, premises = search_parameters()
    file_size = word("file_size")
    gap, gap_premises = _gap("gap", file_size)
    lower, lower_premises = _inner_gap_below("lower", gap)
    step = gap_step(gap.start, gap.end, file_size, length, alignment, weakening)
    x, y = word("x"), word("y")
    fits_lower, fits_here = _fits(x, lower, length, alignment), _fits(y, gap, length, alignment)
    claims = [
        step.returns.implies(fits_lower.implies((exact(x) + exact(length)).ule(exact(step.start)))),
        step.breaks.implies(~fits_lower & ~fits_here),
        (~step.breaks & ~step.returns).implies(~fits_here),
        (~large_enough(lower.start, lower.end, length)).implies(~fits_lower),
    ]

    def case(model: Model) -> SearchCase:
        bounds = [(0, model.value(lower.start)), (model.value(lower.end), model.value(gap.start))]
        return SearchCase.of(
            bounds,
            model.value(file_size),
            model.value(length),
            model.value(alignment),
            weakening,
        )

    reachable = (gap.end.eq(MAX_KEY), lower.end.ult(gap.start))
    witnesses = ((*reachable, step.returns), reachable)
    premises += [is_file_size(file_size), *gap_premises, *lower_premises]
    return Obligation.of_conjuncts(premises, claims, witnesses, case)

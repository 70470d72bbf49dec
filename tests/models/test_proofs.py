"""The z3 proofs: they pass on the seed, and they refute broken variants concretely.

The teeth: each weakened variant of the seed's loop must be refuted by the
lemmas that concern it, and every counterexample must be a real disagreement
with ``spec.ranges.find_available_range`` when its concrete input is run, one
that the seed as written does not have.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable, Iterator

import pytest
import z3
from hypothesis import given
from hypothesis import strategies as st

from models.proofs import CHECKS, declarative, suite
from models.proofs.cases import SearchCase
from models.proofs.gap_lemmas import gap_step_agrees
from models.proofs.growth_lemmas import growth_file_size, growth_terminates
from models.proofs.obligation import Lemma, LemmaResult, Obligation, Verdict, discharge
from models.proofs.seed import DoesNotTerminate, Weakening, run_seed
from models.proofs.smt import Model, Status, const, solve, word
from models.seed_loop import seed_find_available_range
from models.spec_checks import random_search_input
from spec.ranges import align_up, find_available_range, growth_sizes, top_fit
from spec.vocabulary import CHUNK_SIZE, INT64_MAX, MAX_PAGE, PAGE_SIZE, UINT64_MAX, FileRange

BY_NAME = {lemma.name: lemma for lemma in suite.LEMMAS}


@pytest.mark.slow
def test_every_lemma_is_proved_for_the_seed() -> None:
    lines: list[str] = []
    result = CHECKS[0].run(60.0, lines.append)
    assert result.passed, result.detail
    assert result.count == len(suite.LEMMAS)
    assert len(lines) == len(suite.LEMMAS)
    assert all(" proved " in line for line in lines), lines


@given(st.randoms(use_true_random=False))
def test_the_encoding_runs_as_the_transcribed_seed(rnd: random.Random) -> None:
    """The proved encoding, run on constants, is the line-by-line transcription."""
    allocated, file_size, length, alignment = random_search_input(rnd)
    alignment = max(alignment, PAGE_SIZE)  # a precondition of the proofs
    encoded = run_seed(allocated, file_size, length, alignment)
    assert encoded == seed_find_available_range(allocated, file_size, length, alignment)
    assert encoded == find_available_range(allocated, file_size, length, alignment)


@given(
    st.integers(0, UINT64_MAX),
    st.integers(0, UINT64_MAX),
    st.integers(1, MAX_PAGE // PAGE_SIZE).map(lambda pages: pages * PAGE_SIZE),
    st.integers(12, 63).map(lambda shift: 1 << shift),
)
def test_the_spec_terms_compute_as_spec_ranges(
    gap_start: int, gap_end: int, length: int, alignment: int
) -> None:
    """The exact-arithmetic terms are ``spec.ranges`` itself, on constants."""
    fit = declarative.top_fit(
        declarative.number(gap_start),
        declarative.number(gap_end),
        declarative.number(length),
        declarative.number(alignment),
    )
    expected = top_fit(FileRange(gap_start, gap_end), length, alignment)
    assert fit.exists.value() == (expected is not None)
    if expected is not None:
        assert fit.start.value() == expected.start
    size = gap_end >> 1  # any non-negative int64
    grown = declarative.next_growth_size(declarative.number(size))
    following = next(iter(growth_sizes(size)), None)
    assert grown.stops.value() == (following is None)
    if following is not None:
        assert grown.size.value() == following


def _refute(weakening: Weakening, lemma: Lemma) -> SearchCase:
    """Discharge ``lemma`` for ``weakening``; check the refutation reproduces concretely."""
    result = discharge(lemma, weakening)
    assert result.verdict is Verdict.REFUTED, result.summary()
    assert result.counterexample
    case = result.case
    assert case is not None, result.summary()
    assert case.weakening is weakening
    # A real disagreement with the spec on a concrete input...
    assert case.disagreement() is not None, result.summary()
    # ...that the seed as written does not have...
    faithful = SearchCase(case.allocated, case.file_size, case.length, case.alignment)
    assert faithful.disagreement() is None
    # ...rendered as a pytest case that fails.
    namespace: dict[str, object] = {}
    exec(case.pytest_source(), namespace)
    test = namespace["test_counterexample"]
    assert callable(test)
    with pytest.raises((AssertionError, DoesNotTerminate)):
        test()
    assert "concrete input" in result.summary()
    return case


REFUTATIONS = [
    (Weakening.NO_ALIGNMENT_MASK, "gap-step-agrees"),
    (Weakening.NO_ALIGNMENT_MASK, "gap-step-highest-fit"),
    (Weakening.NO_ALIGNMENT_MASK, "growth-body-agrees"),
    (Weakening.NO_ALIGNMENT_MASK, "whole-search-1-ranges"),
    (Weakening.NO_UNDERFLOW_CHECK, "gap-step-agrees"),
    (Weakening.NO_UNDERFLOW_CHECK, "gap-step-highest-fit"),
    (Weakening.NO_UNDERFLOW_CHECK, "whole-search-1-ranges"),
    (Weakening.STRICT_FIT, "gap-step-agrees"),
    (Weakening.STRICT_FIT, "gap-step-highest-fit"),
    (Weakening.STRICT_FIT, "gap-loop-invariant"),
    (Weakening.STRICT_FIT, "whole-search-1-ranges"),
    (Weakening.E61ACFB5EAEC, "growth-body-agrees"),
    (Weakening.NO_INT64_OVERFLOW_CHECK, "growth-doubling-agrees"),
    (Weakening.NO_INT64_OVERFLOW_CHECK, "growth-terminates"),
]


@pytest.mark.parametrize(("weakening", "name"), REFUTATIONS)
def test_weakened_seed_is_refuted_concretely(weakening: Weakening, name: str) -> None:
    _refute(weakening, BY_NAME[name])


@pytest.fixture
def z3_seed() -> Iterator[Callable[[int], None]]:
    """Sets z3's random seeds (so it picks other models), and restores the defaults."""

    def reseed(seed: int) -> None:
        z3.set_param("smt.random_seed", seed)
        z3.set_param("sat.random_seed", seed)

    yield reseed
    reseed(0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_refutations_are_concrete_whichever_model_z3_picks(
    seed: int, z3_seed: Callable[[int], None]
) -> None:
    """The witness does not depend on the solver's history: other seeds, other models."""
    z3_seed(seed)
    for weakening, name in REFUTATIONS:
        _refute(weakening, BY_NAME[name])


def test_an_unconfirmed_witness_is_blocked_and_the_solver_asked_again() -> None:
    """The first inputs reached agree with the spec; the search must not stop at them."""
    real = growth_terminates(Weakening.NO_INT64_OVERFLOW_CHECK)
    inputs: list[SearchCase] = []

    def agreeing_at_first(model: Model) -> SearchCase:
        case = real.case(model)
        inputs.append(case)
        if len(inputs) <= 2:  # as if the seed agreed here: the faithful loop does
            return dataclasses.replace(case, weakening=Weakening.NONE)
        return case

    obligation = dataclasses.replace(real, case=agreeing_at_first)
    result = discharge(Lemma("growth-terminates", lambda _: obligation))
    assert result.case is not None
    assert result.case.disagreement() is not None
    assert len(inputs) >= 3
    assert len(set(inputs)) == len(inputs)  # each model asked for blocks the inputs before


def test_e61acfb5eaec_wraps_a_length_above_twice_the_file_size() -> None:
    """gVisor's own earlier bug: the growth loop without its underflow check."""
    case = _refute(Weakening.E61ACFB5EAEC, BY_NAME["growth-body-agrees"])
    assert case.length > 2 * case.file_size
    wrapped = case.seed_result()
    assert wrapped is not None
    # fileSize - length wrapped below zero: the range wraps past 2**64, or at least
    # ends beyond any file an int64 size can describe.
    assert wrapped.end < wrapped.start or wrapped.end > INT64_MAX


def test_growth_from_a_non_chunk_multiple_may_round_past_int64() -> None:
    """Growth doubles whatever size it is given; chunk rounding then can overflow."""
    lemma = Lemma(
        "growth-file-size-any-start",
        functools.partial(growth_file_size, chunk_multiple_start=False),
    )
    result = discharge(lemma)
    assert result.verdict is Verdict.REFUTED
    case = result.case
    assert case is not None
    assert case.file_size % CHUNK_SIZE != 0
    chosen = find_available_range(case.allocated, case.file_size, case.length, case.alignment)
    assert chosen is not None
    assert chosen.end > case.file_size  # the file grows...
    assert align_up(chosen.end, CHUNK_SIZE) > INT64_MAX  # ...past what an int64 holds
    assert case.disagreement() is None  # the seed agrees: it is the rounding that overflows


def test_the_check_fails_with_a_reproducible_counterexample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def aligned_without_mask(_: Weakening) -> Obligation:
        """The gap step agrees with the spec, even without its alignment mask."""
        return gap_step_agrees(Weakening.NO_ALIGNMENT_MASK)

    broken = Lemma("broken", aligned_without_mask)
    monkeypatch.setattr(suite, "LEMMAS", [broken])
    result = suite.run_proofs(60.0, lambda line: None)
    assert not result.passed
    assert result.count == 0
    assert "broken: refuted" in result.detail
    assert "counterexample: " in result.detail
    assert "concrete input: ([" in result.detail
    assert "the lemma: The gap step agrees with the spec, even without" in result.detail


def test_a_proved_result_reports_no_counterexample() -> None:
    result = discharge(BY_NAME["growth-doubling-agrees"])
    assert result == LemmaResult(
        "growth-doubling-agrees", Weakening.NONE, Verdict.PROVED, result.seconds, {}, None
    )
    assert result.summary().startswith("growth-doubling-agrees: proved in")


def test_faithful_case_renders_a_passing_pytest() -> None:
    case = SearchCase((FileRange(0, CHUNK_SIZE - PAGE_SIZE),), CHUNK_SIZE, PAGE_SIZE, PAGE_SIZE)
    assert case.disagreement() is None
    namespace: dict[str, object] = {}
    exec(case.pytest_source(), namespace)
    test = namespace["test_counterexample"]
    assert callable(test)
    test()  # does not raise


def test_words_wrap_like_go() -> None:
    assert (const(0) - 1).value() == UINT64_MAX
    assert (const(1 << 63) * 2).value() == 0
    assert const(INT64_MAX + 1).sle(0).value()  # negative as an int64
    assert not const(INT64_MAX + 1).ule(0).value()  # but large as a uint64
    assert (const(0b1100) >> 2).value() == 0b11
    with pytest.raises(ValueError, match="not a ground term"):
        word("free").value()


def test_solve_finds_models_and_proves_impossibility() -> None:
    x = word("x")
    found = solve([x.ugt(5), x.ult(7)], timeout_seconds=10)
    assert found.status is Status.SAT
    assert found.model is not None
    assert found.model.value(x) == 6
    assert solve([x.ugt(5), x.ult(6)], timeout_seconds=10).status is Status.UNSAT

"""A port faithful to the seed (its defects restored) replays the corpus clean, and only
because it does not declare ``unmark-empty``: declared, replay catches D4 as it caught the seed."""

from __future__ import annotations

from models.conformance.conform import run_conform
from models.conformance.generate import DEFAULT_DIRECTORY
from models.conformance.mutants import MUTANTS
from models.conformance.process import InProcessDriver
from models.conformance.protocol import FEATURES
from models.conformance.replay import Outcome, load_vectors, replay

INSIDE = "evict/unmark-empty-inside"


def _seed_driver(*, declare_all: bool = False) -> InProcessDriver:
    driver = InProcessDriver(MUTANTS["seed"]())
    if declare_all:
        driver.features = frozenset(FEATURES)
    return driver


def test_seed_faithful_port_replays_clean_skipping_only_unmark_empty() -> None:
    results = list(replay(load_vectors(DEFAULT_DIRECTORY), _seed_driver()))
    assert results, "no vectors"
    skipped = {r.name for r in results if r.outcome is Outcome.SKIPPED}
    failed = [r.line() for r in results if r.outcome is Outcome.FAILED]
    assert not failed
    assert skipped == {INSIDE}


def test_seed_faithful_port_declaring_unmark_empty_fails_as_the_seed_did() -> None:
    vectors = [v for v in load_vectors(DEFAULT_DIRECTORY) if v.name == INSIDE]
    (result,) = replay(vectors, _seed_driver(declare_all=True))
    assert result.outcome is Outcome.FAILED
    # The state after mark_unevictable b [16, 16): the seed keeps [0, 16), we keep [0, 32).
    assert result.step is not None
    assert vectors[0].steps[result.step - 1].request["op"] == "mark_unevictable"
    assert 'expected "32", got "16"' in result.detail


def test_conform_never_draws_an_empty_unmark_inside_a_range_for_the_seed() -> None:
    result = run_conform(_seed_driver(), 3.0, lambda line: None)
    assert result.divergence is None, result.detail
    assert result.steps > 100

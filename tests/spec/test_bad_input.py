"""Every class of bad input, through the specification: the documented error, the state as it was.

The table is :mod:`tests.bad_input_cases` (shared with the impl tests). The
specification's state is one frozen value, so "nothing changed" is ``==`` on
the whole ``State``: usage, reclaim set, host model, mappings, evictable
users, counters, the reclaimer's program counter.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import pytest

from spec import SpecMemoryFile
from spec.errors import InvalidOptions
from spec.vocabulary import EvictableRange
from tests.bad_input_cases import CASES, OPTION_CASES, Case, bad, prepare, run
from tests.figures import FIGURES

SPEC_CASES = [case for case in CASES if not case.impl_only]


def check_spec_case(make: Callable[[], SpecMemoryFile], case: Case) -> None:
    """The case's call on a prepared file raises its error and leaves the State equal."""
    f = make()
    prepare(f, case)
    before = f.state
    run(f, case)
    assert f.state == before, f"{case.name}: the rejected call changed the state"


@pytest.mark.parametrize("case", SPEC_CASES, ids=[case.name for case in SPEC_CASES])
def test_bad_input_raises_the_documented_error_and_changes_nothing(case: Case) -> None:
    check_spec_case(SpecMemoryFile, case)
    FIGURES["bad inputs tried (spec)"] += 1


@pytest.mark.parametrize("opts", [o for _, o in OPTION_CASES], ids=[n for n, _ in OPTION_CASES])
def test_bad_options_are_invalid_options(opts: object) -> None:
    with pytest.raises(InvalidOptions):
        SpecMemoryFile(bad(opts))
    FIGURES["bad inputs tried (spec)"] += 1


def test_every_case_has_its_own_name() -> None:
    names = [case.name for case in CASES] + [name for name, _ in OPTION_CASES]
    assert len(set(names)) == len(names)


class ForgetsBeforeChecking(SpecMemoryFile):
    """Broken: mark_unevictable drops the user's ranges before checking the range."""

    def mark_unevictable(self, user: Hashable, er: EvictableRange) -> None:
        self.mark_all_unevictable(user)
        super().mark_unevictable(user, er)


def test_the_check_catches_a_spec_that_changes_state_before_rejecting() -> None:
    ill_formed = next(c for c in CASES if c.name == "mark_unevictable: range ill-formed")
    check_spec_case(SpecMemoryFile, ill_formed)
    with pytest.raises(AssertionError, match="changed the state"):
        check_spec_case(ForgetsBeforeChecking, ill_formed)

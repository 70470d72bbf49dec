"""The stateful differential machine: spec and impl agree, and disagreement is caught.

``TestDifferential`` runs the machine under the selected hypothesis profile.
The other tests plant a defect in the implementation and expect the machine
to fail, printing a reproducing program that names the rule at fault.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import Phase, settings

from impl import MemoryFile
from impl.accounting import MemoryAccounting
from impl.kernel import Kernel
from models.stateful import DifferentialMachine, run_for, run_machine
from spec.vocabulary import FileRange, MemoryFileOpts
from tests.source_copy import copy_source, run_in_copy

logging.getLogger("impl").setLevel(logging.ERROR)  # injected punch failures warn every time

TestDifferential = DifferentialMachine.TestCase

FIND_IT = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.generate, Phase.shrink],
    report_multiple_bugs=False,
)


def machine_with(factory: Callable[..., MemoryFile]) -> type[DifferentialMachine]:
    return type("Broken", (DifferentialMachine,), {"make_impl": staticmethod(factory)})


def caught(machine: type[DifferentialMachine]) -> str:
    """Run ``machine`` until it fails; the failure with its reproducing program."""
    with pytest.raises(AssertionError) as failure:
        run_machine(machine, FIND_IT)
    return str(failure.value) + "\n".join(getattr(failure.value, "__notes__", []))


class LazyReclaimer(MemoryFile):
    def reclaim(self) -> list[FileRange]:
        return []


def test_a_reclaimer_that_never_reclaims_is_caught() -> None:
    def factory(
        opts: MemoryFileOpts, accounting: MemoryAccounting, clock: Callable[[], int], kernel: Kernel
    ) -> MemoryFile:
        return LazyReclaimer(
            opts, accounting=accounting, background=False, clock=clock, kernel=kernel
        )

    report = caught(machine_with(factory))
    assert "reclaim" in report


CAUGHT_IN_COPY = """
from models.stateful import DifferentialMachine
from tests.models.test_stateful import caught
print(caught(DifferentialMachine))
"""


def test_huge_allocations_aligned_to_pages_are_caught(tmp_path: Path) -> None:
    # A copy of the source, edited (and so pure Python: copies carry no compiled module).
    copy = copy_source(tmp_path)
    operations = copy / "impl" / "operations.py"
    rule = "HUGE_PAGE_SIZE if length >= HUGE_PAGE_SIZE else PAGE_SIZE"
    assert operations.read_text().count(rule) == 1, "the alignment rule moved: update this test"
    operations.write_text(operations.read_text().replace(rule, "PAGE_SIZE"))
    assert "allocate" in run_in_copy(copy, CAUGHT_IN_COPY)


class NeverScans(MemoryFile):
    def update_usage(self) -> None:
        return None


def test_an_update_usage_that_never_scans_is_caught() -> None:
    def factory(
        opts: MemoryFileOpts, accounting: MemoryAccounting, clock: Callable[[], int], kernel: Kernel
    ) -> MemoryFile:
        return NeverScans(opts, accounting=accounting, background=False, clock=clock, kernel=kernel)

    report = caught(machine_with(factory))
    assert "update_usage" in report


def test_run_for_reports_a_failure_with_its_program() -> None:
    def factory(
        opts: MemoryFileOpts, accounting: MemoryAccounting, clock: Callable[[], int], kernel: Kernel
    ) -> MemoryFile:
        return LazyReclaimer(
            opts, accounting=accounting, background=False, clock=clock, kernel=kernel
        )

    result = run_for(60.0, lambda line: None, machine_with(factory))
    assert not result.passed
    assert "state.reclaim()" in result.detail

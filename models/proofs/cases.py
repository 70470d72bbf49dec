"""Concrete inputs from counterexamples, run through the seed and the spec.

A counterexample is only evidence if it reproduces: :class:`SearchCase` is a
whole ``findAvailableRange`` input (plus the variant of the algorithm it was
found for) that runs through the seed (``models.seed_loop`` for the seed as
written, :func:`models.proofs.seed.run_seed` for a weakened variant) and
through ``spec.ranges.find_available_range``, and renders itself as a pytest
function that fails while the disagreement stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.proofs.seed import DoesNotTerminate, Weakening, run_seed
from models.seed_loop import seed_find_available_range
from spec.ranges import find_available_range
from spec.vocabulary import FileRange


@dataclass(frozen=True, slots=True)
class SearchCase:
    """One input of ``findAvailableRange`` and the variant of the seed to run it on."""

    allocated: tuple[FileRange, ...]
    file_size: int
    length: int
    alignment: int
    weakening: Weakening = Weakening.NONE

    @classmethod
    def of(
        cls,
        bounds: Sequence[tuple[int, int]],
        file_size: int,
        length: int,
        alignment: int,
        weakening: Weakening,
    ) -> SearchCase:
        """A case from range bounds, dropping empty ranges (a segment set holds none)."""
        allocated = tuple(FileRange(start, end) for start, end in bounds if start < end)
        return cls(allocated, file_size, length, alignment, weakening)

    def spec_result(self) -> FileRange | None:
        return find_available_range(self.allocated, self.file_size, self.length, self.alignment)

    def seed_result(self) -> FileRange | None:
        """The seed's answer; raises DoesNotTerminate if a weakened loop runs away."""
        if self.weakening is Weakening.NONE:
            return seed_find_available_range(
                self.allocated, self.file_size, self.length, self.alignment
            )
        return run_seed(self.allocated, self.file_size, self.length, self.alignment, self.weakening)

    def disagreement(self) -> str | None:
        """How the seed (variant) and the spec differ on this input, or None if they agree."""
        try:
            seed = self.seed_result()
        except DoesNotTerminate as runaway:
            return f"{self._seed_name()} does not terminate: {runaway}"
        spec = self.spec_result()
        if seed == spec:
            return None
        return f"{self._seed_name()} returns {_show(seed)} where the spec returns {_show(spec)}"

    def call(self) -> str:
        allocated = ", ".join(f"FileRange({r.start:#x}, {r.end:#x})" for r in self.allocated)
        return f"[{allocated}], {self.file_size:#x}, {self.length:#x}, {self.alignment:#x}"

    def pytest_source(self, name: str = "test_counterexample") -> str:
        """A pytest function asserting that the seed (variant) and the spec agree here."""
        if self.weakening is Weakening.NONE:
            imports = "from models.seed_loop import seed_find_available_range\n"
            seed_call = f"seed_find_available_range({self.call()})"
        else:
            imports = "from models.proofs.seed import Weakening, run_seed\n"
            seed_call = f"run_seed({self.call()}, Weakening.{self.weakening.name})"
        return (
            imports
            + "from spec.ranges import find_available_range\n"
            + "from spec.vocabulary import FileRange\n\n\n"
            + f"def {name}() -> None:\n"
            + f"    assert {seed_call} == find_available_range({self.call()})\n"
        )

    def _seed_name(self) -> str:
        if self.weakening is Weakening.NONE:
            return "the seed"
        return f"the seed weakened ({self.weakening.value})"


def _show(result: FileRange | None) -> str:
    return "no range" if result is None else f"[{result.start:#x}, {result.end:#x})"

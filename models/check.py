"""What a check of ``pgalloc check`` is: a named run within a time budget.

Each part of the evidence (the spec's random workload and self-checks, the
z3 proofs, the model checker, the stateful machines...) offers one or more
:class:`Check` objects; ``models/checks.py`` lists them and the command line
runs them in order, reporting progress and a summary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Progress = Callable[[str], None]
"""Receives one line of progress at a time."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    passed: bool
    count: int
    """How much was checked, in ``unit``s."""
    unit: str
    seconds: float
    detail: str = ""
    """On failure, what failed and how to reproduce it."""


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    description: str
    run: Callable[[float, Progress], CheckResult]
    """Run within roughly ``budget`` seconds, reporting progress."""

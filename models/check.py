"""The checks of ``pgalloc check``: what a check is, and the registry that finds each by name.

Each part of the evidence (the spec's random workload and self-checks, the
z3 proofs, the model checker, the stateful machines...) defines its
:class:`Check` objects in a ``CHECKS`` list of its own module. :data:`REGISTRY`
names every check ``pgalloc check`` runs, in order, with the module that
defines it and its share of the time budget; a check is imported only when
it is looked up, so the command line (and the conformance drivers) start
without z3 or the proofs, and found by its name, never its position.

A check may take longer than its share when its fixed part (the proofs, the
model checker's default bounds, a corpus replay) needs it; budgeted fuzzing
(the stateful machines, ``conform``) fills the rest.

A randomized check may also be *sharded* (its ``shard`` function): ``pgalloc
check --jobs N`` then runs N shards of it in parallel, each with its share of
the budget divided by N and its own :class:`Shard` (distinct seeds), and
:func:`merge` makes their results one (see models/check_run.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
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
class Shard:
    """One of ``count`` parts of a randomized check; parts draw from disjoint seeds."""

    index: int
    """0 <= index < count; the whole check is ``Shard(0, 1)``."""
    count: int

    def seeds(self) -> Iterator[int]:
        """This shard's seeds: index, index + count, index + 2 count... (O(1) each)."""
        seed = self.index
        while True:
            yield seed
            seed += self.count

    def least(self, total: int) -> int:
        """This shard's part of a minimum of ``total`` runs (the parts add up to it)."""
        return total // self.count + (self.index < total % self.count)

    def __str__(self) -> str:
        return f"shard {self.index + 1}/{self.count}"


WHOLE = Shard(0, 1)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    description: str
    run: Callable[[float, Progress], CheckResult]
    """Run within roughly ``budget`` seconds, reporting progress."""
    shard: Callable[[float, Progress, Shard], CheckResult] | None = None
    """For a randomized check, run one shard of it (``run`` is the whole ``WHOLE`` shard)."""


def merge(name: str, shards: Sequence[tuple[Shard, CheckResult]]) -> CheckResult:
    """The shards' results as one: passed if all passed; counts added; the slowest's time.

    A failing shard's detail (its reproduction) is kept, headed by the shard.
    """
    failed = [(shard, result) for shard, result in shards if not result.passed]
    return CheckResult(
        name,
        not failed,
        sum(result.count for _, result in shards),
        next((result.unit for _, result in shards if result.unit), ""),
        max((result.seconds for _, result in shards), default=0.0),
        "\n".join(f"{shard}:\n{result.detail}" for shard, result in failed),
    )


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    module: str
    """The module whose ``CHECKS`` list holds the check named ``name``."""
    share: float
    """Its share of ``pgalloc check``'s budget; shares need not add up to one."""


REGISTRY: tuple[Entry, ...] = (
    Entry("spec-self-check", "models.spec_checks", 0.05),
    Entry("spec-workload", "models.spec_checks", 0.1),
    Entry("proofs", "models.proofs", 0.0),
    Entry("model-checker", "models.explore", 0.0),
    Entry("stateful", "models.stateful", 0.35),
    Entry("conformance", "models.conformance.checks", 0.1),
    Entry("mutation", "models.conformance.checks", 0.0),
    Entry("linearizability", "models.linearizability.checks", 0.1),
    Entry("schedules", "models.schedule.checks", 0.25),
)
"""Every check ``pgalloc check`` runs, in the order it runs them (names are unique)."""


class UnknownCheck(LookupError):
    """No registered check has this name; the message lists the names there are."""


def entry(name: str) -> Entry:
    """The registry entry of the check called ``name``."""
    for candidate in REGISTRY:
        if candidate.name == name:
            return candidate
    names = ", ".join(candidate.name for candidate in REGISTRY)
    raise UnknownCheck(f"no check named {name} (there are: {names})")


def find(name: str, module: str | None = None) -> Check:
    """The check called ``name``, imported from ``module`` (default: its entry's) now.

    O(checks in the module). A worker process is told the module, so a check
    registered only in its parent (a test's) is found too.
    """
    module = module or entry(name).module
    checks: list[Check] = importlib.import_module(module).CHECKS
    for check in checks:
        if check.name == name:
            return check
    raise UnknownCheck(f"{module}.CHECKS holds no check named {name}")

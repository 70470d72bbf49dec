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
"""

from __future__ import annotations

import importlib
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


def find(name: str) -> Check:
    """The check called ``name``, imported from its module now (O(checks in the module))."""
    module = importlib.import_module(entry(name).module)
    checks: list[Check] = module.CHECKS
    for check in checks:
        if check.name == name:
            return check
    raise UnknownCheck(f"{entry(name).module}.CHECKS holds no check named {name}")

"""The exhaustive interleaving checker over the specification's split transitions.

An explicit-state model checker: for small bounds (a few pages, one or two
client threads with short programs, the reclaimer goroutine, an eviction
goroutine per user, update_usage with its unlocked mincore window) it
explores every interleaving breadth-first, with state hashing, and checks the
specification's invariants and the allocator's safety properties in every
state reached. A violation is reported with a shortest interleaving reaching
it. See docs/model-checking.md.

Read in this order:

* :mod:`models.explore.program` — what clients do (operations, programs, local state);
* :mod:`models.explore.model` — scenarios (the bounds), the checked state, the
  replaceable bundle of spec transitions, and the state normalisation;
* :mod:`models.explore.steps` — every step any thread can take;
* :mod:`models.explore.properties` — what is checked;
* :mod:`models.explore.search` — the breadth-first search and its traces;
* :mod:`models.explore.scenarios` — default bounds, seed-defect scenarios, ``pgalloc check``.
"""

from models.explore.model import SPEC, Node, Scenario, Transitions
from models.explore.scenarios import (
    ALPHABET,
    CHECKS,
    DEFAULT_SCENARIOS,
    SEED_DEFECT_SCENARIOS,
    run_model_checker,
)
from models.explore.search import Result, Violation, explore

__all__ = [
    "ALPHABET",
    "CHECKS",
    "DEFAULT_SCENARIOS",
    "SEED_DEFECT_SCENARIOS",
    "SPEC",
    "Node",
    "Result",
    "Scenario",
    "Transitions",
    "Violation",
    "explore",
    "run_model_checker",
]

"""Every check ``pgalloc check`` runs, in order, with its share of the time budget.

A check may take longer than its share when its fixed part (the proofs, the
model checker's default bounds, a corpus replay) needs it; budgeted fuzzing
(the stateful machines, ``conform``) fills the rest.
"""

from __future__ import annotations

from models import explore, proofs, spec_checks, stateful
from models.check import Check
from models.conformance import checks as conformance
from models.linearizability import checks as linearizability
from models.schedule import checks as schedules

CHECKS: list[tuple[Check, float]] = [
    (spec_checks.CHECKS[0], 0.05),
    (spec_checks.CHECKS[1], 0.1),
    (proofs.CHECKS[0], 0.0),
    (explore.CHECKS[0], 0.0),
    (stateful.CHECKS[0], 0.35),
    (conformance.CHECKS[0], 0.1),
    (linearizability.CHECKS[0], 0.1),
    (schedules.CHECKS[0], 0.25),
]
"""(check, share of the budget); shares need not add up to one."""

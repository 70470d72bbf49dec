"""Every check ``pgalloc check`` runs, in order, with its share of the time budget."""

from __future__ import annotations

from models import spec_checks
from models.check import Check

CHECKS: list[tuple[Check, float]] = [
    (spec_checks.CHECKS[0], 0.1),
    (spec_checks.CHECKS[1], 0.2),
]
"""(check, share of the budget); shares need not add up to one."""

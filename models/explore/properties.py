"""The properties the model checker checks, in every state and after particular steps.

In every reachable state:

* :func:`spec.invariants.violations` — every invariant of the specification,
  which includes: accounting never negative and equal, kind by kind, to the
  pages known committed plus the swap booking; pages known committed are
  held by the host; pages with no references are exactly those awaiting
  reclaim;
* :func:`reference_violations` — the allocator's reference counts are the
  clients' holdings: every page's ``refs`` equals the number of live holdings
  covering it, and every held page is allocated. Together with the
  allocation checks below, this is "no page is handed out twice": two live
  holdings overlap only when one was obtained by ``inc_ref`` of the other's
  pages.

After an allocate step (:func:`step_violations`): the range overlaps no live
holding, overlaps no page awaiting reclaim, and reads as zeroes
(:func:`spec.invariants.check_fresh_allocation`; clients write non-zero bytes
to what they hold, so this has teeth). After a step that ends an
update_usage scan: :func:`spec.invariants.check_swap_booking`.

In a final state (no thread can move; :func:`final_violations`): every
client finished its program (no deadlock); once destroyed, the reclaimer
closed the file and exited and no eviction goroutine is left; otherwise
nothing awaits reclaim (no lost wake-up of the reclaimer) and, unless
evictions are delayed (MANUAL, or memcg pressure), nothing is left evictable.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from models.explore.model import Node, Scenario, client_name
from models.explore.steps import Step
from spec.errors import InvariantViolation
from spec.invariants import check_fresh_allocation, check_swap_booking, violations
from spec.state import ReclaimerStep, State
from spec.vocabulary import DelayedEviction, FileRange


def state_violations(node: Node) -> list[str]:
    """Everything wrong with ``node`` on its own (empty if nothing)."""
    return [*violations(node.state), *reference_violations(node)]


def reference_violations(node: Node) -> list[str]:
    """Where the allocator's reference counts differ from the clients' holdings."""
    held = [h.fr for client in node.clients for h in client.holdings]
    bounds = sorted({b for fr in held for b in fr} | {b for fr, _ in node.state.usage for b in fr})
    found = []
    for start, end in itertools.pairwise(bounds):
        piece = FileRange(start, end)
        holders = sum(1 for fr in held if fr.is_superset_of(piece))
        info = node.state.usage.get(start)
        refs = info.refs if info is not None else None
        if holders and refs is None:
            found.append(f"{piece} is held {holders} times but not allocated")
        elif refs is not None and refs != holders and (refs or holders):
            found.append(f"{piece} has {refs} references but {holders} holdings")
    return found


def step_violations(before: Node, step: Step) -> list[str]:
    """What is wrong with ``step`` taken from ``before`` (beyond its target state)."""
    after = step.node
    assert after is not None, "a step that raised has no target state to check"
    found = []
    fr = step.allocated
    if fr is not None:
        for index, client in enumerate(before.clients):
            for holding in client.holdings:
                if holding.fr.overlaps(fr):
                    found.append(
                        f"{fr} handed out twice: {client_name(index)} still holds {holding}"
                    )
        for waiting in _awaiting_reclaim(before.state):
            if waiting.overlaps(fr):
                found.append(f"{fr} allocated while {waiting} awaits reclaim")
        found += _failures(lambda: check_fresh_allocation(after.state, fr))
    if step.scan_ended:
        found += _failures(lambda: check_swap_booking(after.state))
    return found


def final_violations(scenario: Scenario, node: Node) -> list[str]:
    """What is wrong with ``node`` as a state where no thread can move."""
    found = [
        f"deadlock: {client_name(i)} cannot finish its program"
        for i, (client, program) in enumerate(zip(node.clients, scenario.programs, strict=True))
        if client.done < program.length() or client.pending is not None
    ]
    state = node.state
    if state.destroyed:
        if state.file_open or state.reclaimer.step is not ReclaimerStep.EXITED:
            found.append("destroyed, yet the reclaimer did not close the file and exit")
        if any(info.evicting for _, info in state.evictable):
            found.append("destroyed, yet an eviction goroutine never finished")
        return found
    if state.reclaim or any(info.refs == 0 for _, info in state.usage):
        found.append("everything stopped, yet pages still await reclaim (a lost wake-up)")
    opts = state.opts
    prompt = opts.delayed_eviction is DelayedEviction.DISABLED or (
        opts.delayed_eviction is DelayedEviction.ENABLED and not opts.use_host_memcg_pressure
    )
    if prompt and any(info.ranges for _, info in state.evictable):
        found.append("everything stopped, yet evictable ranges were never evicted")
    return found


def _awaiting_reclaim(state: State) -> list[FileRange]:
    held = [state.reclaimer.range] if state.reclaimer.range is not None else []
    return [*state.reclaim.ranges(), *held]


def _failures(check: Callable[[], None]) -> list[str]:
    try:
        check()
    except InvariantViolation as violation:
        return [str(violation)]
    return []

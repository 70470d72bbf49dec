"""The reclaimer goroutine (``runReclaim``) as explicit steps.

The seed's reclaimer loops: take the *last* range of the reclaim set (Allocate
works from the end of the file inwards, so this keeps its search short),
punch a hole in it without holding the lock, clear knownCommitted, then remove
it from usage. Out of work, it starts evictions (ENABLED without memcg
pressure) and waits to be signalled. When it finds ``destroyed`` set, it
closes the file, unmaps every chunk and exits. If it can neither punch nor
zero a range, the seed panics; ours keeps the range (never to be reused) and
stops (FAILED) until destroy.

Each function below is one step between two lock operations, and
:func:`reclaimer_step` runs whichever step is next. A test or a model checker
decides when each runs; ``impl/`` runs the same sequence on a thread.
"""

from __future__ import annotations

from dataclasses import replace

from spec import host as hostmodel
from spec.allocator import manually_zero, mark_decommitted, needs_mapping
from spec.errors import InvalidArgument, InvariantViolation
from spec.eviction import start_evictions_locked
from spec.state import FREED, Reclaimer, ReclaimerStep, State
from spec.vocabulary import DelayedEviction, FileRange


def _expect(state: State, step: ReclaimerStep) -> FileRange | None:
    if state.reclaimer.step is not step:
        raise InvalidArgument(f"the reclaimer is {state.reclaimer.step.value}, not {step.value}")
    return state.reclaimer.range


def _taken(state: State, step: ReclaimerStep) -> FileRange:
    fr = _expect(state, step)
    assert fr is not None, "a reclaimer step past DECOMMITTING always holds its range"
    return fr


def find_reclaimable(state: State) -> State:
    """findReclaimable: take the last reclaimable range, or go idle, or exit.

    One step under the lock: the inner loop of the seed runs until it either
    hands out a range (DECOMMITTING), sees ``destroyed`` (EXITING), or waits
    (WAITING), after starting evictions if it is the one to start them.
    """
    _expect(state, ReclaimerStep.RUNNING)
    while True:
        if state.destroyed:
            return replace(state, reclaimer=Reclaimer(ReclaimerStep.EXITING))
        if not state.reclaimable:
            opts = state.opts
            if (
                opts.delayed_eviction is DelayedEviction.ENABLED
                and not opts.use_host_memcg_pressure
            ):
                # No work to do: evict pending evictable allocations to get
                # more reclaimable pages before going to sleep.
                state, _ = start_evictions_locked(state)
            return replace(state, reclaimer=Reclaimer(ReclaimerStep.WAITING))
        last = state.reclaim.last()
        if last is not None:
            fr = last[0]
            return replace(
                state,
                reclaim=state.reclaim.remove(fr),
                reclaimer=Reclaimer(ReclaimerStep.DECOMMITTING, fr),
            )
        state = replace(state, reclaimable=False)


def decommit_file(
    state: State, punch_error: int | None = None, map_error: int | None = None
) -> State:
    """Punch a hole in the taken range, without the lock.

    With ``manual_zeroing`` nothing is done: such pages are zeroed when
    allocated. If punching fails (``punch_error``), the seed logs a warning
    and zeroes the pages by hand, so they still read as zeroes when reused.
    If that fails too (``map_error``: a chunk cannot be mapped), the seed
    panics; the reclaimer keeps the range, so it is never reused, and stops:
    FAILED, with the errno.
    """
    fr = _taken(state, ReclaimerStep.DECOMMITTING)
    if not state.opts.manual_zeroing:
        if punch_error is None:
            state = replace(state, host=hostmodel.punch_hole(state.host, fr))
        elif map_error is not None and needs_mapping(state, fr):
            return replace(state, reclaimer=Reclaimer(ReclaimerStep.FAILED, fr, map_error))
        else:
            state = manually_zero(state, fr)
    return replace(state, reclaimer=Reclaimer(ReclaimerStep.MARKING_DECOMMITTED, fr))


def mark_range_decommitted(state: State) -> State:
    """markDecommitted of the taken range, under the lock."""
    fr = _taken(state, ReclaimerStep.MARKING_DECOMMITTED)
    state = mark_decommitted(state, fr)
    return replace(state, reclaimer=Reclaimer(ReclaimerStep.MARKING_RECLAIMED, fr))


def mark_reclaimed(state: State) -> State:
    """markReclaimed: remove the taken range from usage, under the lock.

    Every page of it must be uncommitted, unreferenced System memory; the
    seed panics otherwise (an internal error, not bad input).
    """
    fr = _taken(state, ReclaimerStep.MARKING_RECLAIMED)
    if not state.usage.covers(fr) or any(info != FREED for _, info in state.usage.within(fr)):
        raise InvariantViolation(f"reclaimed pages {fr} are not all free: {state.usage}")
    return replace(state, usage=state.usage.remove(fr), reclaimer=Reclaimer(ReclaimerStep.RUNNING))


def exit_reclaimer(state: State) -> State:
    """The end of runReclaim: close the file and unmap every chunk.

    A reclaimer that FAILED gets here once the file is destroyed, still
    holding the range it could not reclaim.
    """
    if state.reclaimer.step is not ReclaimerStep.FAILED or not state.destroyed:
        _expect(state, ReclaimerStep.EXITING)
    return replace(
        state,
        file_open=False,
        mapped_chunks=frozenset(),
        reclaimer=replace(state.reclaimer, step=ReclaimerStep.EXITED),
    )


def reclaimer_runnable(state: State) -> bool:
    """Whether the reclaimer has a step to take (not waiting, not gone, not failed but live)."""
    step = state.reclaimer.step
    if step is ReclaimerStep.FAILED:
        return state.destroyed
    return step not in (ReclaimerStep.WAITING, ReclaimerStep.EXITED)


def reclaimer_step(
    state: State, punch_error: int | None = None, map_error: int | None = None
) -> State:
    """Run the reclaimer's next step (it must be runnable)."""
    step = state.reclaimer.step
    if step is ReclaimerStep.RUNNING:
        return find_reclaimable(state)
    if step is ReclaimerStep.DECOMMITTING:
        return decommit_file(state, punch_error, map_error)
    if step is ReclaimerStep.MARKING_DECOMMITTED:
        return mark_range_decommitted(state)
    if step is ReclaimerStep.MARKING_RECLAIMED:
        return mark_reclaimed(state)
    if step is ReclaimerStep.EXITING or (step is ReclaimerStep.FAILED and state.destroyed):
        return exit_reclaimer(state)
    raise InvalidArgument(f"the reclaimer is {step.value} and has no step to take")

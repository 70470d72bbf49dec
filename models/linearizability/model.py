"""The specification as the sequential model of a concurrent history.

:func:`apply` runs one recorded operation on a spec :class:`State` and returns
the new state and what the specification says the operation returns, to be
compared with what it did return. The spec is pure, so backtracking is free.

What the model leaves out, and why: ``update_usage`` drops the lock around
each ``mincore``, so it is not atomic and cannot be linearized as one
operation (a page committed behind its scan is booked as swap, which neither
order of an atomic scan would do). It is recorded but applied as a no-op, so
the model's known-committed bits, accounting and host contents are not
compared; every result the history holds depends only on the rest (ranges,
references, kinds, the reclaim set, the file size, the evictable sets and
the background threads' progress). The accounting is checked separately, at
quiescence (:mod:`models.linearizability.stress`). Likewise ``map_internal``
is not recorded: it changes only which chunks are mapped.

A history ends with ``observe``, the file's :func:`abstract` observation
once every thread is done: a linearization must also end in that state (of
the orders that explain every result, not all need end where the file did).

A background step that could not have run in the model's state (the
reclaimer is not where the step needs it) yields :data:`IMPOSSIBLE`, which no
recorded result equals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from models.linearizability.history import Operation, raised
from spec import allocator, eviction, reclaimer
from spec.state import ReclaimerStep, State, observe, user_info
from spec.vocabulary import HostFaults, Observation

IMPOSSIBLE = object()
"""The model's result for a step that cannot happen in the current state."""


def _taken(state: State) -> object:
    """What a find step returns: the range taken, "wait" or "exit"."""
    step = state.reclaimer.step
    if step is ReclaimerStep.DECOMMITTING:
        assert state.reclaimer.range is not None
        return tuple(state.reclaimer.range)
    return "wait" if step is ReclaimerStep.WAITING else "exit"


def _reclaim_find(state: State, faults: HostFaults, manual: object) -> tuple[State, object]:
    if state.reclaimer.step is not ReclaimerStep.RUNNING:
        return state, IMPOSSIBLE
    state = reclaimer.find_reclaimable(state)
    return state, _taken(state)


def _holds(state: State, step: ReclaimerStep, taken: object) -> bool:
    """Whether the reclaimer is at ``step`` with the range ``taken``."""
    fr = state.reclaimer.range
    return state.reclaimer.step is step and fr is not None and tuple(fr) == taken


def _reclaim_punch(state: State, faults: HostFaults, taken: object) -> tuple[State, object]:
    if not _holds(state, ReclaimerStep.DECOMMITTING, taken):
        return state, IMPOSSIBLE
    return reclaimer.decommit_file(state, faults.punch), None


def _reclaim_mark(state: State, faults: HostFaults, taken: object) -> tuple[State, object]:
    if not _holds(state, ReclaimerStep.MARKING_DECOMMITTED, taken):
        return state, IMPOSSIBLE
    state = reclaimer.mark_reclaimed(reclaimer.mark_range_decommitted(state))
    state = reclaimer.find_reclaimable(state)
    return state, _taken(state)


def _evict_take(state: State, faults: HostFaults, user: object) -> tuple[State, object]:
    info = user_info(state, user)
    if info is None or not info.evicting:
        return state, IMPOSSIBLE
    state = eviction.take_eviction(state, user)
    info = user_info(state, user)
    if info is None or info.in_flight is None:
        return state, None
    return eviction.deliver_eviction(state, user)


def _no_op(state: State, faults: HostFaults, *args: object) -> tuple[State, object]:
    allocator.require_live(state)
    return state, None


def _start_evictions(state: State, faults: HostFaults) -> tuple[State, object]:
    return eviction.start_evictions(state)[0], None


Step = Callable[..., tuple[State, object]]

STEPS: dict[str, Step] = {
    "allocate": lambda s, faults, length, kind: allocator.allocate(s, length, kind),
    "inc_ref": lambda s, faults, fr: (allocator.inc_ref(s, fr), None),
    "dec_ref": lambda s, faults, fr: (allocator.dec_ref(s, fr), None),
    "decommit": lambda s, faults, fr: (allocator.decommit(s, fr, faults.punch), None),
    "mark_evictable": lambda s, faults, user, er: (eviction.mark_evictable(s, user, er), None),
    "mark_unevictable": lambda s, faults, user, er: (eviction.mark_unevictable(s, user, er), None),
    "mark_all_unevictable": lambda s, faults, user: (eviction.mark_all_unevictable(s, user), None),
    "start_evictions": _start_evictions,
    "memcg_pressure": lambda s, faults: eviction.memcg_pressure(s),
    "total_size": lambda s, faults: (s, allocator.total_size(s)),
    "update_usage": _no_op,
    "destroy": lambda s, faults: (allocator.destroy(s), None),
    "observe": lambda s, faults: (s, abstract(observe(s, repr))),
    "reclaim_find": _reclaim_find,
    "reclaim_punch": _reclaim_punch,
    "reclaim_mark": _reclaim_mark,
    "evict_take": _evict_take,
}
"""Each operation the history may hold, as a spec transition: (state, faults, *args)."""


def abstract(observation: Observation) -> Observation:
    """``observation`` without what the model does not follow: known-committed bits, accounting."""
    return replace(
        observation,
        usage=tuple((fr, kind, refs, False) for fr, kind, refs, _ in observation.usage),
        accounting=(),
        usage_expected=0,
        usage_swapped=0,
    )


def apply(state: State, op: Operation, faults: HostFaults) -> tuple[State, object]:
    """Run ``op`` on ``state``: the next state and the spec's result (a raise changes nothing).

    An operation that starts eviction threads returns ``(result, users started)``,
    as recorded (see :attr:`Operation.started`).
    """
    try:
        after, result = STEPS[op.name](state, faults, *op.args)
    except Exception as error:
        return state, raised(error)
    started = _evicting(after) - _evicting(state)
    if started:
        # In registration order: the order in which the file starts them.
        return after, (result, tuple(u for u in eviction.evicting_users(after) if u in started))
    return after, result


def expected(op: Operation) -> object:
    """What :func:`apply` must return for ``op``, as recorded."""
    return (op.result, op.started) if op.started else op.result


def _evicting(state: State) -> set[object]:
    return set(eviction.evicting_users(state))

"""The search for a linearization of a history (Wing & Gong, with Lowe's memo).

Each thread's operations are sequential, so a partial linearization is the
number of operations taken from each thread (a tuple, ``heads``). An
operation can come next if it started before every other pending operation
ended; the search tries those, earliest end first, applying the model and
keeping only those whose result matches what was recorded. ``(heads, state)``
pairs already explored are not explored again, which keeps the search
polynomial in practice: at most one operation per thread is ever a candidate.

It is iterative (histories have thousands of operations) and bounded by
``max_nodes``; past that the verdict is inconclusive, never a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from models.linearizability.history import Operation
from models.linearizability.model import expected
from spec.state import State

Apply = Callable[[State, Operation], tuple[State, object]]


@dataclass(frozen=True, slots=True)
class Verdict:
    linearizable: bool
    """True: ``order`` is a linearization. False: none exists, or the search gave up."""
    operations: int
    nodes: int
    """Search nodes explored."""
    order: tuple[Operation, ...] = ()
    """A linearization, when one was found."""
    gave_up: bool = False
    """The search hit ``max_nodes`` before deciding."""
    stuck_after: tuple[Operation, ...] = ()
    """The longest linearizable prefix found, when there is no linearization."""
    stuck_at: tuple[tuple[Operation, object], ...] = field(default=())
    """Each operation that could have come next there, with what the model returned instead."""

    def explain(self) -> str:
        if self.linearizable:
            return f"linearizable: {self.operations} operations, {self.nodes} search nodes"
        if self.gave_up:
            return (
                f"inconclusive: gave up after {self.nodes} search nodes, with at most "
                f"{len(self.stuck_after)} of {self.operations} operations linearized"
            )
        lines = [
            f"not linearizable: {len(self.stuck_after)} of {self.operations} operations "
            "linearize; the last of them:"
        ]
        lines += [f"  {op}" for op in self.stuck_after[-8:]]
        lines.append("none of these can come next (recorded result / the spec's):")
        lines += [f"  {op}  /  spec: {expected!r}" for op, expected in self.stuck_at]
        return "\n".join(lines)


def by_thread(history: Sequence[Operation]) -> list[list[Operation]]:
    """The history split by thread, each in its own order (which must be sequential)."""
    threads: dict[int, list[Operation]] = {}
    for op in sorted(history, key=lambda op: op.start):
        ops = threads.setdefault(op.thread, [])
        if ops and ops[-1].end > op.start:
            raise ValueError(f"thread {op.thread} overlaps itself: {ops[-1]} and {op}")
        ops.append(op)
    return list(threads.values())


def linearize(
    history: Sequence[Operation], initial: State, apply: Apply, *, max_nodes: int = 2_000_000
) -> Verdict:
    """Find an order of ``history`` that the model, started from ``initial``, agrees with."""
    threads = by_thread(history)
    total = len(history)
    heads0 = (0,) * len(threads)
    seen: set[tuple[tuple[int, ...], State]] = {(heads0, initial)}
    # Each frame: (heads, state, candidates not yet tried); the path is the order so far.
    stack = [(heads0, initial, _candidates(threads, heads0))]
    path: list[Operation] = []
    nodes = 0
    best: tuple[tuple[Operation, ...], tuple[int, ...], State] = ((), heads0, initial)
    while stack:
        heads, state, candidates = stack[-1]
        if not candidates:
            stack.pop()
            if path:
                path.pop()
            continue
        t = candidates.pop()
        op = threads[t][heads[t]]
        nodes += 1
        if nodes > max_nodes:
            return Verdict(False, total, nodes, gave_up=True, stuck_after=best[0])
        after, result = apply(state, op)
        if result != expected(op):
            continue
        advanced = (*heads[:t], heads[t] + 1, *heads[t + 1 :])
        if (advanced, after) in seen:
            continue
        seen.add((advanced, after))
        path.append(op)
        if len(path) == total:
            return Verdict(True, total, nodes, order=tuple(path))
        if len(path) > len(best[0]):
            best = (tuple(path), advanced, after)
        stack.append((advanced, after, _candidates(threads, advanced)))
    prefix, heads, state = best
    stuck = tuple(
        (threads[t][heads[t]], apply(state, threads[t][heads[t]])[1])
        for t in reversed(_candidates(threads, heads))
    )
    return Verdict(False, total, nodes, stuck_after=prefix, stuck_at=stuck)


def _candidates(threads: list[list[Operation]], heads: tuple[int, ...]) -> list[int]:
    """The threads whose next operation may come next, the likeliest last (it is popped first).

    Likeliest: the lowest lock-acquisition hint (operations without one, which
    took no lock, before all), then the earliest end.
    """
    pending = [t for t, ops in enumerate(threads) if heads[t] < len(ops)]
    if not pending:
        return []
    first_end = min(threads[t][heads[t]].end for t in pending)
    ready = [t for t in pending if threads[t][heads[t]].start <= first_end]
    return sorted(ready, key=lambda t: _likelihood(threads[t][heads[t]]), reverse=True)


def _likelihood(op: Operation) -> tuple[int, int]:
    return (-1 if op.hint is None else op.hint, op.end)

"""Counterexamples as traces: one lane per thread, the observation after every step.

The model checker (:mod:`models.explore`) reports a violation as the steps
of a shortest interleaving, ``thread: action``; :func:`from_violation`
replays them from the scenario's initial state to recover the state after
each step. The linearizability checker (:mod:`models.linearizability`)
reports the longest prefix of a history that linearizes and the operations
none of which can come next; :func:`from_linearization` applies the prefix to
the model to recover each state. Either way each state is turned into the
observation's JSON and read back through the schema
(:mod:`models.picture.observation`), like a port's, so the picture knows
nothing else.

Cost: one successor expansion, or one model step, per trace step.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import replace

from models.conformance.codec import observation_json
from models.explore.model import Node, Scenario, client_name, initial_node
from models.explore.search import Violation
from models.explore.steps import successors
from models.linearizability.history import Operation, Raised
from models.linearizability.model import apply
from models.linearizability.search import Verdict
from models.linearizability.stress import StressReport
from models.picture.observation import Broken, Observation, parse
from models.picture.trace import Frame, Trace, one_line
from spec import allocator
from spec.arguments import normalize_opts
from spec.state import State, observe


def _observation(state: State, label: Callable[[object], str] = str) -> Observation | Broken:
    return parse(observation_json(observe(state, label)))


def from_violation(scenario: Scenario, violation: Violation) -> Trace:
    """The model checker's counterexample, replayed step by step from ``scenario``'s start."""
    start = initial_node(scenario)
    node: Node | None = start
    frames = [
        Frame((0,), "", "start: " + _options(scenario), "", True, _observation(start.state), True)
    ]
    lanes = [client_name(i) for i in range(len(scenario.programs))]
    for number, line in enumerate(violation.trace, 1):
        thread, _, action = line.partition(": ")
        if thread not in lanes:
            lanes.append(thread)
        problems: tuple[str, ...] = ()
        if node is not None:
            step = next((s for s in successors(scenario, node) if str(s) == line), None)
            if step is None:
                raise ValueError(
                    f"step {number} ({line}) is not a step of scenario {scenario.name}"
                )
            node = step.node
            problems = (f"raised {step.error}",) if step.error else ()
        last = number == len(violation.trace)
        frames.append(
            Frame(
                (number,),
                thread,
                action,
                "",
                not problems,
                _observation(node.state) if node is not None else frames[-1].observation,
                node is not None,
                problems=(*problems, *(violation.problems if last else ())),
            )
        )
    notes = (
        f"The model checker's shortest interleaving of scenario {scenario.name} "
        f"that breaks a property ({len(violation.trace)} steps):",
        *(f"  violated: {problem}" for problem in violation.problems),
        *scenario.describe().splitlines(),
    )
    return Trace("counterexample", scenario.name, "", tuple(frames), tuple(lanes), notes)


def _options(scenario: Scenario) -> str:
    return scenario.describe().splitlines()[0].removeprefix("scenario ").rstrip(":")


def from_linearization(
    name: str,
    verdict: Verdict,
    initial: State,
    apply: Callable[[State, Operation], tuple[State, object]],
) -> Trace:
    """The linearizability checker's counterexample: the prefix that linearizes, step by step,
    then the operations that could come next, each with the spec's result and the recorded one.
    """
    if verdict.linearizable:
        raise ValueError("the history is linearizable: there is no counterexample to draw")
    threads = _thread_names(verdict.stuck_after, [op for op, _ in verdict.stuck_at])
    state = initial
    frames = [Frame((0,), "", "start", "", True, _observation(state, repr), True)]
    for number, op in enumerate(verdict.stuck_after, 1):
        state, result = apply(state, op)
        frames.append(
            Frame(
                (number,),
                threads[op.thread],
                _call(op),
                one_line(_show(result)),
                not isinstance(result, Raised),
                _observation(state, repr),
                True,
                span=(op.start, op.end),
            )
        )
    next_number = len(verdict.stuck_after) + 1
    for offset, (op, spec) in enumerate(verdict.stuck_at):
        frames.append(
            Frame(
                (next_number + offset,),
                threads[op.thread],
                _call(op),
                one_line(_show(op.result)),
                False,
                frames[-1].observation if offset else _observation(state, repr),
                False,
                problems=(
                    f"cannot come next: it returned {_show(op.result)}, the specification "
                    f"returns {_show(spec)} here",
                ),
                span=(op.start, op.end),
            )
        )
    notes = (
        f"{len(verdict.stuck_after)} of {verdict.operations} operations linearize; "
        f"none of the last {len(verdict.stuck_at)} can come next.",
    )
    return Trace(
        "counterexample", name, "", tuple(frames), tuple(dict.fromkeys(threads.values())), notes
    )


def from_stress_report(report: StressReport) -> Trace:
    """A failed stress run of the linearizability checker (see :func:`from_linearization`)."""
    config = report.config
    name = f"linearizability seed {config.seed}"
    initial = allocator.new_memory_file(normalize_opts(config.opts))
    trace = from_linearization(
        name, report.verdict, initial, lambda state, op: apply(state, op, config.faults)
    )
    head = (
        f"{config.threads} threads x {config.operations} operations, {config.opts}, {config.faults}"
    )
    return replace(trace, notes=(head, *trace.notes, *report.problems))


def _thread_names(*groups: Sequence[Operation]) -> dict[int, str]:
    """Thread ids as short names, by first appearance; background threads by what they do."""
    names: dict[int, str] = {}
    for ops in groups:
        for op in ops:
            if op.thread not in names:
                background = (
                    op.name.split("_")[0] if op.name.startswith(("reclaim_", "evict_")) else ""
                )
                name = {"reclaim": "reclaimer", "evict": "evictor"}.get(background, "t")
                taken = sum(n.rstrip("0123456789") == name for n in names.values())
                names[op.thread] = name if name != "t" and not taken else f"{name}{taken + 1}"
    return names


def _call(op: Operation) -> str:
    return f"{op.name}({', '.join(map(_show, op.args))})"


def _show(value: object) -> str:
    """A recorded argument or result as a porter reads it: ranges in hex, enums by name."""
    if isinstance(value, enum.Enum):
        return value.name
    start, end = getattr(value, "start", None), getattr(value, "end", None)
    if isinstance(start, int) and isinstance(end, int):
        return f"[{hex(start)}, {hex(end)})"
    if isinstance(value, tuple) and len(value) == 2 and all(type(v) is int for v in value):
        return f"[{hex(value[0])}, {hex(value[1])})"  # a range the reclaimer took
    if isinstance(value, tuple):
        return "(" + ", ".join(map(_show, value)) + ")"
    if isinstance(value, Raised):
        return f"raised {value.error}" + (f" (errno {value.errno})" if value.errno else "")
    return repr(value)

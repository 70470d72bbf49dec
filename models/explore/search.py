"""Breadth-first exploration of every interleaving, with state hashing.

:func:`explore` visits every node reachable from a scenario's initial node,
each once (nodes are hashable and normalised, so equal nodes are one), and
checks the properties of :mod:`models.explore.properties` on every new node,
every transition, and every final node. It stops at the first violation.

Because the search is breadth-first and checks each transition as it is
generated (finishing the current level before reporting, in case a final
state there is violated with one step fewer), the violation reported is one
at the smallest depth: the trace printed (rebuilt from parent pointers) is a
shortest interleaving reaching it.

Cost: time and memory linear in the number of nodes and transitions, each
node stored once with its parent and the step that first reached it.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from models.explore.model import Node, Scenario, initial_node
from models.explore.properties import final_violations, state_violations, step_violations
from models.explore.steps import Step, successors

PROGRESS_INTERVAL = 3.0
"""Seconds between progress lines."""


@dataclass(frozen=True, slots=True)
class Violation:
    """A property broken, and a shortest interleaving that breaks it."""

    scenario: str
    problems: tuple[str, ...]
    trace: tuple[str, ...]
    """The steps from the initial state, each ``thread: operation``."""

    def __str__(self) -> str:
        steps = "\n".join(f"  {n:2}. {step}" for n, step in enumerate(self.trace, 1))
        problems = "\n".join(f"  - {problem}" for problem in self.problems)
        return (
            f"scenario {self.scenario}: violated after {len(self.trace)} steps:\n"
            f"{steps}\nviolations:\n{problems}"
        )


@dataclass(frozen=True, slots=True)
class Result:
    scenario: str
    states: int
    transitions: int
    depth: int
    """The longest shortest path to a state: how deep the search went."""
    final_states: int
    seconds: float
    violations: tuple[Violation, ...]
    """Shortest first; at most one unless every kind of violation was asked for."""
    complete: bool
    """False if ``max_states`` stopped the search before it saw everything."""

    @property
    def violation(self) -> Violation | None:
        """A shortest violation found, if any."""
        return self.violations[0] if self.violations else None

    def summary(self) -> str:
        outcome = (
            f"{len(self.violations)} violation(s)"
            if self.violations
            else "complete"
            if self.complete
            else "INCOMPLETE"
        )
        return (
            f"{self.scenario}: {self.states:,} states, {self.transitions:,} transitions, "
            f"depth {self.depth}, {self.final_states:,} final, {self.seconds:.1f}s: {outcome}"
        )


def explore(
    scenario: Scenario,
    progress: Callable[[str], None] | None = None,
    max_states: int | None = None,
    every_kind: bool = False,
) -> Result:
    """Explore every interleaving of ``scenario`` and check every property.

    Stops at a shortest violation; with ``every_kind``, goes on and reports a
    shortest trace for each kind of violation (:func:`kind`), never exploring
    past a violation. ``progress`` receives a line every few seconds.
    """
    return _Search(scenario, progress, max_states, every_kind).run()


def kind(problem: str) -> str:
    """What sort of problem ``problem`` describes: its text up to a colon, numbers elided."""
    return re.sub(r"0x[0-9a-f]+|\d+", "#", problem.split(":", maxsplit=1)[0])


class _Search:
    """One breadth-first search: the visited nodes with their parents, and the frontier."""

    def __init__(
        self,
        scenario: Scenario,
        progress: Callable[[str], None] | None,
        max_states: int | None,
        every_kind: bool,
    ) -> None:
        self.scenario = scenario
        self.progress = progress
        self.max_states = max_states
        self.every_kind = every_kind
        self.started = self.last_report = time.monotonic()
        root = initial_node(scenario)
        self.parents: dict[Node, tuple[Node, str] | None] = {root: None}
        self.frontier: deque[tuple[Node, int]] = deque([(root, 0)])
        self.transitions = self.depth = self.finals = 0
        self.found: list[Violation] = []
        self.kinds: set[str] = set()
        if problems := state_violations(root):
            self.frontier.clear()
            self.report(problems, root)

    def run(self) -> Result:
        while self.frontier:
            node, level = self.frontier.popleft()
            if self.found and not self.every_kind:
                # Found while expanding the previous level (one step longer than this
                # one): only a final state of this level could still be shorter.
                if level > self.depth:
                    break
                if next(successors(self.scenario, node), None) is None:
                    self.check_final(node, shorter=True)
                continue
            self.depth = max(self.depth, level)
            self.expand(node, level)
            if self.max_states is not None and len(self.parents) >= self.max_states:
                return self.result(complete=False)
            self.report_progress()
        return self.result(complete=True)

    def expand(self, node: Node, level: int) -> None:
        moved = False
        for step in successors(self.scenario, node):
            moved = True
            self.transitions += 1
            if step.node is None:
                self.report([f"{step.thread} raised {step.error}"], node, step)
            elif problems := step_violations(node, step):
                self.report(problems, node, step)
            elif step.node not in self.parents:
                self.parents[step.node] = (node, str(step))
                if problems := state_violations(step.node):
                    self.report(problems, step.node)
                else:
                    self.frontier.append((step.node, level + 1))
            if self.found and not self.every_kind:
                return
        if not moved:
            self.finals += 1
            self.check_final(node)

    def check_final(self, node: Node, shorter: bool = False) -> None:
        if problems := final_violations(self.scenario, node):
            if shorter:
                self.found.clear()
            self.report(problems, node)

    def report(self, problems: list[str], node: Node, last: Step | None = None) -> None:
        """Record a violation, unless every kind of problem in it has a shorter one already."""
        kinds = {kind(problem) for problem in problems}
        if self.found and (not self.every_kind or kinds <= self.kinds):
            return
        self.kinds |= kinds
        trace = _trace(self.parents, node)
        if last is not None:
            trace.append(str(last))
        self.found.append(Violation(self.scenario.name, tuple(problems), tuple(trace)))

    def result(self, complete: bool) -> Result:
        violations = tuple(sorted(self.found, key=lambda v: len(v.trace)))
        return Result(
            self.scenario.name,
            len(self.parents),
            self.transitions,
            self.depth,
            self.finals,
            time.monotonic() - self.started,
            violations,
            complete,
        )

    def report_progress(self) -> None:
        if self.progress is None or time.monotonic() - self.last_report < PROGRESS_INTERVAL:
            return
        self.last_report = time.monotonic()
        self.progress(
            f"{self.scenario.name}: {len(self.parents):,} states, {self.transitions:,} "
            f"transitions, depth {self.depth}, {len(self.frontier):,} queued"
        )


def _trace(parents: dict[Node, tuple[Node, str] | None], node: Node) -> list[str]:
    """The steps from the root to ``node``, following parent pointers."""
    steps = []
    entry = parents[node]
    while entry is not None:
        node, step = entry
        steps.append(step)
        entry = parents[node]
    steps.reverse()
    return steps

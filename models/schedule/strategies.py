"""Who runs at each scheduling point: random, PCT, replay, and the bounded exhaustive search.

Every strategy sees the runnable threads (indices, ascending) and the thread
that reached the point if it may go on; it returns one of the runnable.
Choosing another than ``current`` is a *preemption*.

* :class:`RandomWalk` — uniform at every point (Shuttle's random scheduler).
* :class:`Pct` — Burckhardt et al.'s probabilistic concurrency testing: each
  thread a random priority, the highest runnable runs, and at ``depth - 1``
  random steps the running thread drops below all others. A bug of depth
  ``d`` is found with probability at least ``1 / (n · k^(d-1))`` per run
  (``n`` threads, ``k`` steps); ``k`` is learnt from the runs so far.
* :class:`Replay` — a recorded schedule, exactly (``strict``), or as far as it
  stays possible (what shrinking needs); past its end, no preemption.
* :class:`Exhaustive` — every schedule with at most ``bound`` preemptions
  (CHESS's iterative context bounding), one run at a time: each run replays
  a prefix and continues without preempting; the search then backtracks to
  the deepest point with an untried choice within the bound.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from models.schedule.scheduler import Decision


def keep_going(runnable: Sequence[int], current: int | None) -> int:
    """The non-preemptive choice: ``current`` if it may go on, else the lowest runnable."""
    return current if current is not None else runnable[0]


class RandomWalk:
    """A uniformly random runnable thread at every point."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def choose(self, runnable: Sequence[int], current: int | None) -> int:
        return self._rng.choice(runnable)


class Pct:
    """PCT with ``depth`` (see the module docstring); ``steps``: the expected run length."""

    def __init__(self, seed: int, depth: int, steps: int) -> None:
        self._rng = random.Random(seed)
        self._depth = depth
        self._priorities: dict[int, float] = {}
        """Initial priorities are in [depth, depth + 1); the i-th change point sets depth - i."""
        self._changes = sorted(self._rng.sample(range(1, max(steps, depth) + 1), depth - 1))
        self._step = 0

    def choose(self, runnable: Sequence[int], current: int | None) -> int:
        for t in runnable:
            if t not in self._priorities:
                self._priorities[t] = self._depth + self._rng.random()
        self._step += 1
        best = max(runnable, key=self._priorities.__getitem__)
        if self._changes and self._step == self._changes[0]:
            self._changes.pop(0)
            self._priorities[best] = float(self._depth - 1 - len(self._changes))
            best = max(runnable, key=self._priorities.__getitem__)
        return best


class Diverged(Exception):
    """A strict replay asked for a thread that cannot run there: the program is not the same."""


class Replay:
    """Replays ``choices``; lenient replay falls back to no preemption where one is impossible."""

    def __init__(self, choices: Sequence[int], *, strict: bool = True) -> None:
        self._choices = list(choices)
        self._strict = strict
        self._step = 0

    def choose(self, runnable: Sequence[int], current: int | None) -> int:
        step, self._step = self._step, self._step + 1
        if step < len(self._choices):
            wanted = self._choices[step]
            if wanted in runnable:
                return wanted
            if self._strict:
                raise Diverged(f"step {step}: thread {wanted} cannot run (runnable: {runnable})")
        return keep_going(runnable, current)


@dataclass
class _Frame:
    runnable: tuple[int, ...]
    current: int | None
    tried: set[int]
    preemptions_before: int


@dataclass
class Exhaustive:
    """The schedules with at most ``bound`` preemptions, one per :meth:`next_run`."""

    bound: int
    _stack: list[_Frame] = field(default_factory=list)
    _prefix: list[int] = field(default_factory=list)
    runs: int = 0

    def next_run(self) -> Replay | None:
        """The strategy for the next run, or None once every schedule has been run."""
        if self.runs == 0:
            self.runs = 1
            return Replay([], strict=True)
        while self._stack:
            depth = len(self._stack) - 1
            frame = self._stack[depth]
            for t in frame.runnable:
                if t in frame.tried:
                    continue
                cost = frame.preemptions_before + (frame.current is not None and t != frame.current)
                if cost <= self.bound:
                    frame.tried.add(t)
                    self._prefix = [*self._prefix[:depth], t]
                    self.runs += 1
                    return Replay(self._prefix, strict=True)
            self._stack.pop()
        return None

    def record(self, decisions: Sequence[Decision]) -> None:
        """Learn the run just made: the points past the replayed prefix become frames."""
        choices = [d.chosen for d in decisions]
        self._prefix = choices
        preemptions = sum(d.preemptive for d in decisions[: len(self._stack)])
        for d in decisions[len(self._stack) :]:
            self._stack.append(_Frame(d.runnable, d.current, {d.chosen}, preemptions))
            preemptions += d.preemptive

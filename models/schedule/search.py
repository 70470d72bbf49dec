"""Many controlled runs: exhaustive to a preemption bound, or sampled; shrinking; the trace.

* :func:`exhaustive` — every schedule of a program with at most ``bound``
  preemptions (stopping at the first failure, or at ``deadline`` once
  ``min_runs`` are done: the order is fixed, so the first runs are always
  the same runs);
* :func:`sample` — runs under random or PCT strategies, seeds ``first..``;
* :func:`shrink` — a failing schedule with as few preemptions as the
  failure allows: each preemption in turn is taken out (the rest replayed
  as far as it stays possible) and kept out if the run still fails;
* :func:`replay` — one schedule, exactly; :func:`explain` — a failure as a
  readable trace: who ran, at which point, the state after, and how to
  replay it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from models.schedule.program import Program
from models.schedule.run import Outcome, Setup, run_once
from models.schedule.scheduler import Strategy
from models.schedule.strategies import Exhaustive, Pct, RandomWalk, Replay


@dataclass(frozen=True, slots=True)
class Searched:
    """What a search did: how many runs, whether it saw every schedule, the first failure."""

    runs: int
    complete: bool
    seconds: float
    failure: Outcome | None = None


def exhaustive(
    program: Program,
    setup: Setup,
    bound: int,
    *,
    deadline: float | None = None,
    min_runs: int = 0,
) -> Searched:
    """Every schedule with at most ``bound`` preemptions (see the module docstring)."""
    started = time.monotonic()
    search = Exhaustive(bound)
    while (strategy := search.next_run()) is not None:
        outcome = run_once(program, strategy, setup, label=f"exhaustive(bound={bound})")
        search.record(outcome.decisions)
        if outcome.failed:
            return Searched(search.runs, False, time.monotonic() - started, outcome)
        if deadline is not None and search.runs >= min_runs and time.monotonic() > deadline:
            return Searched(search.runs, False, time.monotonic() - started)
    return Searched(search.runs, True, time.monotonic() - started)


def strategy_for(kind: str, seed: int, steps: int = 200) -> tuple[Strategy, str]:
    """The strategy named ``kind`` ("random", "pct2", "pct3"...) with ``seed``, and its label."""
    if kind == "random":
        return RandomWalk(seed), f"random(seed={seed})"
    if kind.startswith("pct"):
        depth = int(kind[3:])
        return Pct(seed, depth, steps), f"pct(seed={seed}, depth={depth}, steps={steps})"
    raise ValueError(f"no strategy {kind!r} (random, pct<depth>)")


def sample(
    program: Callable[[int], Program],
    setup: Setup,
    kinds: Sequence[str],
    *,
    first: int = 0,
    deadline: float,
    min_runs: int = 0,
) -> Searched:
    """Runs ``first, first + 1...``: run ``i`` is ``program(i)`` under ``kinds[i % len(kinds)]``."""
    started = time.monotonic()
    runs, steps = 0, 200
    while runs < min_runs or time.monotonic() < deadline:
        seed = first + runs
        strategy, label = strategy_for(kinds[seed % len(kinds)], seed, steps)
        outcome = run_once(program(seed), strategy, setup, label=label)
        runs += 1
        steps = max(steps, len(outcome.decisions))  # PCT's k, learnt (as Shuttle does)
        if outcome.failed:
            return Searched(runs, False, time.monotonic() - started, outcome)
    return Searched(runs, False, time.monotonic() - started)


def replay(
    program: Program, choices: Sequence[int], setup: Setup, *, strict: bool = True
) -> Outcome:
    """Run ``program`` under the schedule ``choices`` again, recording the state at each point."""
    return run_once(
        program,
        Replay(choices, strict=strict),
        setup,
        label=f"replay of {len(choices)} choices",
        record_states=True,
    )


def shrink(failure: Outcome, setup: Setup, *, deadline: float) -> Outcome:
    """A failing run with fewer preemptions, if taking one out keeps it failing (greedy)."""
    best = failure
    improved = True
    while improved and time.monotonic() < deadline:
        improved = False
        for index, decision in enumerate(best.decisions):
            if not decision.preemptive or time.monotonic() > deadline:
                continue
            assert decision.current is not None
            choices = [*best.choices[:index], decision.current, *best.choices[index + 1 :]]
            candidate = run_once(best.program, Replay(choices, strict=False), setup)
            if candidate.failed and candidate.preemptions < best.preemptions:
                best = Outcome(
                    candidate.program,
                    f"{failure.strategy}, shrunk",
                    candidate.threads,
                    candidate.decisions,
                    candidate.problems,
                )
                improved = True
                break
    return best


def bound_reached(program: Program, setup: Setup, seconds: float) -> tuple[int, int]:
    """The highest preemption bound explored completely within ``seconds``, and its runs.

    (-1, 0) if not even bound 0 completes. Each bound is explored from scratch
    (iterative context bounding), so the runs counted are the last bound's.
    """
    deadline = time.monotonic() + seconds
    reached, runs = -1, 0
    for bound in range(100):
        searched = exhaustive(program, setup, bound, deadline=deadline)
        if searched.failure is not None or not searched.complete:
            break
        reached, runs = bound, searched.runs
    return reached, runs


def schedule_text(choices: Sequence[int]) -> str:
    """A schedule as text (thread indices, dot-separated), as :func:`parse_schedule` reads it."""
    return ".".join(map(str, choices))


def parse_schedule(text: str) -> list[int]:
    return [int(part) for part in text.split(".") if part]


def explain(failure: Outcome, setup: Setup) -> str:
    """``failure`` replayed, as a readable trace: switches, points, the state after each."""
    again = replay(failure.program, failure.choices, setup)
    lines = [
        f"program {failure.program.name}: {failure.program.describe()}",
        f"found by {failure.strategy}; {failure.preemptions} preemption(s), "
        f"{len(failure.decisions)} scheduling points; the replay "
        + ("fails again" if again.failed else "PASSES (the run is not deterministic)"),
        f"setup: {setup.opts}, {setup.defects}, fine={setup.fine}",
        f"schedule: {schedule_text(failure.choices)}",
        "replay: models.schedule.search.replay(program, parse_schedule(schedule), setup)",
        "trace (a line per switch of thread or change of state; '!' marks a preemption):",
    ]
    previous_state = ""
    for n, decision in enumerate(again.decisions):
        state = again.states[n] if n < len(again.states) else ""
        switched = decision.chosen != decision.current
        if not switched and (not state or state == previous_state):
            continue
        who = again.threads[decision.chosen]
        mark = "!" if decision.preemptive else " "
        by = again.threads[decision.at] if decision.at is not None else "-"
        line = f"  {n:4} {mark} {who:<18} runs; {by} stood at {decision.point!r}"
        if state and state != previous_state:
            line += f"\n         state: {state}"
            previous_state = state
        lines.append(line)
    lines.append("problems:")
    lines += [f"  - {problem}" for problem in again.problems or failure.problems]
    return "\n".join(lines)

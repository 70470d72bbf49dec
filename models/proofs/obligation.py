"""What a lemma is, and how one is discharged: proved, or refuted with a case.

A lemma builds an :class:`Obligation` for a variant of the seed: premises (the
preconditions and, for an inductive step, the invariant), a claim, and how to
turn a counterexample into a whole input. :func:`discharge` asks z3 whether
``premises and not claim`` is satisfiable (one goal at a time): unsatisfiable
means proved for every 64-bit value of the variables. If satisfiable, it asks
again with the obligation's *witness* constraints added, which pin the
counterexample's state to one the seed reaches from a concrete input (a step
lemma's counterexample may otherwise sit in an unreachable state), and builds
that input as a :class:`SearchCase`. Witnesses come in tiers, tried in order:
the first adds constraints under which the step's wrong answer is also the
whole function's (so the case shows a disagreement), the later ones only make
the input reachable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from models.proofs.cases import SearchCase
from models.proofs.seed import Weakening
from models.proofs.smt import Bool, Model, Status, all_of, solve

TIMEOUT_SECONDS = 60.0
WITNESS_ATTEMPTS = 8
"""Models asked of one witness tier before it is given up (each new one blocks the last)."""


@dataclass(frozen=True, slots=True)
class Goal:
    """One query: under ``assumptions`` (besides the premises), ``claim`` holds."""

    claim: Bool
    assumptions: tuple[Bool, ...] = ()


@dataclass(frozen=True, slots=True)
class Obligation:
    premises: tuple[Bool, ...]
    claim: Bool
    """What the lemma states, for every assignment meeting the premises."""
    goals: tuple[Goal, ...]
    """Smaller queries that together establish ``claim``: its conjuncts, or cut
    points of an unrolled loop (each assuming the previous one's claim)."""
    witnesses: tuple[tuple[Bool, ...], ...]
    """Tiers of constraints under which a counterexample is reached from a
    concrete input, most telling first; an empty tier accepts any counterexample."""
    case: Callable[[Model], SearchCase]
    """The concrete input of a counterexample that meets one of ``witnesses``."""

    @classmethod
    def of_conjuncts(
        cls,
        premises: Sequence[Bool],
        conjuncts: Sequence[Bool],
        witnesses: Sequence[Sequence[Bool]],
        case: Callable[[Model], SearchCase],
    ) -> Obligation:
        """An obligation proved one conjunct at a time (much faster than all at once)."""
        goals = tuple(Goal(conjunct) for conjunct in conjuncts)
        tiers = tuple(tuple(tier) for tier in witnesses)
        return cls(tuple(premises), all_of(conjuncts), goals, tiers, case)


@dataclass(frozen=True, slots=True)
class Lemma:
    name: str
    build: Callable[[Weakening], Obligation]
    """Documented by its docstring: what the lemma says and why it suffices."""

    @property
    def statement(self) -> str:
        """The first line of the lemma's docstring (of the function a partial wraps)."""
        documented = getattr(self.build, "func", self.build)
        return (documented.__doc__ or "").strip().split("\n")[0]


class Verdict(Enum):
    PROVED = "proved"
    REFUTED = "refuted"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class LemmaResult:
    lemma: str
    weakening: Weakening
    verdict: Verdict
    seconds: float
    """Solver time of the proof query."""
    counterexample: dict[str, int]
    """The refuting assignment (empty unless refuted)."""
    case: SearchCase | None
    """A concrete input reaching a counterexample, if the witness query found one."""

    def summary(self) -> str:
        line = f"{self.lemma}: {self.verdict.value} in {self.seconds:.2f} s"
        if self.verdict is not Verdict.REFUTED:
            return line
        values = ", ".join(f"{name}={value:#x}" for name, value in self.counterexample.items())
        line += f"\n  counterexample: {values}"
        if self.case is None:
            return line + "\n  no concrete input reaches it (the state is unreachable)"
        found = self.case.disagreement() or "no disagreement on the whole input"
        return line + f"\n  concrete input: ({self.case.call()}): {found}"


def discharge(
    lemma: Lemma, weakening: Weakening = Weakening.NONE, timeout: float = TIMEOUT_SECONDS
) -> LemmaResult:
    """Prove ``lemma`` for ``weakening`` of the seed, or refute it with a counterexample.

    Each goal is one query; if all are unsatisfiable the lemma is proved. If
    one is not, the claim itself is put to the solver, whose counterexample (or
    proof, if only the decomposition was too weak) decides.
    """
    obligation = lemma.build(weakening)
    seconds = 0.0
    for goal in obligation.goals:
        answer = solve((*obligation.premises, *goal.assumptions, ~goal.claim), timeout)
        seconds += answer.seconds
        if answer.status is not Status.UNSAT:
            break
    else:
        return LemmaResult(lemma.name, weakening, Verdict.PROVED, seconds, {}, None)
    refutation = (*obligation.premises, ~obligation.claim)
    answer = solve(refutation, timeout)
    seconds += answer.seconds
    if answer.status is Status.UNSAT:
        return LemmaResult(lemma.name, weakening, Verdict.PROVED, seconds, {}, None)
    if answer.model is None:
        return LemmaResult(lemma.name, weakening, Verdict.UNKNOWN, seconds, {}, None)
    case = _witness(obligation, refutation, timeout)
    return LemmaResult(
        lemma.name,
        weakening,
        Verdict.REFUTED,
        seconds,
        answer.model.assignment(),
        case,
    )


def _witness(
    obligation: Obligation, refutation: tuple[Bool, ...], timeout: float
) -> SearchCase | None:
    """A concrete input reaching a counterexample, one that disagrees as a whole if any tier has it.

    Which model z3 returns depends on the solver's version and history, so a
    model whose input the concrete run does not confirm is not final: it is
    blocked (every model building the same input is ruled out) and the tier
    asked again, up to ``WITNESS_ATTEMPTS`` times. Failing that, the first
    input reached, even without a whole disagreement, is returned.
    """
    reached_first = None
    for tier in obligation.witnesses:
        blocked: list[Bool] = []
        for _ in range(WITNESS_ATTEMPTS):
            model = solve((*refutation, *tier, *blocked), timeout).model
            if model is None:
                break
            reading = model.reading()
            found = obligation.case(reading)
            if found.disagreement() is not None:
                return found
            reached_first = reached_first or found
            blocked.append(reading.excluded())
    return reached_first

"""The one typed door to z3: fixed-width words, booleans, and proof queries.

z3 ships without type information, so every z3 call of ``models/proofs`` goes
through this module: the encodings are written with :class:`Word` and
:class:`Bool`, whose operators build z3 terms, and mypy strict checks them
without ignores. Words are bit-vectors, so ``+``, ``-``, ``*`` and ``<<`` wrap
exactly like Go's fixed-width integers; comparisons say whether they are
unsigned (``ult``) or signed (``slt``), as the Go types do.

The same terms serve two purposes: with symbolic inputs (:func:`word`) they
are proof obligations; with constant inputs (:func:`const`) they fold to
values (:meth:`Word.value`), which is how ``models.proofs.seed`` runs the very
encoding it proves on concrete inputs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import z3


class Bool:
    """A boolean term."""

    __slots__ = ("term",)

    def __init__(self, term: Any) -> None:
        self.term = term

    def __and__(self, other: Bool) -> Bool:
        return Bool(z3.And(self.term, other.term))

    def __or__(self, other: Bool) -> Bool:
        return Bool(z3.Or(self.term, other.term))

    def __invert__(self) -> Bool:
        return Bool(z3.Not(self.term))

    def implies(self, other: Bool) -> Bool:
        return Bool(z3.Implies(self.term, other.term))

    def iff(self, other: Bool) -> Bool:
        return Bool(self.term == other.term)

    def value(self) -> bool:
        """The truth of a ground term (ValueError if it has free variables)."""
        folded = z3.simplify(self.term)
        if z3.is_true(folded):
            return True
        if z3.is_false(folded):
            return False
        raise ValueError(f"not a ground term: {self.term}")


TRUE = Bool(z3.BoolVal(True))
FALSE = Bool(z3.BoolVal(False))


def all_of(parts: Iterable[Bool]) -> Bool:
    terms = [part.term for part in parts]
    return Bool(z3.And(*terms)) if terms else TRUE


def any_of(parts: Iterable[Bool]) -> Bool:
    terms = [part.term for part in parts]
    return Bool(z3.Or(*terms)) if terms else FALSE


class Word:
    """A fixed-width bit-vector term; arithmetic wraps modulo ``2**width``."""

    __slots__ = ("term",)

    def __init__(self, term: Any) -> None:
        self.term = term

    @property
    def width(self) -> int:
        return int(self.term.size())

    def _other(self, other: Word | int) -> Any:
        return other.term if isinstance(other, Word) else const(other, self.width).term

    def __add__(self, other: Word | int) -> Word:
        return Word(self.term + self._other(other))

    def __sub__(self, other: Word | int) -> Word:
        return Word(self.term - self._other(other))

    def __mul__(self, other: Word | int) -> Word:
        return Word(self.term * self._other(other))

    def __and__(self, other: Word | int) -> Word:
        return Word(self.term & self._other(other))

    def __invert__(self) -> Word:
        return Word(~self.term)

    def __lshift__(self, other: Word | int) -> Word:
        return Word(self.term << self._other(other))

    def __rshift__(self, other: Word | int) -> Word:
        """Logical (unsigned) shift right."""
        return Word(z3.LShR(self.term, self._other(other)))

    def eq(self, other: Word | int) -> Bool:
        return Bool(self.term == self._other(other))

    def ne(self, other: Word | int) -> Bool:
        return Bool(self.term != self._other(other))

    def ult(self, other: Word | int) -> Bool:
        return Bool(z3.ULT(self.term, self._other(other)))

    def ule(self, other: Word | int) -> Bool:
        return Bool(z3.ULE(self.term, self._other(other)))

    def ugt(self, other: Word | int) -> Bool:
        return Bool(z3.UGT(self.term, self._other(other)))

    def uge(self, other: Word | int) -> Bool:
        return Bool(z3.UGE(self.term, self._other(other)))

    def sle(self, other: Word | int) -> Bool:
        return Bool(self.term <= self._other(other))

    def zext(self, width: int) -> Word:
        """The same unsigned value in a wider word."""
        return Word(z3.ZeroExt(width - self.width, self.term))

    def value(self) -> int:
        """The unsigned value of a ground term (ValueError if it has free variables)."""
        folded = z3.simplify(self.term)
        if not z3.is_bv_value(folded):
            raise ValueError(f"not a ground term: {self.term}")
        return int(folded.as_long())


def word(name: str, width: int = 64) -> Word:
    """A free variable: the proof holds for every value of it."""
    return Word(z3.BitVec(name, width))


def boolean(name: str) -> Bool:
    """A free boolean variable."""
    return Bool(z3.Bool(name))


def const(value: int, width: int = 64) -> Word:
    """A constant, reduced modulo ``2**width`` as a Go conversion would."""
    return Word(z3.BitVecVal(value % (1 << width), width))


def ite(condition: Bool, then: Word, otherwise: Word) -> Word:
    return Word(z3.If(condition.term, then.term, otherwise.term))


class Model:
    """A satisfying assignment: the values of a counterexample."""

    __slots__ = ("_model",)

    def __init__(self, model: Any) -> None:
        self._model = model

    def value(self, w: Word) -> int:
        """The value of any term under the assignment (unconstrained variables read 0)."""
        return int(self._model.eval(w.term, model_completion=True).as_long())

    def reading(self) -> Reading:
        """This assignment, recording which terms are read (to block exactly those later)."""
        return Reading(self._model)

    def assignment(self) -> dict[str, int]:
        """Every variable the solver assigned, by name."""
        values = {}
        for declaration in self._model.decls():
            value = self._model[declaration]
            if z3.is_bv_value(value):
                values[str(declaration.name())] = int(value.as_long())
        return dict(sorted(values.items()))


class Reading(Model):
    """A model that remembers the terms read from it and the values they had.

    A concrete input built from a model depends only on the terms it reads;
    :meth:`excluded` is the constraint "some read term has another value",
    which rules out every model that would build the same input.
    """

    __slots__ = ("_read",)

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        self._read: list[tuple[Word, int]] = []

    def value(self, w: Word) -> int:
        got = super().value(w)
        self._read.append((w, got))
        return got

    def excluded(self) -> Bool:
        """Some term read so far differs from the value it was read with."""
        return any_of(~term.eq(value) for term, value in self._read)


class Status(Enum):
    SAT = "sat"
    UNSAT = "unsat"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Answer:
    """A solver's answer to "are these constraints satisfiable?", and its CPU time.

    CPU time rather than wall-clock time, so that a loaded machine does not
    inflate the measurement.
    """

    status: Status
    seconds: float
    model: Model | None


def solve(constraints: Iterable[Bool], timeout_seconds: float) -> Answer:
    """Search for an assignment meeting every constraint (quantifier-free bit-vectors)."""
    solver = z3.SolverFor("QF_BV")
    solver.set(timeout=max(1, int(timeout_seconds * 1000)))
    for constraint in constraints:
        solver.add(constraint.term)
    started = time.process_time()
    outcome = solver.check()
    seconds = time.process_time() - started
    if outcome == z3.unsat:
        return Answer(Status.UNSAT, seconds, None)
    if outcome == z3.sat:
        return Answer(Status.SAT, seconds, Model(solver.model()))
    return Answer(Status.UNKNOWN, seconds, None)

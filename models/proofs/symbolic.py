"""Running the specification's own code on z3 terms: the formulas the proofs are about.

``spec/ranges.py`` computes with Python ints through a small arithmetic
interface — ``+``, ``-``, ``*``, ``&``, ``~``, comparisons, and the truth of a
comparison in an ``if``. :class:`SymInt` implements that interface on z3
bit-vectors, so the very same functions run on symbolic inputs. Python's
``if`` needs a ``bool``; :func:`explore` supplies one by forking: it runs the
function once per feasible sequence of branch decisions (re-running from the
start, depth first), and returns each path's condition and result. The
formula a proof uses is the merge of those paths: it *is* the spec's code,
not a transcription of it.

Python ints are unbounded; a :class:`SymInt` is a :data:`WIDTH`-bit signed
word, exact while no operation overflows. Every ``+``, ``-`` and ``*`` records
the condition that it does not; the lemma ``spec-arithmetic-exact`` proves
those conditions for every 64-bit input (so the words are the ints).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import z3

from models.proofs.smt import Bool, Word, all_of

WIDTH = 72
"""Wide enough for every value the range search forms from 64-bit inputs (below 2^66)."""
MAX_PATHS = 4096
"""A function with more paths than this is not what these proofs are for."""


class SymInt:
    """A Python int as a z3 term (see the module docstring)."""

    __slots__ = ("term",)

    def __init__(self, term: Any) -> None:
        self.term = term

    @staticmethod
    def of(value: SymInt | int) -> SymInt:
        return value if isinstance(value, SymInt) else SymInt(z3.BitVecVal(value, WIDTH))

    def _binary(self, other: SymInt | int, swap: bool, op: str) -> SymInt:
        a, b = self.term, SymInt.of(other).term
        if swap:
            a, b = b, a
        run = _current()
        if op == "+":
            run.exact += [z3.BVAddNoOverflow(a, b, True), z3.BVAddNoUnderflow(a, b)]
            return SymInt(a + b)
        if op == "-":
            run.exact += [z3.BVSubNoOverflow(a, b), z3.BVSubNoUnderflow(a, b, True)]
            return SymInt(a - b)
        if op == "*":
            run.exact += [z3.BVMulNoOverflow(a, b, True), z3.BVMulNoUnderflow(a, b)]
            return SymInt(a * b)
        return SymInt(a & b)

    def __add__(self, other: SymInt | int) -> SymInt:
        return self._binary(other, False, "+")

    def __radd__(self, other: int) -> SymInt:
        return self._binary(other, True, "+")

    def __sub__(self, other: SymInt | int) -> SymInt:
        return self._binary(other, False, "-")

    def __rsub__(self, other: int) -> SymInt:
        return self._binary(other, True, "-")

    def __mul__(self, other: SymInt | int) -> SymInt:
        return self._binary(other, False, "*")

    def __rmul__(self, other: int) -> SymInt:
        return self._binary(other, True, "*")

    def __and__(self, other: SymInt | int) -> SymInt:
        return self._binary(other, False, "&")

    def __rand__(self, other: int) -> SymInt:
        return self._binary(other, True, "&")

    def __invert__(self) -> SymInt:
        return SymInt(~self.term)  # -x - 1: exact in two's complement

    def __lt__(self, other: SymInt | int) -> SymBool:
        return SymBool(self.term < SymInt.of(other).term)

    def __le__(self, other: SymInt | int) -> SymBool:
        return SymBool(self.term <= SymInt.of(other).term)

    def __gt__(self, other: SymInt | int) -> SymBool:
        return SymBool(self.term > SymInt.of(other).term)

    def __ge__(self, other: SymInt | int) -> SymBool:
        return SymBool(self.term >= SymInt.of(other).term)

    def __eq__(self, other: object) -> SymBool:  # type: ignore[override]
        assert isinstance(other, SymInt | int)
        return SymBool(self.term == SymInt.of(other).term)

    def __ne__(self, other: object) -> SymBool:  # type: ignore[override]
        assert isinstance(other, SymInt | int)
        return SymBool(self.term != SymInt.of(other).term)

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        return _current().decide(self.term != 0)


class SymBool:
    """A comparison's outcome; Python asks its truth, and :func:`explore` forks there."""

    __slots__ = ("term",)

    def __init__(self, term: Any) -> None:
        self.term = term

    def __bool__(self) -> bool:
        return _current().decide(self.term)


def decide(condition: Bool) -> bool:
    """Fork on a condition of the proof (e.g. whether an input fit exists)."""
    return _current().decide(condition.term)


@dataclass
class _Run:
    """One execution along a fixed prefix of decisions."""

    prefix: list[bool]
    taken: list[bool]
    path: list[Any]
    exact: list[Any]

    def decide(self, condition: Any) -> bool:
        index = len(self.taken)
        choice = self.prefix[index] if index < len(self.prefix) else True
        self.taken.append(choice)
        self.path.append(condition if choice else z3.Not(condition))
        return choice


_RUN: contextvars.ContextVar[_Run] = contextvars.ContextVar("symbolic_run")


def _current() -> _Run:
    try:
        return _RUN.get()
    except LookupError:
        raise RuntimeError("symbolic values are used only inside explore()") from None


@dataclass(frozen=True, slots=True)
class Path:
    condition: Bool
    """The branch decisions that lead here."""
    result: object
    """What the function returned on this path (SymInt, int, None, tuples of them)."""
    exact: Bool
    """No ``+``, ``-`` or ``*`` on this path overflowed the word (so it equals the int)."""


def explore(function: Callable[[], object]) -> list[Path]:
    """Every path of ``function()`` (which builds its symbolic inputs itself), depth first."""
    paths: list[Path] = []
    pending: list[list[bool]] = [[]]
    while pending:
        run = _Run(pending.pop(), [], [], [])
        token = _RUN.set(run)
        try:
            result = function()
        finally:
            _RUN.reset(token)
        pending += [[*run.taken[:index], False] for index in range(len(run.prefix), len(run.taken))]
        paths.append(Path(all_of(map(Bool, run.path)), result, all_of(map(Bool, run.exact))))
        if len(paths) > MAX_PATHS:
            raise RuntimeError(f"more than {MAX_PATHS} paths")
    return paths


def symbolic(value: Word) -> SymInt:
    """A non-negative word (an exact 66-bit value, say) as a symbolic int."""
    return SymInt(z3.ZeroExt(WIDTH - value.width, value.term))


def as_int(value: Word) -> int:
    """:func:`symbolic`, typed as what it stands for: the spec's functions take ints."""
    return cast(int, symbolic(value))


def word(value: SymInt | int, width: int) -> Word:
    """A symbolic (or plain) int's low ``width`` bits as a word; exact when it fits."""
    term = SymInt.of(value).term
    return Word(z3.Extract(width - 1, 0, term))


def fits(value: SymInt | int, width: int) -> Bool:
    """Whether ``value`` is a non-negative int below ``2**width`` (so :func:`word` is exact)."""
    term = SymInt.of(value).term
    return Bool(z3.And(term >= 0, term < z3.BitVecVal(1 << width, WIDTH)))


def merge(paths: list[Path], width: int, pick: Callable[[object], SymInt | int]) -> Word:
    """The word ``pick(result)`` takes on whichever path is taken (paths must be exhaustive)."""
    merged = word(pick(paths[-1].result), width)
    for path in reversed(paths[:-1]):
        merged = Word(z3.If(path.condition.term, word(pick(path.result), width).term, merged.term))
    return merged


def holds_on(paths: list[Path], test: Callable[[object], bool]) -> Bool:
    """Whether the path taken is one whose result passes ``test`` (a plain Python test)."""
    return Bool(z3.Or(*[p.condition.term for p in paths if test(p.result)], z3.BoolVal(False)))

"""``pgalloc vectors mutation``: how much of the seed's behaviour the corpus pins down.

Each mutant of :data:`~models.conformance.spec_mutants.CATALOGUE` is put in
place and the committed corpus replayed through the spec driver, in this
process (a fresh :class:`SpecPort` per vector; no subprocess), until a
vector fails: the mutant is then *killed*, since a port breaking that rule
would fail replay too. Killed for a driver declaring every feature, and for
one declaring every feature but ``growth-overflow`` and ``host``
(:data:`CHEAP`), the features a port on a modest host may rightly lack: the
vectors such a driver replays are tried first, and only if none kills the
mutant are the others.

The run fails when a mutant not argued equivalent survives either replay,
or an equivalent one is killed (its argument is then wrong), or nothing was
replayed.
"""

from __future__ import annotations

import resource
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from models.conformance.codec import Json
from models.conformance.process import DriverFailure, InProcessDriver
from models.conformance.protocol import FEATURES
from models.conformance.replay import Outcome, VectorResult, load_vectors, replay_vector
from models.conformance.spec_mutants import CATALOGUE, SpecMutant, applied
from models.conformance.spec_port import SpecPort
from models.conformance.vector import Vector

ALL: frozenset[str] = frozenset(FEATURES)
CHEAP: frozenset[str] = ALL - {"growth-overflow", "host"}
"""What a port on a modest host declares: no file grown toward 2^63, no real-host answers."""

VECTOR_TIMEOUT = 2.0
"""Seconds one vector may take under a mutant before it counts as a hang, which kills it
(the corpus's longest vector takes a few milliseconds)."""
MEMORY_HEADROOM = 2 << 30
"""Bytes of address space a run may add: a mutant that lets the file grow past 2^63 makes
the spec build sets of 2^34 chunks, which would take the machine's memory (a MemoryError
instead kills the mutant)."""


class _Hang(BaseException):
    """The deadline passed (a BaseException, so no handler of the port swallows it)."""


class _CrashingDriver(InProcessDriver):
    """The spec port in process; an exception escaping it is a crash, as a driver's would be."""

    def request(self, request: dict[str, Json]) -> dict[str, Json]:
        try:
            return super().request(request)
        except _Hang:
            raise DriverFailure("timeout", request, "the mutant hung") from None
        except Exception as failure:  # a broken rule may break anything
            raise DriverFailure("crashed", request, repr(failure)) from failure


@contextmanager
def _memory_limit(headroom: int) -> Iterator[None]:
    """Cap this process's address space at its current size plus ``headroom``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[0]) * resource.getpagesize()
    limit = current + headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`_Hang` in this thread after ``seconds`` (SIGALRM: the main thread only)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise _Hang

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True, slots=True)
class MutantResult:
    mutant: SpecMutant
    killers: dict[str, str | None]
    """For each feature set's name, the first vector that kills the mutant (None: survived)."""
    how: str = ""
    """How the first killing vector failed (its first differing step)."""

    def killed(self, features: str) -> bool:
        return self.killers[features] is not None

    @property
    def verdict(self) -> str:
        """``ok`` when killed everywhere (or, if equivalent, nowhere); else what is wrong."""
        if self.mutant.equivalent:
            return "ok" if not any(map(self.killed, self.killers)) else "EQUIVALENT BUT KILLED"
        survived = [name for name in self.killers if not self.killed(name)]
        return "ok" if not survived else f"SURVIVED ({', '.join(survived)})"

    def line(self) -> str:
        killers = "  ".join(f"{name}: {found or '-'}" for name, found in self.killers.items())
        note = f"\n         equivalent: {self.mutant.equivalent}" if self.mutant.equivalent else ""
        how = f"\n         {self.how[:160]}" if self.how else ""
        return f"{self.verdict:<6} {self.mutant.name:<26} {killers}{how}{note}"


@dataclass(frozen=True, slots=True)
class MutationReport:
    results: tuple[MutantResult, ...]
    vectors: int
    seconds: float

    @property
    def failures(self) -> list[MutantResult]:
        return [r for r in self.results if r.verdict != "ok"]

    @property
    def passed(self) -> bool:
        return self.vectors > 0 and bool(self.results) and not self.failures

    def score(self, features: str) -> tuple[int, int]:
        """(killed, non-equivalent) for one feature set."""
        live = [r for r in self.results if not r.mutant.equivalent]
        return sum(r.killed(features) for r in live), len(live)

    def summary(self) -> str:
        scores = ", ".join(
            f"{name} features {killed}/{total}"
            for name in ("all", "cheap")
            for killed, total in [self.score(name)]
        )
        equivalent = sum(1 for r in self.results if r.mutant.equivalent)
        return (
            f"{len(self.results)} mutants ({equivalent} equivalent) over {self.vectors} vectors, "
            f"killed by replay: {scores} ({self.seconds:.1f}s)"
        )


def first_killer(vectors: Iterable[Vector]) -> VectorResult | None:
    """The result of the first of ``vectors`` that fails through the spec driver (as mutated).

    The driver declares every feature; a vector that hangs longer than
    :data:`VECTOR_TIMEOUT` fails.
    """
    for vector in vectors:
        driver = _CrashingDriver(SpecPort())
        driver.features = ALL
        try:
            with _deadline(VECTOR_TIMEOUT):
                result = replay_vector(vector, driver)
        except _Hang:  # in the comparison rather than in a request
            return VectorResult(vector.name, Outcome.FAILED, "hung")
        if result.outcome is Outcome.FAILED:
            return result
    return None


def kill(mutant: SpecMutant, vectors: Sequence[Vector]) -> MutantResult:
    """Replay ``vectors`` under ``mutant`` until one kills it, cheap vectors first.

    A vector a cheap driver replays kills the mutant for both feature sets;
    only if none does are the vectors needing growth-overflow or host tried.
    """
    cheap = [v for v in vectors if set(v.features) <= CHEAP]
    rest = [v for v in vectors if not set(v.features) <= CHEAP]
    with applied(mutant), _memory_limit(MEMORY_HEADROOM):
        found = first_killer(cheap)
        anywhere = found or first_killer(rest)
    return MutantResult(
        mutant,
        {
            "all": anywhere.name if anywhere else None,
            "cheap": found.name if found else None,
        },
        anywhere.line() if anywhere else "",
    )


def run_mutation(
    vectors: Sequence[Vector],
    mutants: Sequence[SpecMutant] = CATALOGUE,
    report: Callable[[str], None] = print,
) -> MutationReport:
    """Replay ``vectors`` under each mutant; report one line each, then the score."""
    started = time.monotonic()
    broken = first_killer(vectors)
    if broken is not None:  # the unmutated spec must pass, or every kill below means nothing
        raise ValueError(f"the corpus fails against the specification itself: {broken.line()}")
    results = []
    for mutant in mutants:
        result = kill(mutant, vectors)
        results.append(result)
        report(result.line())
    outcome = MutationReport(tuple(results), len(vectors), time.monotonic() - started)
    report(outcome.summary())
    if not vectors:
        report("FAILED: no vectors were replayed")
    for failure in outcome.failures:
        report(f"FAILED: {failure.mutant.name} ({failure.mutant.rule}): {failure.verdict}")
    return outcome


def main(location: Path, names: Sequence[str] = ()) -> int:
    """The command: an exit status (0 when every non-equivalent mutant is killed)."""
    unknown = sorted(set(names) - {m.name for m in CATALOGUE})
    if unknown:
        print(f"unknown mutants: {', '.join(unknown)} (see models/conformance/spec_mutants.py)")
        return 2
    mutants = [m for m in CATALOGUE if not names or m.name in names]
    print(f"mutation: {len(mutants)} mutants of spec/, corpus {location}")
    print("verdict mutant                     the first vector killing it, per feature set")
    return 0 if run_mutation(load_vectors(location), mutants).passed else 1

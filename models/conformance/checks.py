"""The conformance checks of ``pgalloc check``.

``conformance``: the committed corpus is what the generator makes; it
replays clean through the spec driver and the impl driver (each a real
subprocess speaking the protocol); two mutant drivers are caught (one
placing huge allocations wrongly, one leaking an allocation when a fault
fails its mapping); and a
budgeted ``conform`` run against the impl driver finds no divergence.

``mutation``: replaying the corpus kills every mutant of the specification
that is not argued equivalent (:mod:`models.conformance.mutation`).
"""

from __future__ import annotations

import sys
import time

from models.check import Check, CheckResult, Progress
from models.conformance import generate
from models.conformance.conform import run_conform
from models.conformance.process import DriverFailure, SubprocessDriver
from models.conformance.replay import (
    Outcome,
    VectorError,
    default_corpus,
    load_vectors,
    replay,
)

NAME = "conformance"


def driver_command(port: str, mutant: str | None = None) -> list[str]:
    """The command of one of our drivers, run by this very interpreter."""
    command = [sys.executable, "-m", "models.conformance.driver", port]
    return command + (["--mutant", mutant] if mutant else [])


def run_conformance(budget: float, progress: Progress) -> CheckResult:
    started = time.monotonic()
    problems: list[str] = []
    steps = 0
    corpus = default_corpus()
    try:
        vectors = load_vectors(corpus)
    except VectorError as error:
        return CheckResult(NAME, False, 0, "steps", time.monotonic() - started, str(error))
    files = generate.render(generate.all_vectors())
    stale = generate.differences(files, generate.corpus_files(corpus))
    if stale:
        problems.append(f"the corpus in {corpus} is not what the generator makes: {stale[:5]}")
    progress(f"{NAME}: {len(vectors)} vectors, replaying through the spec and impl drivers")
    for port, mutant, must_pass in (
        ("spec", None, True),
        ("impl", None, True),
        ("spec", "huge-4k", False),
        ("spec", "fill-leaks", False),
    ):
        try:
            with SubprocessDriver(driver_command(port, mutant)) as driver:
                results = list(replay(vectors, driver))
        except DriverFailure as failure:
            problems.append(f"the {port} driver failed to start: {failure}")
            continue
        steps += sum(len(v.steps) for v in vectors)
        failed = [r.line() for r in results if r.outcome is Outcome.FAILED]
        if must_pass and failed:
            problems.append(f"{port}: {len(failed)} vectors failed, first: {failed[0]}")
        if not must_pass and not failed:
            problems.append(f"the mutant {mutant} passed every vector: the runner is blind")
    remaining = max(5.0, budget - (time.monotonic() - started))
    progress(f"{NAME}: conform against the impl driver for {remaining:.0f}s")
    with SubprocessDriver(driver_command("impl")) as driver:
        result = run_conform(driver, remaining, progress)
    steps += result.steps
    if result.divergence is not None:
        problems.append(f"conform found a divergence of impl: {result.detail}")
    return CheckResult(
        NAME, not problems, steps, "steps", time.monotonic() - started, "\n".join(problems)
    )


def run_mutation_check(budget: float, progress: Progress) -> CheckResult:
    """Every non-equivalent mutant of the spec killed by replaying the corpus (both sets)."""
    from models.conformance.mutation import run_mutation

    started = time.monotonic()
    vectors = load_vectors(generate.DEFAULT_DIRECTORY)
    progress(f"mutation: replaying {len(vectors)} vectors through each mutant of spec/")
    report = run_mutation(vectors, report=lambda line: None)
    killed, total = report.score("cheap")
    progress(f"mutation: {report.summary()}")
    detail = "\n".join(
        f"{r.mutant.name} ({r.mutant.rule}): {r.verdict}; run `pgalloc vectors mutation "
        f"{r.mutant.name}`"
        for r in report.failures
    )
    return CheckResult(
        "mutation",
        report.passed,
        killed,
        f"of {total} mutants killed (all features {report.score('all')[0]})",
        time.monotonic() - started,
        detail or ("no vectors" if not vectors else ""),
    )


CHECKS: list[Check] = [
    Check(
        NAME,
        "the vector corpus is current and replays clean through the spec and impl drivers; "
        "two mutants are caught; conform finds no divergence of impl",
        run_conformance,
    ),
    Check(
        "mutation",
        "each mutant of the specification (one rule of the seed broken) is killed by replaying "
        "the corpus, for a driver with every feature and for one without growth-overflow and host",
        run_mutation_check,
    ),
]

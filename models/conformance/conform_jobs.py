"""``pgalloc conform --jobs N``: N drivers, each fed by its own spec worker, distinct seeds.

Each job (a spawned process, :mod:`models.parallel`) starts its own driver
process and runs :func:`~models.conformance.conform.run_conform` against it
with seed ``base + index``, so the N workers never draw the same sequences
and the whole campaign is reproduced by the same ``--seed`` (for a
deterministic driver). The first worker to see a divergence stops all the
others (they finish the batch they are in) and shrinks it alone; the merged
result counts every worker's sequences and steps and carries the smallest
divergence found.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from models.conformance.conform import ConformResult, run_conform
from models.conformance.process import SubprocessDriver
from models.parallel import Job, Progress, request_stop, run_jobs, stop_requested


def conform_job(
    progress: Progress,
    driver: str,
    deadline: float,
    timeout: float,
    max_failures: int | None,
    seed: int,
) -> ConformResult:
    """One worker: its own driver process, sequences drawn from ``seed`` until ``deadline``
    (``time.time()``: the run's budget counts from the parent's start, not the worker's)."""
    with SubprocessDriver(driver, timeout=timeout) as session:
        return run_conform(
            session,
            max(0.0, deadline - time.time()),
            progress,
            max_failures=max_failures,
            seed=seed,
            stop=stop_requested,
            on_divergence=request_stop,
        )


def _merge(results: list[ConformResult], seconds: float) -> ConformResult:
    merged = ConformResult(seconds=seconds)
    for result in results:
        merged.examples += result.examples
        merged.steps += result.steps
        for counts, more in ((merged.ended, result.ended), (merged.sent, result.sent)):
            for key, count in more.items():
                counts[key] = counts.get(key, 0) + count
        merged.stopped = merged.stopped or result.stopped
    found = [r for r in results if r.divergence is not None]
    if found:
        smallest = min(found, key=lambda r: len(r.divergence.steps) if r.divergence else 0)
        merged.divergence, merged.detail = smallest.divergence, smallest.detail
        merged.confirmed, merged.replayed = smallest.confirmed, smallest.replayed
    return merged


def run_conform_jobs(
    driver: str,
    jobs: int,
    budget: float,
    timeout: float,
    max_failures: int | None,
    seed: int,
    report: Callable[[str], None],
) -> ConformResult:
    """``jobs`` workers with seeds ``seed`` ... ``seed + jobs - 1``; their merged result.

    A worker that fails (its driver does not start, its process dies) raises
    its exception here, after every worker has ended.
    """
    started = time.monotonic()
    deadline = time.time() + budget
    work = [
        Job(
            f"driver {index + 1}/{jobs}",
            conform_job,
            (driver, deadline, timeout, max_failures, seed + index),
        )
        for index in range(jobs)
    ]
    outcomes = run_jobs(work, jobs, lambda label, line: report(f"[{label}] {line}"))
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    results = [outcome for outcome in outcomes if isinstance(outcome, ConformResult)]
    return _merge(results, time.monotonic() - started)

"""``pgalloc check``'s linearizability check: stress runs until the budget is spent.

Runs seeds 0, 1, 2... (each a random mix of options and injected punch
failures, see :meth:`StressConfig.random`) with 4 threads of 60 operations,
one run in ten with 16 threads of 200; at least :data:`MIN_RUNS` of them. It
stops at the first failure, printing its seed and sizes, which reproduce the
configuration (the interleaving itself is the scheduler's).
"""

from __future__ import annotations

import time

from models.check import WHOLE, Check, CheckResult, Progress, Shard
from models.linearizability.stress import StressConfig, StressReport, run

MIN_RUNS = 20


def run_linearizability(budget: float, progress: Progress, shard: Shard = WHOLE) -> CheckResult:
    """Seeds 0, 1, 2... (a shard: its own), at least MIN_RUNS in all."""
    started = time.monotonic()
    histories = operations = 0
    for seed in shard.seeds():
        if histories >= shard.least(MIN_RUNS) and time.monotonic() - started >= budget:
            break
        # One run in ten is large: more threads, longer histories, more interleavings.
        threads, per_thread = (16, 200) if seed % 10 == 9 else (4, 60)
        report = run(StressConfig.random(seed, threads, per_thread))
        if not report.passed:
            return CheckResult(
                "linearizability",
                False,
                histories,
                "histories",
                time.monotonic() - started,
                f"{report.explain()}\n{_picture(report)}",
            )
        histories += 1
        operations += report.client_calls + report.background_steps
        if histories % 50 == 0:
            progress(f"linearizability: {histories} histories, {operations} operations")
    return CheckResult("linearizability", True, histories, "histories", time.monotonic() - started)


def _picture(report: StressReport) -> str:
    """Draw the counterexample (models/picture), and say where it is."""
    from models.picture.counterexamples import from_stress_report
    from models.picture.show import draw_counterexample

    stem = f"pgalloc-linearizability-seed-{report.config.seed}"
    return draw_counterexample(lambda: from_stress_report(report), stem)


CHECKS = [
    Check(
        "linearizability",
        "threads on a real MemoryFile: histories linearizable against the spec, nothing lost",
        run_linearizability,
        run_linearizability,
    )
]

"""Running ``pgalloc check``: the checks in order, or in parallel processes, and the summary.

With one job the checks run one after another in this process, as they
always did. With ``jobs`` N > 1 every check becomes one job — a sharded
(randomized) check N jobs, each with its share of the budget divided by N
and its own :class:`~models.check.Shard` — and the jobs run in N worker
processes (:mod:`models.parallel`). So the same budget buys the same
amount of checking, in less wall time. Progress lines are prefixed by the
check (and shard); the summary has one row per check, whatever ``jobs``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

from models.check import WHOLE, CheckResult, Shard, entry, find, merge
from models.parallel import Job, Progress, run_jobs


def run_shard(
    progress: Progress, name: str, module: str, budget: float, shard: Shard
) -> CheckResult:
    """One shard of the check ``name`` of ``module`` (or all of it); a crash is a failed result."""
    started = time.monotonic()
    try:
        check = find(name, module)
        if check.shard is not None:
            return check.shard(budget, progress, shard)
        return check.run(budget, progress)
    except Exception as error:  # a crashing check is a failed check, not a crashed run
        return CheckResult(name, False, 0, "", time.monotonic() - started, repr(error))


def _shards(name: str, jobs: int) -> list[Shard]:
    if jobs > 1 and find(name).shard is not None:
        return [Shard(index, jobs) for index in range(jobs)]
    return [WHOLE]


def _stamp(started: float) -> Callable[[str], None]:
    def report(line: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {line}", file=sys.stderr, flush=True)

    return report


def _in_order(names: Sequence[str], budget: float, report: Progress) -> list[CheckResult]:
    results = []
    for name in names:
        report(f"{name}: {find(name).description}")
        result = run_shard(report, name, entry(name).module, budget * entry(name).share, WHOLE)
        report(f"{name}: {'passed' if result.passed else 'FAILED'}")
        results.append(result)
    return results


def _in_parallel(
    names: Sequence[str], budget: float, jobs: int, report: Progress
) -> list[CheckResult]:
    plan = [(name, shard) for name in names for shard in _shards(name, jobs)]
    for name in names:
        report(f"{name}: {find(name).description}")
    work = [
        Job(
            name if shard.count == 1 else f"{name} {shard}",
            run_shard,
            (name, entry(name).module, budget * entry(name).share / shard.count, shard),
        )
        for name, shard in plan
    ]
    outcomes = run_jobs(work, jobs, lambda label, line: report(f"[{label}] {line}"))
    by_check: dict[str, list[tuple[Shard, CheckResult]]] = {name: [] for name in names}
    for (name, shard), outcome in zip(plan, outcomes, strict=True):
        if isinstance(outcome, BaseException):  # the worker process died
            died = f"its process failed: {outcome!r}"
            by_check[name].append((shard, CheckResult(name, False, 0, "", 0.0, died)))
        else:
            by_check[name].append((shard, outcome))
    results = [merge(name, by_check[name]) for name in names]
    for result in results:
        report(f"{result.name}: {'passed' if result.passed else 'FAILED'}")
    return results


def table(results: Sequence[CheckResult]) -> str:
    rows = [("check", "result", "checked", "time")]
    for result in results:
        rows.append(
            (
                result.name,
                "passed" if result.passed else "FAILED",
                f"{result.count:,} {result.unit}",
                f"{result.seconds:.1f}s",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def run_checks(budget: float, names: Sequence[str], jobs: int = 1) -> int:
    """Run the registered checks called ``names`` in ``jobs`` processes; print the table.

    Returns the exit status: 1 if any check (any shard of one) failed.
    """
    started = time.monotonic()
    report = _stamp(started)
    report(f"pgalloc check: {len(names)} checks, budget {budget:g}s, {jobs} jobs")
    if jobs == 1:
        results = _in_order(names, budget, report)
    else:
        results = _in_parallel(names, budget, jobs, report)
    print(table(results))
    failed = [result for result in results if not result.passed]
    for result in failed:
        print(f"\n{result.name} FAILED:\n{result.detail}")
    elapsed = time.monotonic() - started
    print(f"\n{len(results) - len(failed)} of {len(results)} checks passed in {elapsed:.1f}s")
    return 1 if failed else 0

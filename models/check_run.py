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

import impl
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


def _shards(name: str, jobs: int, part: tuple[int, int]) -> list[Shard]:
    """The shards of ``name`` this run's jobs take: on machine K of M, K*jobs... of M*jobs."""
    machine, machines = part
    if find(name).shard is None:
        return [WHOLE]
    return [Shard(machine * jobs + index, machines * jobs) for index in range(jobs)]


def _stamp(started: float) -> Callable[[str], None]:
    def report(line: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {line}", file=sys.stderr, flush=True)

    return report


def _in_order(
    names: Sequence[str], budget: float, part: tuple[int, int], report: Progress
) -> list[CheckResult]:
    results = []
    for name in names:
        report(f"{name}: {find(name).description}")
        (shard,) = _shards(name, 1, part)
        result = run_shard(report, name, entry(name).module, budget * entry(name).share, shard)
        report(f"{name}: {'passed' if result.passed else 'FAILED'}")
        results.append(result)
    return results


def _in_parallel(
    names: Sequence[str], budget: float, jobs: int, part: tuple[int, int], report: Progress
) -> list[CheckResult]:
    plan = [(name, shard) for name in names for shard in _shards(name, jobs, part)]
    # Unsharded checks first: they cannot be split, and the longest (the proofs, the model
    # checker) set the wall time unless the shards fill in around them.
    plan.sort(key=lambda job: job[1] != WHOLE)
    for name in names:
        report(f"{name}: {find(name).description}")
    work = []
    for name, shard in plan:
        whole = shard == WHOLE  # an unsharded check: one job, its whole share
        share = budget * entry(name).share / (1 if whole else jobs)
        label = name if whole else f"{name} {shard}"
        work.append(Job(label, run_shard, (name, entry(name).module, share, shard)))
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


def run_checks(
    budget: float, names: Sequence[str], jobs: int = 1, part: tuple[int, int] = (0, 1)
) -> int:
    """Run the registered checks called ``names`` in ``jobs`` processes; print the table.

    ``part`` (K, M): this run is machine K (from 0) of M in a campaign, each
    machine running the same checks with the same ``jobs``; its shards of the
    randomized checks are K*jobs ... K*jobs + jobs - 1 of M*jobs. Returns
    the exit status: 1 if any check (any shard of one) failed.
    """
    started = time.monotonic()
    report = _stamp(started)
    machine, machines = part
    campaign = f", part {machine + 1} of {machines}" if machines > 1 else ""
    report(f"pgalloc check: {len(names)} checks, budget {budget:g}s, {jobs} jobs{campaign}")
    report(f"impl: {impl.build()}")
    if jobs == 1:
        results = _in_order(names, budget, part, report)
    else:
        results = _in_parallel(names, budget, jobs, part, report)
    print(table(results))
    failed = [result for result in results if not result.passed]
    for result in failed:
        print(f"\n{result.name} FAILED:\n{result.detail}")
    elapsed = time.monotonic() - started
    print(
        f"\n{len(results) - len(failed)} of {len(results)} checks passed in {elapsed:.1f}s "
        f"(impl: {impl.build()})"
    )
    return 1 if failed else 0

"""The ``pgalloc`` command line.

``pgalloc check`` is the main job: it runs every check of the evidence (see
``models/checks.py``) within a time budget, shows progress on stderr, prints a
summary table and exits non-zero if anything failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from models.check import CheckResult
from models.checks import CHECKS

DEFAULT_BUDGET = 60.0


def _progress(started: float) -> Callable[[str], None]:
    def report(line: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {line}", file=sys.stderr, flush=True)

    return report


def _table(results: Sequence[CheckResult]) -> str:
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


def run_check(budget: float, only: Sequence[str]) -> int:
    selected = [(check, share) for check, share in CHECKS if not only or check.name in only]
    unknown = set(only) - {check.name for check, _ in CHECKS}
    if unknown:
        names = ", ".join(check.name for check, _ in CHECKS)
        print(
            f"pgalloc check: no check named {', '.join(sorted(unknown))} (there are: {names})",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    report = _progress(started)
    results = []
    for check, share in selected:
        report(f"{check.name}: {check.description}")
        try:
            result = check.run(budget * share, report)
        except Exception as error:  # a crashing check is a failed check, not a crashed run
            result = CheckResult(check.name, False, 0, "", time.monotonic() - started, repr(error))
        report(f"{check.name}: {'passed' if result.passed else 'FAILED'}")
        results.append(result)
    print(_table(results))
    failed = [result for result in results if not result.passed]
    for result in failed:
        print(f"\n{result.name} FAILED:\n{result.detail}")
    elapsed = time.monotonic() - started
    print(f"\n{len(results) - len(failed)} of {len(results)} checks passed in {elapsed:.1f}s")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pgalloc", description="A model-checked reference of gVisor's page allocator."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check", help="run every check: spec, proofs, model checker, stateful machines"
    )
    check.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        metavar="SECONDS",
        help=f"total time to spend, shared among the checks (default {DEFAULT_BUDGET:.0f})",
    )
    check.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this check (repeatable)",
    )
    check.add_argument("--list", action="store_true", help="list the checks and exit")
    args = parser.parse_args(argv)
    if args.command == "check":
        if args.list:
            for item, _ in CHECKS:
                print(f"{item.name}: {item.description}")
            return 0
        if args.budget <= 0:
            parser.error("--budget must be positive")
        return run_check(args.budget, args.only)
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())

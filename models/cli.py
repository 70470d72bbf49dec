"""The ``pgalloc`` command line.

``pgalloc check`` is the main job: it runs every check of the evidence (see
``models/checks.py``) within a time budget, shows progress on stderr, prints a
summary table and exits non-zero if anything failed.

The conformance commands (``models/conformance/commands.py``) serve porters:
``pgalloc vectors generate | replay | coverage`` for the committed corpus,
``pgalloc conform`` for randomized differential runs against a port's
driver, and ``pgalloc driver spec | impl`` for the drivers we ship.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

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
    _add_conformance_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "check":
        if args.list:
            for item, _ in CHECKS:
                print(f"{item.name}: {item.description}")
            return 0
        if args.budget <= 0:
            parser.error("--budget must be positive")
        return run_check(args.budget, args.only)
    return _run_conformance_command(parser, args)


def _add_conformance_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    from models.conformance.generate import DEFAULT_DIRECTORY
    from models.conformance.mutants import MUTANTS
    from models.conformance.process import DEFAULT_TIMEOUT

    vectors = commands.add_parser("vectors", help="the conformance vectors: generate, replay")
    actions = vectors.add_subparsers(dest="action", required=True)
    generate = actions.add_parser("generate", help="derive the corpus from the specification")
    generate.add_argument("--dir", type=Path, default=DEFAULT_DIRECTORY, help="where to write")
    generate.add_argument(
        "--check", action="store_true", help="compare with the corpus on disk instead of writing"
    )
    replay = actions.add_parser("replay", help="replay vectors through a port's driver")
    coverage = actions.add_parser(
        "coverage", help="line and branch coverage of spec/ while replaying the vectors"
    )
    mutation = actions.add_parser(
        "mutation", help="replay the vectors through each mutant of the spec: is each killed?"
    )
    mutation.add_argument("mutants", nargs="*", help="only these (default: the catalogue)")
    for sub in (replay, coverage, mutation):
        sub.add_argument(
            "--vectors", type=Path, default=DEFAULT_DIRECTORY, help="a vector file or folder"
        )
    conform = commands.add_parser(
        "conform", help="random sequences through a port's driver and the spec side by side"
    )
    conform.add_argument("--budget", type=float, default=60.0, metavar="SECONDS")
    conform.add_argument(
        "--save", type=Path, metavar="FILE", help="also write a divergence's trace here"
    )
    for sub in (replay, conform):
        sub.add_argument("--driver", required=True, metavar="CMD", help="the driver command")
        sub.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_TIMEOUT,
            metavar="SECONDS",
            help=f"per request (default {DEFAULT_TIMEOUT:g})",
        )
    replay.add_argument("--quiet", action="store_true", help="print only failures")
    driver = commands.add_parser("driver", help="serve a shipped driver on stdin/stdout")
    driver.add_argument("port", choices=["spec", "impl"])
    driver.add_argument(
        "--mutant", choices=sorted(MUTANTS), help="a deliberately wrong spec driver"
    )


def _run_conformance_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from models.conformance import commands

    if args.command == "vectors":
        if args.action == "generate":
            return commands.vectors_generate(args.dir, args.check)
        if args.action == "coverage":
            return commands.vectors_coverage(args.vectors)
        if args.action == "mutation":
            return commands.vectors_mutation(args.vectors, args.mutants)
        return commands.vectors_replay(args.driver, args.vectors, args.timeout, args.quiet)
    if args.command == "conform":
        if args.budget <= 0:
            parser.error("--budget must be positive")
        return commands.conform(args.driver, args.budget, args.timeout, args.save)
    if args.command == "driver":
        if args.mutant and args.port != "spec":
            parser.error("--mutant applies to the spec driver")
        return commands.driver(args.port, args.mutant)
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())

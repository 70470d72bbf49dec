"""The conformance subcommands of ``pgalloc``: vectors, conform, driver.

``models/cli.py`` parses the command line and calls these; each returns
the process's exit status (0 when everything passed).
"""

from __future__ import annotations

import sys
from pathlib import Path

from models.conformance.process import DriverFailure, SubprocessDriver


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def vectors_generate(directory: Path, check: bool) -> int:
    from models.conformance import generate as generator

    return generator.generate(directory, check=check)


def vectors_replay(driver: str, location: Path, timeout: float, quiet: bool) -> int:
    from models.conformance.replay import load_vectors, run_replay

    try:
        vectors = load_vectors(location)
        with SubprocessDriver(driver, timeout=timeout) as session:
            summary = run_replay(vectors, session, quiet=quiet)
    except DriverFailure as failure:
        _err(f"pgalloc vectors replay: {failure}")
        return 2
    return 1 if summary.failed else 0


def vectors_coverage(location: Path) -> int:
    from models.conformance.coverage_run import measure

    result = measure(location)
    print(result.report())
    return 0


def vectors_mutation(location: Path, mutants: list[str]) -> int:
    from models.conformance.mutation import main

    return main(location, mutants)


def conform(driver: str, budget: float, timeout: float, save: Path | None) -> int:
    from models.conformance.conform import run_conform
    from models.conformance.vector import dumps

    try:
        with SubprocessDriver(driver, timeout=timeout) as session:
            result = run_conform(session, budget, _err)
    except DriverFailure as failure:
        _err(f"pgalloc conform: {failure}")
        return 2
    ended = ", ".join(f"{n} {why}" for why, n in sorted(result.ended.items()))
    _err(
        f"conform: {result.examples} sequences, {result.steps} steps in {result.seconds:.1f}s"
        + (f" ({ended} ended early, as allowed)" if ended else "")
    )
    if result.divergence is None:
        print(f"no divergence from the specification found in {result.seconds:.0f}s")
        return 0
    text = dumps(result.divergence)
    print(text, end="")
    _err(f"DIVERGENCE after {len(result.divergence.steps)} steps: {result.detail}")
    if not result.confirmed:
        _err("warning: replaying the trace alone did not fail again (is the port deterministic?)")
    if save is not None:
        save.write_text(text)
        _err(
            f"the trace is saved in {save}: replay it with "
            f"pgalloc vectors replay --driver ... --vectors {save}"
        )
    return 1


def driver(which: str, mutant: str | None) -> int:
    """Serve a port on stdin/stdout until end of input."""
    from models.conformance.driver import main

    return main([which, *(["--mutant", mutant] if mutant else [])])

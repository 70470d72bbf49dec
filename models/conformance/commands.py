"""The conformance subcommands of ``pgalloc``: vectors, conform, driver.

``models/cli.py`` parses the command line and calls these; each returns
the process's exit status (0 when everything passed).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from models.conformance.process import DriverFailure, SubprocessDriver

if TYPE_CHECKING:
    from models.conformance.replay import VectorResult
    from models.conformance.vector import Vector


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def vectors_generate(directory: Path, check: bool) -> int:
    from models.conformance import generate as generator

    return generator.generate(directory, check=check)


def vectors_replay(
    driver: str,
    location: Path,
    timeout: float,
    quiet: bool,
    *,
    max_failures: int | None = None,
    pictures: Path | None = None,
) -> int:
    """Replay the vectors at ``location``; draw each failure beside its vector, or under
    ``pictures`` (mirroring the vectors' folders) if given."""
    from models.conformance.replay import VectorError, load_vectors, run_replay, vector_paths

    try:
        vectors = load_vectors(location)
        files = dict(zip(map(id, vectors), vector_paths(location), strict=True))
        with SubprocessDriver(driver, timeout=timeout) as session:
            summary = run_replay(
                vectors,
                session,
                quiet=quiet,
                max_failures=max_failures,
                on_failure=lambda vector, result: _draw(
                    vector, result, _picture_of(files[id(vector)], location, pictures)
                ),
            )
    except (DriverFailure, VectorError) as failure:
        _err(f"pgalloc vectors replay: {failure}")
        return 2
    if summary.failed:
        return 1
    if not summary.checked:
        _err(
            f"pgalloc vectors replay: nothing was checked: none of the {len(vectors)} vectors "
            "was replayed to the end (the driver lacks their features or does not support them)"
        )
        return 2
    return 0


def _picture_of(file: Path, location: Path, pictures: Path | None) -> Path:
    """The vector file whose divergence picture is written beside it (see _draw)."""
    if pictures is None:
        return file
    return pictures / (file.relative_to(location) if location.is_dir() else file.name)


def _draw(vector: Vector, result: VectorResult, file: Path) -> str:
    """The picture of a failure, beside the vector's file (see models/picture)."""
    from models.conformance.replay import Outcome
    from models.picture.show import divergence_path, write_divergence

    file.parent.mkdir(parents=True, exist_ok=True)
    failed = result.outcome is Outcome.FAILED
    step = result.step if failed and result.step is not None else len(vector.steps) - 1
    detail = result.detail if failed else "replayed alone, the trace did not fail again"
    return write_divergence(
        vector.to_json(), step, result.actual, detail, divergence_path(file), result.after
    )


def vectors_coverage(location: Path) -> int:
    from models.conformance.coverage_run import measure
    from models.conformance.replay import VectorError

    try:
        result = measure(location)
    except VectorError as error:
        _err(f"pgalloc vectors coverage: {error}")
        return 2
    print(result.report())
    return 0


def vectors_mutation(location: Path, mutants: list[str]) -> int:
    from models.conformance.mutation import main

    return main(location, mutants)


def conform(
    driver: str,
    budget: float,
    timeout: float,
    save: Path | None,
    *,
    max_failures: int | None = None,
    jobs: int = 1,
    seed: int | None = None,
) -> int:
    """Run conform with ``jobs`` drivers, seeds ``seed``... (default: random, printed)."""
    import random

    from models.conformance.conform import NothingToDraw, run_conform
    from models.conformance.conform_jobs import run_conform_jobs
    from models.conformance.vector import dumps

    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    _err(f"conform: {jobs} driver(s), seed {seed} (--seed {seed} draws the same sequences)")
    try:
        if jobs == 1:
            with SubprocessDriver(driver, timeout=timeout) as session:
                result = run_conform(session, budget, _err, max_failures=max_failures, seed=seed)
        else:
            result = run_conform_jobs(driver, jobs, budget, timeout, max_failures, seed, _err)
    except (DriverFailure, NothingToDraw) as failure:
        _err(f"pgalloc conform: {failure}")
        return 2
    ended = ", ".join(f"{n} {why}" for why, n in sorted(result.ended.items()))
    _err(
        f"conform: {result.examples} sequences, {result.steps} steps in {result.seconds:.1f}s "
        f"({result.steps / max(result.seconds, 1e-9):,.0f} steps/s)"
        + (f" ({ended} ended early, as allowed)" if ended else "")
    )
    if result.stopped:
        _err(f"pgalloc conform: {result.stopped}")
    if result.divergence is None and not result.exercised:
        _err(
            "pgalloc conform: nothing was checked: only create and state were sent "
            "(declare more features in hello; see docs/conformance.md)"
        )
        return 2
    if result.divergence is None:
        print(f"no divergence from the specification found in {result.seconds:.0f}s")
        return 0
    text = dumps(result.divergence)
    print(text, end="")
    _err(f"DIVERGENCE after {len(result.divergence.steps)} steps: {result.detail}")
    if not result.confirmed and not result.stopped:
        _err("warning: replaying the trace alone did not fail again (is the port deterministic?)")
    if save is not None:
        save.write_text(text)
        _err(
            f"the trace is saved in {save}: replay it with "
            f"pgalloc vectors replay --driver ... --vectors {save}"
        )
        if result.replayed is not None:
            _err(_draw(result.divergence, result.replayed, save))
    return 1


def driver(which: str, mutant: str | None) -> int:
    """Serve a port on stdin/stdout until end of input."""
    from models.conformance.driver import main

    return main([which, *(["--mutant", mutant] if mutant else [])], prog="pgalloc driver")

"""Independent jobs in worker processes, their progress lines relayed as they come.

``pgalloc check --jobs N`` and ``pgalloc conform --jobs N`` hand their work
here: each :class:`Job` is a module-level function (so a spawned worker can
import it) called as ``function(progress, *args)`` in one of ``workers``
processes. Its progress lines travel back through one queue and are printed
by the parent, prefixed by the job's label, so lines of different jobs never
interleave within a line. A job that raises, or whose process dies, gives
its exception as its result: one broken job never hides the others' results.

Workers are *spawned*, not forked: the checks start threads (the reclaimer,
the pressure source), which a fork from a threaded parent could deadlock,
and each spawned interpreter seeds hypothesis's randomness afresh.

A job may end the whole run early: :func:`request_stop` (in a worker) sets
an event every worker sees through :func:`stop_requested` (``conform`` stops
all drivers at the first divergence while the finder shrinks it).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from typing import Any, Generic, TypeVar

R = TypeVar("R")
Progress = Callable[[str], None]

_lines: multiprocessing.Queue[tuple[str, str]] | None = None
"""In a worker: where its progress lines go (set by _start_worker)."""
_stop: Event | None = None
"""In a worker: set once any job asked the run to stop."""


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    return max(1, len(os.sched_getaffinity(0)))


@dataclass(frozen=True, slots=True)
class Job(Generic[R]):
    label: str
    """Prefixes the job's progress lines."""
    function: Callable[..., R]
    """Module-level (importable by name), called as ``function(progress, *args)``."""
    args: tuple[Any, ...] = ()


def stop_requested() -> bool:
    """Whether some job of this run asked every job to stop (False outside a worker)."""
    return _stop is not None and _stop.is_set()


def request_stop() -> None:
    """Ask every job of this run to stop at its next convenient point (no-op outside)."""
    if _stop is not None:
        _stop.set()


def _start_worker(lines: multiprocessing.Queue[tuple[str, str]], stop: Event) -> None:
    global _lines, _stop
    _lines, _stop = lines, stop


def _run_job(label: str, function: Callable[..., R], args: tuple[Any, ...]) -> R:
    lines = _lines
    assert lines is not None, "a job runs in a worker started by run_jobs"
    return function(lambda line: lines.put((label, line)), *args)


def _relay(
    lines: multiprocessing.Queue[tuple[str, str]],
    report: Callable[[str, str], None],
    wait_for: float,
) -> None:
    """Print what the workers said so far, waiting up to ``wait_for`` seconds for the first."""
    try:
        label, line = lines.get(timeout=wait_for) if wait_for > 0 else lines.get_nowait()
        report(label, line)
        while True:
            label, line = lines.get_nowait()
            report(label, line)
    except queue.Empty:
        return


def run_jobs(
    jobs: Sequence[Job[R]], workers: int, report: Callable[[str, str], None]
) -> list[R | BaseException]:
    """Run ``jobs`` in at most ``workers`` processes; each one's result, in order.

    ``report(label, line)`` receives every progress line, in the parent. A
    job's exception (or its process's death) is its result.
    """
    context = multiprocessing.get_context("spawn")
    lines: multiprocessing.Queue[tuple[str, str]] = context.Queue()
    stop = context.Event()
    with ProcessPoolExecutor(
        max_workers=max(1, min(workers, len(jobs))),
        mp_context=context,
        initializer=_start_worker,
        initargs=(lines, stop),
    ) as pool:
        futures: list[Future[R]] = [
            pool.submit(_run_job, job.label, job.function, job.args) for job in jobs
        ]
        pending = set(futures)
        while pending:
            _relay(lines, report, 0.1)
            _, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
    _relay(lines, report, 0.2)  # the workers have exited: their last lines are in the pipe
    _relay(lines, report, 0.0)
    results: list[R | BaseException] = []
    for future in futures:
        error = future.exception()
        results.append(error if error is not None else future.result())
    return results

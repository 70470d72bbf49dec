"""The reclaimer loop, over a small named step interface.

The seed runs a reclaimer goroutine (``runReclaim``). Here its body is a
sequence of steps a file offers as :class:`ReclaimerSteps`:

* ``reclaim_find`` — under the lock, take the last reclaimable range (or
  learn there is nothing to do, or that the file is destroyed);
* ``reclaim_punch`` — without the lock, punch it (zeroing by hand, with a
  warning, if punching fails);
* ``reclaim_mark`` — under the lock, remove it from usage and take the next.

:func:`run_reclaimer` is the background thread: it loops over these steps
and blocks between them (each step reported through the file's
:class:`impl.runtime.Runtime`); :func:`reclaim_until_idle` runs the same steps
on the caller's thread until the loop would block, which is what
``SpecMemoryFile.reclaim`` does with the specification.
"""

from __future__ import annotations

import logging
from typing import Literal, Protocol

from impl.runtime import Runtime
from spec.vocabulary import FileRange

log = logging.getLogger(__name__)

WAIT: Literal["wait"] = "wait"
EXIT: Literal["exit"] = "exit"

Taken = tuple[int, int] | Literal["wait", "exit"]
"""What a find step yields: a range taken off the reclaim set, or "wait" (idle), or "exit"."""


class ReclaimerSteps(Protocol):
    """What the reclaimer loop drives; each step takes the file's lock or runs without it."""

    def reclaim_find(self, manual: bool) -> Taken:
        """Under the lock: a find, the reclaimer's first and its first after each wake-up.

        Driven by hand (``manual``), a reclaimer that waits for a signal, or
        whose file is destroyed, or that failed, has nothing to do: "wait".
        """

    def reclaim_punch(self, taken: tuple[int, int]) -> None:
        """Without the lock: punch the range taken (zero it, warning, if that fails).

        If neither works, the reclaimer has failed (and the error propagates).
        """

    def reclaim_mark(self, taken: tuple[int, int]) -> Taken:
        """Under the lock: the punched range leaves usage; then a find."""

    def reclaim_wait(self) -> None:
        """Under the lock: block until the reclaimer is signalled."""

    def reclaim_failed(self) -> None:
        """Under the lock: the reclaimer died; nothing more will be reclaimed."""

    def reclaim_exit(self) -> None:
        """Under the lock: runReclaim's end: close the file, unmap every chunk (once)."""


def run_reclaimer(steps: ReclaimerSteps, runtime: Runtime) -> None:
    """The reclaimer thread: reclaim, wait for a signal when idle, exit once destroyed."""
    find = runtime.step("reclaim_find", steps.reclaim_find)
    punch = runtime.step("reclaim_punch", steps.reclaim_punch)
    mark = runtime.step("reclaim_mark", steps.reclaim_mark)
    try:
        taken = find(False)
        while taken != EXIT:
            if isinstance(taken, tuple):
                punch(taken)
                taken = mark(taken)
                continue
            steps.reclaim_wait()
            taken = find(False)
    except BaseException:
        log.critical("the MemoryFile reclaimer failed; nothing more will be reclaimed")
        steps.reclaim_failed()
        raise  # destroy still closes the file and unmaps the chunks
    steps.reclaim_exit()


def reclaim_until_idle(steps: ReclaimerSteps) -> list[FileRange]:
    """Run reclaimer steps on this thread until it would wait; the ranges reclaimed, in order."""
    reclaimed: list[FileRange] = []
    taken = steps.reclaim_find(True)
    while isinstance(taken, tuple):
        reclaimed.append(tuple.__new__(FileRange, taken))  # FileRange(*taken), built in C
        steps.reclaim_punch(taken)
        taken = steps.reclaim_mark(taken)
    return reclaimed

"""The reclaimer: its work on a file's state, as named steps, and the loop that drives them.

The seed runs a reclaimer goroutine (``runReclaim``). Here its body is a
sequence of steps a file offers as :class:`ReclaimerSteps`:

* ``reclaim_find`` — under the lock, take the last reclaimable range (or
  learn there is nothing to do, or that the file is destroyed);
* ``reclaim_punch`` — without the lock, punch it (zeroing by hand, with a
  warning, if punching fails);
* ``reclaim_mark`` — under the lock, remove it from usage and take the next.

:class:`Reclaimer` is that work on a file's :class:`impl.state.FileState`
(the file's ``reclaim`` and ``destroy`` call its locked parts too).
:func:`run_reclaimer` is the background thread: it loops over these steps
and blocks between them (each step reported through the file's
:class:`impl.runtime.Runtime`); :func:`reclaim_until_idle` runs the same steps
on the caller's thread until the loop would block, which is what
``SpecMemoryFile.reclaim`` does with the specification.
"""

from __future__ import annotations

import logging
from typing import Final, Literal, Protocol

from mypy_extensions import mypyc_attr

from impl.eviction import Evictor
from impl.runtime import Runtime
from impl.state import FileState
from spec.vocabulary import FileRange

log = logging.getLogger(__name__)

WAIT: Final = "wait"
EXIT: Final = "exit"

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


@mypyc_attr(allow_interpreted_subclasses=True)  # tests plant broken reclaimers as subclasses
class Reclaimer:
    """The reclaimer's work on ``state``: its :class:`ReclaimerSteps`, and their locked parts.

    ``evictor`` starts the evictions an idle reclaimer starts (ENABLED without
    memcg pressure).
    """

    __slots__ = ("evictor", "state")

    def __init__(self, state: FileState, evictor: Evictor) -> None:
        self.state = state
        self.evictor = evictor

    def find_locked(self) -> Taken:
        """findReclaimable: take the last reclaimable range, or go idle, or exit.

        Out of work, ENABLED without memcg pressure starts evictions first.
        """
        s = self.state
        while True:
            if s.destroyed:
                return EXIT
            if not s.reclaimable:
                if s.evict_when_idle and s.evictable:  # (no user: nothing to start)
                    self.evictor.start_evictions_locked()
                s.reclaimer_runnable = False
                s.notify_idle_locked()
                return WAIT
            # Allocate works from the end of the file inwards; so does reclaim.
            last = s.reclaim.pop_last()
            if last is not None:
                s.unlocked_users += 1
                return last
            s.reclaimable = False

    def decommit(self, start: int, end: int) -> None:
        """Punch the taken range, without the lock; if that fails, zero it and warn.

        With manual zeroing nothing is done: pages are zeroed when allocated.
        """
        s = self.state
        if s.manual_zeroing:
            return
        try:
            s.kernel.punch_hole(s.fd, start, end - start)
        except OSError as error:
            log.warning("Reclaim failed to decommit %s: %s", FileRange(start, end), error)
            # Zeroing frees nothing, but the pages will read as zeroes when reused.
            s.chunks.zero(start, end)

    def mark_locked(self, start: int, end: int) -> None:
        """markDecommitted then markReclaimed of the taken range, in one critical section.

        (Two consecutive locked steps of the same thread: running them as one
        only removes interleavings.) Every page must be unreferenced System
        memory; it leaves the usage set.
        """
        s = self.state
        s.unlocked_done_locked()
        s.books.reclaimed(s.usage, start, end)
        s.decommit_generation += 1
        s.usage.remove(start, end)

    def exit_locked(self) -> None:
        """The end of runReclaim: close the file and unmap every chunk (once)."""
        s = self.state
        while s.unlocked_users:
            s.wait_idle_locked()
        s.chunks.close()  # so that no chunk is mapped any more
        s.notify_idle_locked()

    def wait_until_idle(self) -> None:
        """Until the reclaimer thread waits for work, or has exited; RuntimeError if it failed."""
        s = self.state
        with s.mu:
            while s.reclaimer_runnable and s.chunks.open and not s.reclaimer_failed:
                s.wait_idle_locked()
            if s.reclaimer_failed:
                raise RuntimeError("the reclaimer thread failed; see the log")

    # --- ReclaimerSteps: each takes the lock itself ---------------------------------------

    def reclaim_find(self, manual: bool) -> Taken:
        s = self.state
        s.mu_acquire()  # (not `with`: see impl.operations)
        try:
            if manual and (not s.reclaimer_runnable or s.destroyed or s.reclaimer_failed):
                return WAIT
            return self.find_locked()
        finally:
            s.mu_release()

    def reclaim_punch(self, taken: tuple[int, int]) -> None:
        start, end = taken  # (not *taken: compiled, that is a Python-level call)
        try:
            self.decommit(start, end)
        except BaseException:
            # Neither punched nor zeroed: the range must never be handed out again,
            # so it stays in usage, unreferenced, and the reclaimer stops (the seed
            # panics here; the spec's FAILED step).
            s = self.state
            with s.mu:
                s.reclaimer_failed = True
                s.unlocked_done_locked()
            raise

    def reclaim_mark(self, taken: tuple[int, int]) -> Taken:
        start, end = taken  # (not *taken: compiled, that is a Python-level call)
        s = self.state
        s.mu_acquire()
        try:
            self.mark_locked(start, end)
            return self.find_locked()
        finally:
            s.mu_release()

    def reclaim_wait(self) -> None:
        s = self.state
        with s.mu:
            while not s.reclaimer_runnable:
                s.reclaim_cond.wait()

    def reclaim_failed(self) -> None:
        s = self.state
        with s.mu:
            s.reclaimer_failed = True
            s.notify_idle_locked()

    def reclaim_exit(self) -> None:
        with self.state.mu:
            self.exit_locked()


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


def reclaim_until_idle(steps: Reclaimer) -> list[FileRange]:
    """Run reclaimer steps on this thread until it would wait; the ranges reclaimed, in order.

    (``steps`` is typed as the class, not as :class:`ReclaimerSteps`: compiled,
    its methods are then called natively rather than looked up by name.)
    """
    reclaimed: list[FileRange] = []
    taken = steps.reclaim_find(True)
    while isinstance(taken, tuple):
        reclaimed.append(tuple.__new__(FileRange, taken))  # FileRange(*taken), built in C
        steps.reclaim_punch(taken)
        taken = steps.reclaim_mark(taken)
    return reclaimed
